"""rvrvsched23c: third look at sched23's minutesDuration-within-span rule. Real HL7 over MLLP (``send``),
the real store, read via /fhir."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import merge_rules
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_sched21_status_times import sch
from tests.test_sched22_changes import AT, D01
from tests.test_sched22_rv_probes import _text

OLD = ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00")


def test_an_s13_stating_a_shorter_start_and_end_takes_them(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 08:30 for 30 min; S13 moves it to SCH-11 10:00^10:15 (start AND end stated, SCH-9 empty). The
    merge keeps the stored minutesDuration 30, which exceeds the new 15-minute span, so the new rule puts
    back the OLD start/end: an explicit reschedule is lost (AA + warning). Expected: the stated times."""
    acks = send(engine, siu("XA1", "S12", sch("XA"), PID),
                siu("XA2", "S13", sch("XA", duration="|", timing="^^^20261206100000^20261206101500"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "XA2"))
    assert (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:15:00+08:00"), (
        appt, _text(acks[1]))
    assert appt.get("minutesDuration", 0) <= 15, appt


def test_an_s13_stating_a_longer_start_and_end_takes_them(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: 10:00^10:45 (longer than the stored 30) is taken."""
    acks = send(engine, siu("XB1", "S12", sch("XB"), PID),
                siu("XB2", "S13", sch("XB", duration="|", timing="^^^20261206100000^20261206104500"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "XB2"))
    assert (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:45:00+08:00"), appt


@pytest.mark.parametrize("c,event,status,want", [
    ("XC", "S15", "Cancelled", "cancelled"),
    ("XD", "S26", "Noshow", "noshow"),
    ("XE", "S14", "Booked", "booked"),
])
def test_status_is_taken_when_the_times_are_kept(engine: Engine, fhir: TestClient, c: str, event: str,  # noqa: F811
                                                  status: str, want: str) -> None:
    """A message whose SCH-9 exceeds the stored span (times kept): its status change is still taken."""
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID),
                siu(f"{c}2", event, sch(c, status=status, duration="60|min", timing=""), PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, f"{c}2"))
    assert appt.get("status") == want, (appt, _text(acks[1]))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 30), (appt, _text(acks[1]))


def test_sch_9_in_hours_within_the_span_is_kept(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: S12 08:30^10:30 beside SCH-9 2 h is 120 min, within the span, kept."""
    acks = send(engine, siu("XF1", "S12", sch("XF", duration="2|h", timing="^^^20261205083000^20261205103000"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = valid(appointment(engine, fhir, "XF1"))
    assert appt.get("minutesDuration") == 120, (appt, _text(acks[0]))


def _legacy(engine: Engine, fhir: TestClient, c: str, monkeypatch: pytest.MonkeyPatch) -> dict:  # noqa: F811
    """An appointment stored before this round with minutesDuration 60 in its 30-minute span (base stored
    SCH-9 60 beside SCH-11 08:30^09:00 so, and a FHIR PUT so): set up via S12 then the row written through
    the repository as base did (this round's span rule off for the setup write only, then restored)."""
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = appointment(engine, fhir, f"{c}1")
    appt = {k: v for k, v in appt.items() if k != "meta"}
    appt["minutesDuration"] = 60
    with monkeypatch.context() as m:
        m.setattr(merge_rules, "_length_within_span", lambda *a: None)
        engine.repository.update(appt)  # the store as a row written before this round
    assert fhir.get(f"/fhir/Appointment/{appt['id']}").json().get("minutesDuration") == 60, "setup"
    return appt


@pytest.mark.parametrize("c,event,status,want", [
    ("XG", "S26", "Noshow", "noshow"),
    ("XH", "S15", "Cancelled", "cancelled"),
    ("XI", "S14", "Booked", "booked"),
])
def test_a_thinner_message_does_not_erase_a_stored_minutes_duration(
        engine: Engine, fhir: TestClient, c: str, event: str, status: str, want: str,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A status-only message (no SCH-9, no SCH-11) on an appointment stored with minutesDuration 60 in a
    30-minute span: the message states no length, so what was stored should read as before (not erased)."""
    before = _legacy(engine, fhir, c, monkeypatch)
    acks = send(engine, siu(f"{c}2", event, sch(c, status=status, duration="|", timing=""), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = fhir.get(f"/fhir/Appointment/{before['id']}").json()
    assert appt.get("status") == want, appt
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 60), (appt, _text(acks[0]))


def test_a_fhir_put_moving_to_a_shorter_span_is_stored_or_refused_never_200_with_the_old_times(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """REST PUT (replace) of the stored appointment moved to 10:00-10:15 with minutesDuration 30: the span rule
    in merge_rules also runs on FHIR writes; it answers 200 but keeps the OLD 08:30-09:00 (on base the PUT was
    stored as sent). A 200 must mean the client's times were stored; else a 4xx OperationOutcome."""
    acks = send(engine, siu("XJ1", "S12", sch("XJ"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = {k: v for k, v in appointment(engine, fhir, "XJ1").items() if k != "meta"}
    appt.update(start="2026-12-06T10:00:00+08:00", end="2026-12-06T10:15:00+08:00", minutesDuration=30)
    token = engine.auth.issue_system_token("his", "system/*.cruds")
    r = fhir.put(f"/fhir/Appointment/{appt['id']}", json=appt, headers={"Authorization": "Bearer " + token})
    assert r.status_code < 500, r.text
    if r.status_code in (200, 201):
        got = fhir.get(f"/fhir/Appointment/{appt['id']}").json()
        assert (got.get("start"), got.get("end")) == (appt["start"], appt["end"]), (r.status_code, got)


def test_an_s13_stating_a_shorter_span_in_tq1_7_8_takes_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """As the SCH-11 case, with the new times in TQ1-7/TQ1-8 (SCH-9/11 empty): 10:00-10:15 is the message's."""
    acks = send(engine, siu("XK1", "S12", sch("XK"), PID),
                siu("XK2", "S13", sch("XK", duration="|", timing=""), "TQ1|1||||||20261206100000|20261206101500", PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "XK2"))
    assert (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:15:00+08:00"), (
        appt, _text(acks[1]))


@pytest.mark.parametrize("c,duration", [("XL", "15|min"), ("XM", "900|s")])
def test_an_s13_stating_a_shorter_span_with_its_sch_9_takes_both(engine: Engine, fhir: TestClient, c: str,  # noqa: F811
                                                                  duration: str) -> None:
    """Guard: 10:00^10:15 with SCH-9 15 min (or 900 s) is taken, minutesDuration 15."""
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID),
                siu(f"{c}2", "S13", sch(c, duration=duration, timing="^^^20261206100000^20261206101500"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, f"{c}2"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-06T10:00:00+08:00", "2026-12-06T10:15:00+08:00", 15), (appt, _text(acks[1]))


def test_an_s17_delete_after_a_kept_span_answers_and_does_not_500(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: S17 with a SCH-9 longer than the stored span answers AA/AE (never a 500/AR for it)."""
    acks = send(engine, siu("XN1", "S12", sch("XN"), PID),
                siu("XN2", "S17", sch("XN", status="Deleted", duration="60|min", timing=""), PID))
    assert ack_code_of(acks[0]) == "AA" and ack_code_of(acks[1]) in ("AA", "AE"), [_text(x) for x in acks]


def test_a_participant_added_when_the_times_are_kept_is_taken(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: an S14 whose SCH-9 60 exceeds the stored 30-minute span (stored times kept) still adds its AIP."""
    acks = send(engine, siu("XO1", "S12", sch("XO"), PID),
                siu("XO2", "S14", sch("XO", duration="60|min", timing=""), PID, "RGS|1|A", f"AIP|1||{D01}|{AT}"))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "XO2"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 30), (appt, _text(acks[1]))
    assert any(p["actor"].get("reference", "").startswith("Practitioner/") for p in appt["participant"]), appt
