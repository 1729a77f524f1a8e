"""sched21: SIU scheduling -- a message that names no resources, a corrected patient, repeating
resource fields, statuses by event and SCH-25, times and durations. Real HL7 bytes over MLLP, the
real SQLite store, read back through /fhir; each Appointment checked by the project's validator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment, booking
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid

SCH = "SCH|AP-{c}|BK-{c}||||||NORMAL|30|min|^^^20261205083000||||||||||||||{status}"


def _show(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


def _actors(appt: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith(rtype + "/")]


def _same(control: str, message: bytes, stem: str) -> bytes:
    """``message`` (made for ``control``) as one more message about appointment ``stem``."""
    return message.replace(f"AP-{control}".encode(), f"AP-{stem}".encode()).replace(
        f"BK-{control}".encode(), f"BK-{stem}".encode())


# --- a message naming no resources (SCH and PID alone) ---------------------------------------------

def test_a_thin_cancel_keeps_the_doctor_and_the_room_and_names_the_patient_once(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The thin S15 states the patient (PID) but no resource: the patient is listed once, the booked
    doctor and room stay. (A PID naming another patient makes another Appointment: its key is
    scoped to the patient, ``templates._key``.)"""
    first = _same("TC1", booking("TC1"), "TC")
    cancel = siu("TC2", "S15", SCH.format(c="TC", status="Cancelled"), PID)
    assert [ack_code_of(a) for a in send(engine, first, cancel)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TC2"))
    assert appt["status"] == "cancelled"
    assert len(_actors(appt, "Patient")) == 1, _show(appt["participant"])
    assert len(_actors(appt, "Practitioner")) == 1 and len(_actors(appt, "Location")) == 1, _show(appt["participant"])


def test_a_full_s14_after_a_thin_message_still_states_the_list_whole(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 (D01), thin S15, then an S14 naming D03 alone: D01 is not kept beside D03."""
    first = _same("TF1", booking("TF1"), "TF")
    thin = siu("TF2", "S14", SCH.format(c="TF", status="Booked"), PID)
    swap = siu("TF3", "S14", SCH.format(c="TF", status="Booked"), PID, "RGS|1|A",
               "AIP|1||D03^刘^芳^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000")
    assert [ack_code_of(a) for a in send(engine, first, thin, swap)] == ["AA", "AA", "AA"]
    appt = valid(appointment(engine, fhir, "TF3"))
    doctors = _actors(appt, "Practitioner")
    assert len(doctors) == 1 and "刘" in _show(doctors), _show(appt["participant"])
    assert not _actors(appt, "Location"), "the S14's list is whole: the room it leaves out is gone"


def test_a_declined_doctor_stays_declined_through_a_thin_message(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = _same("TD1", booking("TD1"), "TD")
    deleted = _same("TD2", booking("TD2").replace(b"SIU^S12", b"SIU^S14").replace(b"AIP|1||", b"AIP|1|D|"), "TD")
    thin = siu("TD3", "S14", SCH.format(c="TD", status="Booked"), PID)
    assert [ack_code_of(a) for a in send(engine, first, deleted, thin)] == ["AA", "AA", "AA"]
    appt = valid(appointment(engine, fhir, "TD3"))
    assert [p["status"] for p in _actors(appt, "Practitioner")] == ["declined"], _show(appt["participant"])


def test_a_fhir_client_still_states_the_participants_whole(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The patient's own part of the list is a slice every writer owns: a FHIR client's PUT is
    stored as sent (no 422, no stored doctor kept beside its list)."""
    (ack,) = send(engine, _same("TA1", booking("TA1"), "TA"))
    assert ack_code_of(ack) == "AA", ack
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("client", "system/*.cruds")
    found = http.get("/fhir/Appointment", params={"identifier": "BK-TA"}).json()
    (entry,) = found.get("entry") or [None]
    appt = entry["resource"]
    patient = _actors(appt, "Patient")[0]
    appt["participant"] = [patient]
    appt.pop("meta", None)
    r = http.put(f"/fhir/Appointment/{appt['id']}", json=appt)
    assert r.status_code in (200, 201), r.text
    back = http.get(f"/fhir/Appointment/{appt['id']}").json()
    assert back["participant"] == [patient], _show(back["participant"])


# --- repeating resource fields ---------------------------------------------------------------------

def test_each_repetition_of_ail3_is_a_location(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, siu("TL1", "S12", SCH.format(c="TL", status="Booked"), PID, "RGS|1|A",
                              "AIL|1||US^201^1^FNXRMYY~US^202^1^FNXRMYY|||20261205083000"))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, "TL1"))
    assert len(_actors(appt, "Location")) == 2, _show(appt["participant"])


def test_each_repetition_of_aip3_is_a_person_with_the_segments_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, siu("TP1", "S12", SCH.format(c="TP", status="Booked"), PID, "RGS|1|A",
                              "AIP|1||D01^王^明^^^^^^FNXRMYY~D02^赵^敏^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000"))
    assert ack_code_of(ack) == "AA", ack
    doctors = _actors(valid(appointment(engine, fhir, "TP1")), "Practitioner")
    assert len(doctors) == 2 and all(d["type"][0]["coding"][0]["code"] == "AT" for d in doctors), _show(doctors)


# --- services --------------------------------------------------------------------------------------

def test_deleting_one_of_two_services_by_ais2_d_alone_keeps_the_other(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books US1 and CT1; an S14 carrying only ``AIS|1|D|US1`` takes US1 off and states nothing
    of CT1 -- a delete, not a whole list."""
    a = siu("TS1", "S12", SCH.format(c="TS", status="Booked"), PID, "RGS|1|A",
            "AIS|1||US1^腹部B超^L|20261205083000", "AIS|2||CT1^胸部CT^L|20261205083000")
    b = siu("TS2", "S14", SCH.format(c="TS", status="Booked"), PID, "RGS|1|A", "AIS|1|D|US1^腹部B超^L|20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TS2"))
    codes = [c["code"] for st in appt.get("serviceType", []) for c in st.get("coding", [])]
    assert codes == ["CT1"], _show(appt.get("serviceType"))


def test_a_thin_modification_leaves_times_status_resources_and_services(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an S14 of SCH (no SCH-9/10/11, SCH-25 empty) and PID alone changes nothing the S12 stated."""
    first = _same("TG1", booking("TG1"), "TG")
    thin = siu("TG2", "S14", "SCH|AP-TG|BK-TG||||||NORMAL", PID)
    assert [ack_code_of(a) for a in send(engine, first)] == ["AA"]
    before = appointment(engine, fhir, "TG1")
    assert before["start"] and before["minutesDuration"] == 30 and before["serviceType"], before
    assert [ack_code_of(a) for a in send(engine, thin)] == ["AA"]
    after = valid(appointment(engine, fhir, "TG2"))
    assert after["meta"]["versionId"] != before["meta"]["versionId"] or after == before
    for element in ("status", "start", "end", "minutesDuration", "serviceType"):
        assert after.get(element) == before.get(element), (element, after)
    assert len(after["participant"]) == len(before["participant"]) == 3, _show(after["participant"])


# --- segment action codes (table 0206): a message of changes -------------------------------------

def _pair(stem: str, *second: str) -> tuple[bytes, bytes]:
    first = _same(f"{stem}1", booking(f"{stem}1"), stem)
    later = siu(f"{stem}2", "S14", SCH.format(c=stem, status="Booked"), PID, "RGS|1|A", *second)
    return first, later


def test_deleting_the_doctor_by_action_code_alone_keeps_the_room(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S14 of ``AIP|1|D|D01`` alone: the doctor is declined, the room the S12 booked stays (it was
    taken off with the list the S14 replaced)."""
    a, b = _pair("TK", "AIP|1|D|D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TK2"))
    assert [p["status"] for p in _actors(appt, "Practitioner")] == ["declined"], _show(appt["participant"])
    assert [p["status"] for p in _actors(appt, "Location")] == ["accepted"], _show(appt["participant"])


def test_adding_a_doctor_by_action_code_keeps_the_booked_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    a, b = _pair("TN", "AIP|2|A|D03^刘^芳^^^^^^FNXRMYY|CON^会诊医师^HL70443||20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TN2"))
    assert len(_actors(appt, "Practitioner")) == 2 and len(_actors(appt, "Location")) == 1, _show(appt["participant"])


@pytest.mark.parametrize("aip", [
    "AIP|1|U|D01^王^明远^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000",   # renamed
    "AIP|1|U|D01^王^明^^^^^^FNXRMYY|CON^会诊医师^HL70443||20261205083000",    # re-roled
])
def test_an_updated_doctor_is_listed_once(engine: Engine, fhir: TestClient, aip: str) -> None:  # noqa: F811
    c = "TU" + ("R" if "明远" in aip else "C")
    a, b = _pair(c, aip)
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, c + "2"))
    assert len(_actors(appt, "Practitioner")) == 1 and len(_actors(appt, "Location")) == 1, _show(appt["participant"])


def test_an_updated_machine_renamed_is_listed_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = siu("TM1", "S12", SCH.format(c="TM", status="Booked"), PID, "RGS|1|A", "AIG|1||EQ1^B超机^L|||||20261205083000")
    later = siu("TM2", "S14", SCH.format(c="TM", status="Booked"), PID, "RGS|1|A", "AIG|1|U|EQ1^彩超机^L|||||20261205083000")
    assert [ack_code_of(x) for x in send(engine, first, later)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TM2"))
    machines = [p for p in appt["participant"] if "reference" not in p.get("actor", {"reference": ""})]
    assert [m["actor"]["display"] for m in machines] == ["彩超机"], _show(appt["participant"])


def test_a_role_named_by_action_code_leaves_no_stale_needed_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    first = siu("TR1", "S12", SCH.format(c="TR", status="Booked"), PID, "RGS|1|A", "AIP|2|||AN^麻醉医师^L||20261205083000")
    later = siu("TR2", "S14", SCH.format(c="TR", status="Booked"), PID, "RGS|1|A",
                "AIP|2|U|D02^赵^敏^^^^^^FNXRMYY|AN^麻醉医师^L||20261205083000")
    assert [ack_code_of(x) for x in send(engine, first, later)] == ["AA", "AA"]
    appt = valid(appointment(engine, fhir, "TR2"))
    assert not [p for p in appt["participant"] if p["status"] == "needs-action"], _show(appt["participant"])
    assert len(_actors(appt, "Practitioner")) == 1, _show(appt["participant"])


def test_a_service_added_by_action_code_keeps_the_booked_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books US1; an S14 carrying only ``AIS|2|A|CT1`` adds CT1 (it replaced US1); a later
    ``AIS|1|D|US1`` then takes US1 off and leaves CT1."""
    a = siu("TV1", "S12", SCH.format(c="TV", status="Booked"), PID, "RGS|1|A", "AIS|1||US1^腹部B超^L|20261205083000")
    b = siu("TV2", "S14", SCH.format(c="TV", status="Booked"), PID, "RGS|1|A", "AIS|2|A|CT1^胸部CT^L|20261205083000")
    d = siu("TV3", "S14", SCH.format(c="TV", status="Booked"), PID, "RGS|1|A", "AIS|1|D|US1^腹部B超^L|20261205083000")
    assert [ack_code_of(x) for x in send(engine, a, b)] == ["AA", "AA"]
    codes = [c["code"] for st in valid(appointment(engine, fhir, "TV2"))["serviceType"] for c in st["coding"]]
    assert codes == ["US1", "CT1"], codes
    assert [ack_code_of(x) for x in send(engine, d)] == ["AA"]
    codes = [c["code"] for st in valid(appointment(engine, fhir, "TV3"))["serviceType"] for c in st["coding"]]
    assert codes == ["CT1"], codes
