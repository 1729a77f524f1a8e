"""The review of conv20's probes (SIU participants/durations, RXA-20 PA, SPM-17 ranges, XTN parts),
kept: those that held stand as guards; those that failed on 92cb5eb are mended by convmend20
(a resource's own duration fields, segment action code D, RXA-20 after a PA, a thinner S15, XTN-8).

Real HL7 bytes over MLLP (and POST /hl7v2), the real SQLite store, read back through /fhir; every
stored resource checked by the project's validator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from conformance.validate import Validator
from engine.engine import Engine
from tests.module_store import Names, names  # noqa: F401  (the fixture)
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401  (the fixture: once a module)
from tests.shared_worlds45d import mine, send_as, written_as
from tests.test_conv20_fidelity import booking, by_actor, vaccination
from tests.test_ingest_durability import err_fields

VALIDATOR = Validator()


def appointment(engine: Engine, fhir: TestClient, names: Names, control: str) -> dict[str, Any]:  # noqa: F811
    """The Appointment the message ``control`` (as ``names`` sent it) wrote."""
    (appt,) = written_as(engine, fhir, names, control, "Appointment")
    return appt


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    VALIDATOR.validate(resource)
    return resource


def siu(control: str, event: str, *segments: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||SIU^{event}^SIU_S12|{control}|P|2.5.1\r"
            + "".join(s + "\r" for s in segments)).encode()


SCH_NO_DURATION = "SCH|AP-X|BK-X||||||NORMAL|||||||||||||||||Booked"
PID = "PID|1||ZY20S^^^FNXRMYY^MR||李^小明||19800101|M"


# --- SIU durations: AIP-9/10, AIL-9/10, AIG-11/12 (v2.5.1 ch. 10) --------------------------------

@pytest.mark.parametrize("segment", [
    # AIP: 6 start, 7 offset, 8 offset units, 9 duration, 10 duration units (google-hdh hdh_siu_s12_ex1 shape)
    "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000|0|S|45|MIN",
    # AIL: 6 start, 7 offset, 8 offset units, 9 duration, 10 duration units
    "AIL|1||US^201^1^FNXRMYY|||20261205083000|0|S|45|MIN",
    # AIG: 8 start, 9 offset, 10 offset units, 11 duration, 12 duration units
    "AIG|1||EQ1^B超机^L|||||20261205083000|0|S|45|MIN",
])
def test_a_resources_own_duration_is_read_from_its_duration_fields(
        engine: Engine, fhir: TestClient, names: Names, segment: str) -> None:  # noqa: F811
    """No SCH-9/10, no AIS: the appointment's length is the resource's own duration (v2.5.1 ch. 10:
    AIG-11/12, AIL-9/10, AIP-9/10). 92cb5eb read AIG-10/11, AIL-8/9, AIP-8/9 -- the offset units
    and the duration -- as (duration, unit)."""
    (ack,) = send_as(engine, names, siu("RD1", "S12", SCH_NO_DURATION.replace("AP-X", "AP-RD1"), PID, segment))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, names, "RD1"))
    assert appt.get("minutesDuration") == 45, appt
    assert appt.get("end") == "2026-12-05T09:15:00+08:00", appt


@pytest.mark.parametrize("segment", [
    "AIP|1||D01^王^明^^^^^^FNXRMYY|AT^主治医师^HL70443||20261205083000|0|S|45|MIN",
    "AIL|1||US^201^1^FNXRMYY|||20261205083000|0|S|45|MIN",
    "AIG|1||EQ1^B超机^L|||||20261205083000|0|S|45|MIN",
])
def test_no_warning_calls_a_resources_duration_a_unit(engine: Engine, fhir: TestClient, names: Names, segment: str) -> None:  # noqa: F811
    """On 92cb5eb the ACK told the sender ``AIP-9: duration unit '45' is not one huren reads`` --
    AIP-9 is the duration, and its unit MIN (AIP-10) is one the table names."""
    (ack,) = send_as(engine, names, siu("RW1", "S12", SCH_NO_DURATION.replace("AP-X", "AP-RW1"), PID, segment))
    assert ack_code_of(ack) == "AA", ack
    assert not [e for e in err_fields(ack) if "duration unit" in e[8]], err_fields(ack)


# --- SIU participants: null components, later messages ---------------------------------------------

def test_explicit_null_role_and_status_are_not_stored_as_values(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    (ack,) = send_as(engine, names, booking("RN1", aip4='""', aip12='""', ail12='""'))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, names, "RN1"))
    doctor = by_actor(appt, "Practitioner")
    assert "type" not in doctor and doctor["status"] == "accepted", doctor
    assert by_actor(appt, "Location")["status"] == "accepted"


def test_a_later_message_naming_the_booked_role_leaves_no_stale_unfilled_role(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """S12 books an anaesthetist by role only (needs-action); S14 names her. The stored appointment
    must not still say an anaesthetist is needed and unnamed."""
    first = booking("RL1").replace(b"AIL|", "AIP|2|||AN^麻醉医师^L||20261205083000\rAIL|".encode(), 1)
    second = (booking("RL2").replace(b"SIU^S12", b"SIU^S14")
              .replace(b"AIL|", "AIP|2||D02^赵^敏^^^^^^FNXRMYY|AN^麻醉医师^L||20261205083000\rAIL|".encode(), 1))
    # the same appointment (SCH-1/SCH-2) in both
    first = first.replace(b"AP-RL1", b"AP-RL").replace(b"BK-RL1", b"BK-RL")
    second = second.replace(b"AP-RL2", b"AP-RL").replace(b"BK-RL2", b"BK-RL")
    acks = send_as(engine, names, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RL2"))
    assert not [p for p in appt["participant"] if "actor" not in p], appt["participant"]


def test_a_thinner_cancel_does_not_erase_the_booked_doctor(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """S15 (cancel) carrying only SCH and PID: the doctor booked by S12 vanished (the participant list
    was replaced whole); a thinner message keeps the participants it does not name."""
    first = booking("RC1").replace(b"AP-RC1", b"AP-RC").replace(b"BK-RC1", b"BK-RC")
    cancel = siu("RC2", "S15", "SCH|AP-RC|BK-RC||||||NORMAL|30|min|^^^20261205083000|||||||||||||||Cancelled", PID)
    acks = send_as(engine, names, first, cancel)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RC2"))
    assert appt["status"] == "cancelled"
    assert [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith("Practitioner/")], \
        appt["participant"]


def test_a_resource_deleted_by_its_segment_action_code_is_not_a_participant(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """AIP-2 D (table 0206: delete): S14 removes the doctor from the booking; 92cb5eb kept him
    ``accepted``. He is stated declined (kept as such: a later message leaving him out keeps him)."""
    first = booking("RX1").replace(b"AP-RX1", b"AP-RX").replace(b"BK-RX1", b"BK-RX")
    second = (booking("RX2").replace(b"SIU^S12", b"SIU^S14").replace(b"AP-RX2", b"AP-RX")
              .replace(b"BK-RX2", b"BK-RX").replace(b"AIP|1||", b"AIP|1|D|"))
    acks = send_as(engine, names, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RX2"))
    doctors = [p for p in appt["participant"] if p.get("actor", {}).get("reference", "").startswith("Practitioner/")]
    assert doctors and all(p["status"] == "declined" for p in doctors), doctors
    assert sorted(p["status"] for p in appt["participant"]) == ["accepted", "accepted", "declined"], appt


@pytest.mark.parametrize("sch9_10", ["30|min^minutes^ISO+", "30|MIN", "0.5|h", "1800|s"])
def test_duration_unit_spellings(engine: Engine, fhir: TestClient, names: Names, sch9_10: str) -> None:  # noqa: F811
    (ack,) = send_as(engine, names, booking("RU1", sch9_10))
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, names, "RU1"))
    assert (appt.get("end"), appt.get("minutesDuration")) == ("2026-12-05T09:00:00+08:00", 30), appt


def test_an_enormous_duration_is_not_a_server_error(http: TestClient, engine: Engine, names: Names) -> None:  # noqa: F811
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    r = http.post("/hl7v2", content=mine(names, booking("RO1", "99999999|wk")),
                  headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code < 500, r.text
    assert ack_code_of(r.content) in ("AA", "AE", "AR")


# --- RXA-20 ----------------------------------------------------------------------------------------

def test_a_later_record_with_rxa20_empty_is_complete_and_not_left_subpotent(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """v2.5.1 RXA-20: "If this field is not populated, it is assumed to be CP or complete" -- the
    status rule defaulted so, but a PA corrected by a record with RXA-20 empty stayed isSubpotent true."""
    acks = send_as(engine, names, vaccination("RV1", "PA"), vaccination("RV2", ""))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (imm,) = written_as(engine, fhir, names, "RV2", "Immunization")
    valid(imm)
    assert imm["status"] == "completed"
    assert imm.get("isSubpotent") is not True, imm


def test_pa_with_unknown_amount(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    msg = vaccination("RV3", "PA").replace(b"|0.5|mL^^UCUM|", b"|999||")
    (ack,) = send_as(engine, names, msg)
    assert ack_code_of(ack) == "AA", ack
    (imm,) = written_as(engine, fhir, names, "RV3", "Immunization")
    valid(imm)
    assert imm["isSubpotent"] is True and "doseQuantity" not in imm, imm


# --- SPM-17 ----------------------------------------------------------------------------------------

def urine(control: str, spm17: str, specimen: str = "SP-RS") -> bytes:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261202091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            "PID|1||ZY20U^^^FNXRMYY^MR||王^建国||19800101|M\r"
            "OBR|1|ORD-RS|LAB-RS|UPRO24^24小时尿蛋白^L|||20261201080000|||||||||||||||20261202090000|||F\r"
            "OBX|1|NM|UPRO24^24小时尿蛋白^L||0.15|g/24h|0-0.15||||F|||20261202085000\r"
            f"SPM|1|{specimen}||UR^尿液^HL70487|||||||||||||{spm17}|20261202083000\r").encode()


@pytest.mark.parametrize("first,second", [
    ("20261201080000", "20261201080000^20261202080000"),
    ("20261201080000^20261202080000", "20261201080000"),
])
def test_a_later_message_changing_the_collection_shape_stays_one_collected_x(
        engine: Engine, fhir: TestClient, names: Names, first: str, second: str) -> None:  # noqa: F811
    acks = send_as(engine, names, urine("RS1", first), urine("RS2", second))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (specimen,) = written_as(engine, fhir, names, "RS2", "Specimen")
    valid(specimen)
    kinds = [k for k in specimen.get("collection", {}) if k.startswith("collected")]
    assert len(kinds) == 1, specimen["collection"]


def test_an_explicit_null_end_keeps_the_start(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    (ack,) = send_as(engine, names, urine("RS3", '20261201080000^""', "SP-RS3"))
    assert ack_code_of(ack) == "AA", ack
    (specimen,) = written_as(engine, fhir, names, "RS3", "Specimen")
    valid(specimen)
    coll = specimen.get("collection", {})
    assert coll.get("collectedDateTime") == "2026-12-01T08:00:00+08:00" or \
        coll.get("collectedPeriod", {}).get("start") == "2026-12-01T08:00:00+08:00", specimen


@pytest.mark.parametrize("spm17,expected", [
    ("202612010800+0800^202612020800+0800", {"collectedPeriod": {"start": "2026-12-01T08:00:00+08:00",
                                                                  "end": "2026-12-02T08:00:00+08:00"}}),
    ("20261201080000+0800^20261201010000+0000", {"collectedPeriod": {"start": "2026-12-01T08:00:00+08:00",
                                                                      "end": "2026-12-01T01:00:00+00:00"}}),
    ("20261201^20261202", {"collectedPeriod": {"start": "2026-12-01", "end": "2026-12-02"}}),
    ("^20261202080000", {"collectedPeriod": {"end": "2026-12-02T08:00:00+08:00"}}),
])
def test_spm17_zones_and_precision(engine: Engine, fhir: TestClient, names: Names, spm17: str, expected: dict[str, Any]) -> None:  # noqa: F811
    (ack,) = send_as(engine, names, urine("RS4", spm17, "SP-RS4"))
    assert ack_code_of(ack) == "AA", ack
    (specimen,) = written_as(engine, fhir, names, "RS4", "Specimen")
    valid(specimen)
    assert {k: v for k, v in specimen["collection"].items() if k.startswith("collected")} == expected


# --- XTN ------------------------------------------------------------------------------------------

def registration(control: str, pid13: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A31^ADT_A05|{control}|P|2.5.1\r"
            "EVN|A31|20261201091500\r"
            f"PID|1||ZY20X{control}^^^FNXRMYY^MR||王^建国||19800101|M|||||{pid13}\r"
            "PV1|1|N\r").encode()


@pytest.mark.parametrize("pid13,values", [
    ("13800138000^PRN^CP", ["13800138000"]),
    ("0755-12345678^PRN^PH", ["0755-12345678"]),
    ("^PRN^PH^^86^755^12345678^801", ["+86 755 12345678 ext. 801"]),
    ("^NET^Internet^wang@example.cn", ["wang@example.cn"]),
    ("(025)88887777^PRN^PH^^^^^^^^^+862588887777", ["+862588887777"]),
    ("^PRN^CP^^86^^13800138000", ["+86 13800138000"]),
])
def test_chinese_phone_shapes(engine: Engine, fhir: TestClient, names: Names, pid13: str, values: list[str]) -> None:  # noqa: F811
    (ack,) = send_as(engine, names, registration("RT1", pid13))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written_as(engine, fhir, names, "RT1", "Patient")
    valid(patient)
    assert [t["value"] for t in patient["telecom"]] == values


def test_an_extension_beside_the_whole_number_is_kept(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """XTN-1 the whole number, XTN-8 the extension (a ward's switchboard): the extension was dropped
    without a word -- the number reached was the switchboard, not the ward. Kept as the parts'
    number writes it (``... ext. 801``)."""
    (ack,) = send_as(engine, names, registration("RT2", "0755-12345678^WPN^PH^^^^^801"))
    assert ack_code_of(ack) == "AA", ack
    (patient,) = written_as(engine, fhir, names, "RT2", "Patient")
    (phone,) = valid(patient)["telecom"]
    assert phone == {"system": "phone", "value": "0755-12345678 ext. 801", "use": "work"}, phone


def test_a_role_removed_by_its_segment_action_code_is_not_a_needed_participant(
        engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """conv20's role-only rule: S14 whose AIP (AIP-2 D, table 0206 delete) withdraws the anaesthetist
    role was stored as an anaesthetist still needed (needs-action)."""
    first = booking("RY1").replace(b"AP-RY1", b"AP-RY").replace(b"BK-RY1", b"BK-RY")
    second = (booking("RY2").replace(b"SIU^S12", b"SIU^S14").replace(b"AP-RY2", b"AP-RY")
              .replace(b"BK-RY2", b"BK-RY")
              .replace(b"AIL|", "AIP|2|D||AN^麻醉医师^L||20261205083000\rAIL|".encode(), 1))
    acks = send_as(engine, names, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RY2"))
    assert not [p for p in appt["participant"] if "actor" not in p and p.get("status") != "declined"], \
        appt["participant"]


def test_a_role_with_an_explicitly_null_person_is_kept(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """AIP-3 sent as HL7's explicit null (no one named) beside the role AIP-4."""
    message = booking("RZ1").replace(b"AIL|", 'AIP|2||""|AN^麻醉医师^L||20261205083000\rAIL|'.encode(), 1)
    (ack,) = send_as(engine, names, message)
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, names, "RZ1"))
    assert [p for p in appt["participant"] if "actor" not in p], appt["participant"]


def test_a_refusal_after_a_partial_dose_is_not_left_subpotent(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """PA then RE (refused: no dose to judge): the stored record read not-done and still isSubpotent
    true from the PA (``immunization_subpotent`` RE was "", stating nothing the merge would replace)."""
    acks = send_as(engine, names, vaccination("RV5", "PA"), vaccination("RV6", "RE"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (imm,) = written_as(engine, fhir, names, "RV6", "Immunization")
    valid(imm)
    assert imm["status"] == "not-done"
    assert imm.get("isSubpotent") is not True, imm


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_timed_collection_is_found_by_a_time_inside_it_on_both_backends(settings: Any, backend: str) -> None:
    """Specimen?collected=le<a time inside the 24 hours> finds the period; ge<the day after> does not."""
    from engine.api.app import create_app

    eng = Engine(settings if backend == "sqlite" else settings.with_(mongodb_uri="mongomock://"))
    try:
        with TestClient(create_app(eng)) as client:
            client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his-feed", "system/*.cruds")
            r = client.post("/hl7v2", content=urine("RM1", "20261201080000^20261202080000", "SP-RM1"),
                            headers={"Content-Type": "x-application/hl7-v2+er7"})
            assert r.status_code == 200 and ack_code_of(r.content) == "AA", r.text
            inside = client.get("/fhir/Specimen", params={"collected": "le2026-12-01T20:00:00+08:00"})
            after = client.get("/fhir/Specimen", params={"collected": "ge2026-12-03"})
            assert inside.status_code == after.status_code == 200, (inside.text, after.text)
            assert [e["resource"]["collection"] for e in inside.json().get("entry", [])] == [
                {"collectedPeriod": {"start": "2026-12-01T08:00:00+08:00", "end": "2026-12-02T08:00:00+08:00"}}]
            assert not after.json().get("entry"), after.json()
    finally:
        eng.close()


def test_an_equipment_resources_own_status_is_kept(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """AIG-14 (filler status) Cancelled → the equipment participant declined; the others untouched."""
    message = booking("RG1").replace(b"AIL|", "AIG|1||EQ1^B超机^L|||||20261205083000||||||Cancelled\rAIL|".encode(), 1)
    (ack,) = send_as(engine, names, message)
    assert ack_code_of(ack) == "AA", ack
    appt = valid(appointment(engine, fhir, names, "RG1"))
    statuses = sorted(p["status"] for p in appt["participant"])
    assert statuses == ["accepted", "accepted", "accepted", "declined"], appt["participant"]


def test_a_role_needed_then_withdrawn_is_declined(engine: Engine, fhir: TestClient, names: Names) -> None:  # noqa: F811
    """S12 books an anaesthetist by role alone (needs-action); S14 withdraws the role (AIP-2 D): the
    stored appointment no longer says an anaesthetist is needed."""
    role = "AIP|2|{}||AN^麻醉医师^L||20261205083000\rAIL|"
    first = (booking("RW2").replace(b"AP-RW2", b"AP-RW").replace(b"BK-RW2", b"BK-RW")
             .replace(b"AIL|", role.format("").encode(), 1))
    second = (booking("RW3").replace(b"SIU^S12", b"SIU^S14").replace(b"AP-RW3", b"AP-RW")
              .replace(b"BK-RW3", b"BK-RW").replace(b"AIL|", role.format("D").encode(), 1))
    acks = send_as(engine, names, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RW3"))
    roles = [p for p in appt["participant"] if "actor" not in p]
    assert [p["status"] for p in roles] == ["declined"], appt["participant"]


@pytest.mark.parametrize("kind,segment", [
    ("Location", "AIL|1|D|US^201^1^FNXRMYY|||20261205083000"),
    ("Device", "AIG|1|D|EQ1^B超机^L|||||20261205083000"),
])
def test_a_room_or_machine_deleted_by_its_segment_action_code_is_declined(
        engine: Engine, fhir: TestClient, names: Names, kind: str, segment: str) -> None:  # noqa: F811
    """AIL-2/AIG-2 D as AIP-2 D: the room (or machine) a later message takes off the booking is
    declined, not left accepted."""
    first = (booking("RK1").replace(b"AP-RK1", b"AP-RK").replace(b"BK-RK1", b"BK-RK")
             .replace(b"AIL|", "AIG|1||EQ1^B超机^L|||||20261205083000\rAIL|".encode(), 1))
    second = siu("RK2", "S14", "SCH|AP-RK|BK-RK||||||NORMAL|30|min|^^^20261205083000|||||||||||||||Booked",
                 PID, segment)
    acks = send_as(engine, names, first, second)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    appt = valid(appointment(engine, fhir, names, "RK2"))
    declined = [p["actor"] for p in appt["participant"] if p["status"] == "declined"]
    accepted = [p["actor"] for p in appt["participant"] if p["status"] == "accepted"]
    # each scheduling message states the participant list whole (the by-key merge was withdrawn after
    # its review): the resource taken off is there, declined, and not also accepted
    assert len(declined) == 1 and declined[0] not in accepted, json.dumps(appt["participant"], ensure_ascii=False)
    assert (declined[0].get("reference", "").startswith("Location/") if kind == "Location"
            else declined[0].get("display") == "B超机"), declined
