"""sched24: a PID naming another patient under a booked filler appointment id (SCH-1/SCH-2) -- the wrong
answer sched22/sched23 left. v2.5.1 ch. 10: SCH-2 is "the filler application's permanent identifier for the
appointment" -- the filler's, not the patient's; the converter keys the Appointment under the patient
(``SCH-2+SCH-1`` scoped to PID's record), so patient B's S14 under patient A's booking made a second booked
Appointment for the one slot (A's stayed booked at the old time). Now refused: AE, ERR at PID-3 naming the
reason (merge.yaml Appointment.participant ``another_person``, ``merge_rules._claimed``), A's booking as it
was; the key stays the patient's, so appointments stored before keep their ids. Real HL7 over MLLP, the real
store and patient index, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text

OTHER = "PID|1||ZY24B^^^FNXRMYY^MR||王^小红||19850202|F"


def _booked(fhir: TestClient, filler: str) -> list[dict]:  # noqa: F811
    bundle = fhir.get("/fhir/Appointment", params={"identifier": filler}).json()
    return [e["resource"] for e in bundle.get("entry", ()) if e["resource"].get("status") == "booked"]


def test_the_same_patient_under_the_filler_id_is_one_appointment(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: A's S12 then A's S14 moving it -- one booked Appointment, the new time."""
    acks = send(engine, siu("YB1", "S12", sch("YB"), PID), siu("YB2", "S14", sch("YB", timing="^^^20261206100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _booked(fhir, "BK-YB")
    assert appt["start"] == "2026-12-06T10:00:00+08:00", appt


def test_another_patient_under_a_booked_filler_id_is_refused_at_pid(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, siu("YA1", "S12", sch("YA"), PID), siu("YA2", "S14", sch("YA", timing="^^^20261206100000"), OTHER))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    assert len(_booked(fhir, "BK-YA")) == 1, _booked(fhir, "BK-YA")  # one booking for one slot
    assert ack_code_of(acks[1]) in ("AE", "AR") and any(e[2].startswith("PID") for e in err_fields(acks[1])), _text(acks[1])


def test_the_refusal_says_why_at_pid_and_leaves_the_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Patient B's S12 under A's booked SCH-2 (a new booking, not an update): AE, ERR at PID-3 naming the
    number (the placer's or filler's id) and the reason; A's appointment keeps its time and patient. (Base: AA and a second booking.)"""
    acks = send(engine, siu("YC1", "S12", sch("YC"), PID), siu("YC2", "S12", sch("YC", timing="^^^20261206100000"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"], [_text(a) for a in acks]
    said = [e[8] for e in err_fields(acks[1]) if e[2] == "PID^1^3"]
    assert said and ("'BK-YC' (FILL)" in said[0] or "'AP-YC' (PLAC)" in said[0]) and "another patient" in said[0], _text(acks[1])
    (appt,) = _booked(fhir, "BK-YC")
    assert appt["start"] == "2026-12-05T08:30:00+08:00", appt
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/"), appt


def test_a_new_filler_id_for_another_patient_is_booked(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: B's own booking (another SCH-1/SCH-2) beside A's -- both taken."""
    acks = send(engine, siu("YD1", "S12", sch("YD"), PID), siu("YE1", "S12", sch("YE"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    assert len(_booked(fhir, "BK-YD")) == 1 and len(_booked(fhir, "BK-YE")) == 1


def test_another_senders_same_number_is_its_own_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-1/SCH-2 sent with no namespace are their sender's (``urn:huren:appointment:<institution>``):
    another institution's booking for another patient under the same numbers is its own, not refused.
    (Fails on base only for the systems, which base did not give.)"""
    other = siu("YF2", "S12", sch("YF"), OTHER).replace(b"|HIS|FNXRMYY|", b"|HIS|FNZYY|")
    acks = send(engine, siu("YF1", "S12", sch("YF"), PID), other)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    systems = sorted(str(i.get("system")) for a in _booked(fhir, "BK-YF") for i in a["identifier"] if i["value"] == "BK-YF")
    assert len(systems) == 2 and systems[0] != systems[1], systems
