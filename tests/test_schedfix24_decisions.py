"""schedfix24: the answers chosen where the review of sched24 left a choice -- which booking statuses free a
filler id, a booking stored under a merged record, a new placer id, the upper-case ``M``. Real HL7 over MLLP
(``send``), the real store and patient index, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv_probes import OTHER, _all, _booked, _sch


def test_a_cancelled_bookings_number_is_not_another_patients(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S15 cancels A's booking (it stays the filler's appointment under its number, v2.5.1 ch. 10); B's S12
    under the same SCH-2 is refused at PID-3 -- only an S17 (entered in error) frees the number."""
    acks = send(engine, siu("C1", "S12", sch("CX"), PID), siu("C2", "S15", sch("CX"), PID),
                siu("C3", "S12", sch("CX"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AE"], [_text(a) for a in acks]
    assert [e for e in err_fields(acks[2]) if e[2] == "PID^1^3"], _text(acks[2])
    assert [a["status"] for a in _all(fhir, "BK-CX")] == ["cancelled"]


def test_a_reschedule_under_the_record_a_merge_kept_moves_the_one_booking(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Booked under ZY24R, ADT^A40 merges ZY24R into ZY20S, the S13 under ZY20S: schedfix24 refused it at PID-3
    (the booking was keyed under the merged record); since sched25 the filler's id keys the booking, and the
    S13 moves the one booking (its id kept) to the record the merge kept (c419d77: AA and a second booked
    Appointment for the one slot)."""
    a40 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091600||ADT^A40^ADT_A39|M40|P|2.5.1\r"
           "EVN|A40|20261201091600\r" + PID + "\rMRG|ZY24R^^^FNXRMYY^MR\r").encode()
    (first,) = send(engine, siu("M1", "S12", sch("MG"), OTHER))
    (before,) = _booked(fhir, "BK-MG")
    acks = send(engine, a40, siu("M2", "S13", sch("MG", timing="^^^20261206100000"), PID))
    assert [ack_code_of(a) for a in (first, *acks)] == ["AA", "AA", "AA"], [_text(a) for a in acks]
    (after,) = _booked(fhir, "BK-MG")
    kept = fhir.get("/fhir/Patient", params={"identifier": "ZY20S"}).json()["entry"][0]["resource"]["id"]
    assert after["id"] == before["id"] and after["start"] == "2026-12-06T10:00:00+08:00", after
    assert after["participant"][0]["actor"]["reference"] == f"Patient/{kept}", after["participant"]


def test_a_new_placer_id_replaces_the_stored_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The ids are kinds: an S14 naming another SCH-1 replaces the placer id (not kept beside it)."""
    acks = send(engine, siu("N1", "S12", sch("NP"), PID), siu("N2", "S14", _sch("AP-NP2", "BK-NP"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-NP")
    assert sorted(i["value"] for i in appt["identifier"]) == ["AP-NP2", "BK-NP"], appt["identifier"]


def test_the_filler_id_is_the_sending_applications(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-2 with no namespace: the system names the sending application at its facility (MSH-3, MSH-4)."""
    (ack,) = send(engine, siu("P1", "S12", sch("PS"), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    (appt,) = _all(fhir, "BK-PS")
    assert {i["system"] for i in appt["identifier"]} == {"urn:huren:appointment:FNXRMYY:HIS"}, appt["identifier"]


def test_an_upper_case_m_is_still_the_minute(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: SCH-10 ``M`` (the minute schedulers send) still ends a 30-minute appointment."""
    (ack,) = send(engine, siu("Q1", "S12", "SCH|AP-QM|BK-QM||||||NORMAL|30|M|^^^20261205083000" + "|" * 14 + "Booked", PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    (appt,) = _all(fhir, "BK-QM")
    assert (appt["end"], appt.get("minutesDuration")) == ("2026-12-05T09:00:00+08:00", 30), appt
