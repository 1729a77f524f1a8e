"""Reviewer rv-convmend20's probes of convmend20: the by-key Appointment participant merge, AIS-2 D,
XTN-8 beside a number, RXA-20. Real HL7 over MLLP, the real SQLite store, read through /fhir."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_conv20_fidelity import appointment, registration, vaccination
from tests.test_convert11_thinner import fhir, send  # noqa: F401
from tests.test_convmend20_probes import PID, siu, valid

SCH = "SCH|AP-{c}|BK-{c}||||||NORMAL|30|min|^^^20261205083000|||||||||||||||Booked"


def _pair(control: str, first_aip: str, second_aip: str, event: str = "S14") -> tuple[bytes, bytes]:
    a = siu(control + "1", "S12", SCH.format(c=control), PID, "RGS|1|A",
            "AIS|1||US1^腹部B超^L|20261205083000", first_aip)
    b = siu(control + "2", event, SCH.format(c=control), PID, "RGS|1|A",
            "AIS|1||US1^腹部B超^L|20261205083000", second_aip)
    return a, b


def _doctors(appt: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith("Practitioner/")]


def _show(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def test_a_renamed_doctor_is_listed_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Same ID D01, name corrected in S14: one participant, not the old name and the new beside it."""
    a, b = _pair("PR", "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",
                 "AIP|1||D01^王^明远^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PR2"))
    assert len(_doctors(appt)) == 1, _show(appt["participant"])


def test_a_doctors_changed_role_is_listed_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Same doctor, AIP-4 changed (attending -> consulting): one participant with the new role."""
    a, b = _pair("PT", "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",
                 "AIP|1||D01^王^明^^^^^^FNXRMYY|CON^会诊医师^HL70443||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PT2"))
    assert len(_doctors(appt)) == 1, _show(appt["participant"])


def test_a_doctor_deleted_without_restating_his_role_is_not_left_accepted(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books D01 with AIP-4; S14 deletes him (AIP-2 D) naming the person alone (AIP-4 empty,
    as table 0206 D needs only the resource): he must not stay accepted."""
    a, b = _pair("PD", "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",
                 "AIP|1|D|D01^王^明^^^^^^FNXRMYY|||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PD2"))
    assert not [p for p in _doctors(appt) if p["status"] == "accepted"], _show(appt["participant"])


def test_an_s14_replacing_the_doctor_does_not_leave_two_attending(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S14 names D03 as the attending in place of D01 (no action codes, the full resource list):
    D01 must not stay accepted beside D03."""
    a, b = _pair("PX", "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",
                 "AIP|1||D03^刘^芳^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PX2"))
    assert len([p for p in _doctors(appt) if p["status"] == "accepted"]) == 1, _show(appt["participant"])


def test_a_deleted_doctor_added_back_is_accepted_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    aip = "AIP|1|{}|D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000"
    a, b = _pair("PA", aip.format(""), aip.format("D"))
    c = siu("PA3", "S14", SCH.format(c="PA"), PID, "RGS|1|A", aip.format("A"))
    assert [ack_code_of(x) for x in send(engine, a, b, c)] == ["AA", "AA", "AA"]
    appt = valid(appointment(engine, fhir, "PA3"))
    assert [p["status"] for p in _doctors(appt)] == ["accepted"], _show(appt["participant"])


def test_a_service_deleted_by_ais2_d_leaves_service_type(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books US1; S14 deletes it (AIS-2 D) and adds CT1: serviceType must not still hold US1."""
    a = siu("PS1", "S12", SCH.format(c="PS"), PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205083000")
    b = siu("PS2", "S14", SCH.format(c="PS"), PID, "RGS|1|A", "AIS|1|D|US1^腹部B超^L|20261205083000",
            "AIS|2|A|CT1^胸部CT^L|20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PS2"))
    codes = [c["code"] for st in appt.get("serviceType", []) for c in st.get("coding", [])]
    assert "US1" not in codes, _show(appt.get("serviceType"))


def test_the_only_service_deleted_by_ais2_d_is_not_left_booked(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a = siu("PO1", "S12", SCH.format(c="PO"), PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205083000")
    b = siu("PO2", "S14", SCH.format(c="PO"), PID, "RGS|1|A", "AIS|1|D|US1^腹部B超^L|20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PO2"))
    codes = [c["code"] for st in appt.get("serviceType", []) for c in st.get("coding", [])]
    assert "US1" not in codes, _show(appt.get("serviceType"))


def test_an_extension_is_not_dropped_when_the_number_ends_in_its_digits(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Local number 12345801, extension 801: the parts-built number lost its extension (92cb5eb kept it)."""
    (ack,) = send(engine, registration("PE1", "^WPN^PH^^86^755^12345801^801"))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written(engine, fhir, "PE1", "Patient")
    assert [t["value"] for t in valid(patient)["telecom"]] == ["+86 755 12345801 ext. 801"]


def test_an_extension_is_not_dropped_beside_a_whole_number_ending_in_its_digits(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, registration("PE2", "0755-12345801^WPN^PH^^^^^801"))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written(engine, fhir, "PE2", "Patient")
    assert [t["value"] for t in valid(patient)["telecom"]] == ["0755-12345801 ext. 801"]


def test_a_deleted_dose_is_entered_in_error(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = vaccination("PV1", "PA")
    second = vaccination("PV2", "").replace(b"|A\rRXR", b"|D\rRXR")
    acks = send(engine, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (imm,) = written(engine, fhir, "PV2", "Immunization")
    valid(imm)
    assert imm["status"] == "entered-in-error", imm


def test_an_unknown_completion_status_is_not_a_server_error(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, vaccination("PU1", "XX"))
    assert ack_code_of(ack) in {"AA", "AE", "AR"}, ack


PID_OTHER = "PID|1||ZY20Q^^^FNXRMYY^MR||张^小红||19900101|F"


def test_a_corrected_patient_does_not_leave_the_first_patient_on_the_appointment(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books for 李小明 by mistake; S14 (same SCH-1/SCH-2) corrects the patient to 张小红.
    The appointment must not hold both patients (privacy: it would sit in 李小明's compartment).
    sched24: the S14 is refused (AE at PID-3: under the patient-scoped key it made 张小红 a second
    booking for the one slot, 李小明's staying booked); 李小明's appointment holds him alone."""
    aip = "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000"
    a = siu("PP1", "S12", SCH.format(c="PP"), PID, "RGS|1|A", aip)
    b = siu("PP2", "S14", SCH.format(c="PP"), PID_OTHER, "RGS|1|A", aip)
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AE"]
    appt = valid(appointment(engine, fhir, "PP1"))
    patients = [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith("Patient/")]
    assert len(patients) == 1, _show(appt["participant"])


def test_a_renamed_machine_is_listed_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a, b = _pair("PG", "AIG|1||EQ1^B超机^L|||||20261205083000", "AIG|1||EQ1^彩超机^L|||||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PG2"))
    machines = [p for p in appt["participant"] if "reference" not in p.get("actor", {"reference": ""})]
    assert len(machines) == 1, _show(appt["participant"])


def test_an_explicit_null_extension_is_not_written_into_the_number(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, registration("PN1", '0755-12345678^WPN^PH^^^^^""'))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written(engine, fhir, "PN1", "Patient")
    assert [t["value"] for t in valid(patient)["telecom"]] == ["0755-12345678"]


def test_repeated_persons_deleted_in_one_aip_are_all_declined(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    aip = "AIP|1|{}|D01^王^明^^^^^^FNXRMYY~D02^赵^敏^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000"
    a, b = _pair("PM", aip.format(""), aip.format("D"))
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PM2"))
    assert sorted(p["status"] for p in _doctors(appt)) == ["declined", "declined"], _show(appt["participant"])


def test_a_role_filled_with_the_role_code_alone_leaves_no_stale_needed_role(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 needs an anaesthetist (AIP-4 AN^麻醉医师^L, no person); S14 names her with the same role code
    written without its text (AN^^L): the role is filled, not still needed beside her."""
    a, b = _pair("PF", "AIP|2|||AN^麻醉医师^L||20261205083000",
                 "AIP|2||D02^赵^敏^^^^^^FNXRMYY|AN^^L||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "PF2"))
    assert not [p for p in appt["participant"] if p["status"] == "needs-action"], _show(appt["participant"])


def test_a_duration_without_its_unit_gives_a_valid_appointment(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, siu("PW1", "S12", "SCH|AP-PW|BK-PW||||||NORMAL|||||||||||||||||Booked", PID,
                              "AIL|1||US^201^1^FNXRMYY|||20261205083000|0|S|45|"))
    assert ack_code_of(ack) in {"AA", "AE"}, ack
    valid(appointment(engine, fhir, "PW1"))
