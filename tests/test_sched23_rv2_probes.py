"""rvsched23b: re-review probes of schedfix23's mend (TQ1-13/TQ1-6 read as the appointment's length when
SCH-9 is empty, for every SIU event). Real HL7 over MLLP (``send``), the real store, read via /fhir.

schedfix23b took the conservative path: TQ1-6/TQ1-13 are not read as an appointment's length for any event;
an S13 start alone beside one keeps the stored times, said (ERR W) at the start's field naming it. Probes
whose expectation assumed TQ1 reading now expect that (marked "schedfix23b" below); the rest are as written."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.shared_worlds44d import reader_engine as engine  # noqa: F401 -- fixtures: the module's engine and reader
from tests.shared_worlds44d import reader_fhir as fhir  # noqa: F401
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import send
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text

OLD = ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00")  # the S12's 08:30 for 30 min
T10 = "20261206100000"


def _tq1(service: str = "", start: str = "", end: str = "", occurrence: str = "") -> str:
    fields = ["TQ1", "1", "", "", "", "", service, start, end, "", "", "", "", occurrence]
    assert fields[6] == service and fields[7] == start and fields[13] == occurrence
    return "|".join(fields).rstrip("|")


def _moved(engine: Engine, fhir: TestClient, c: str, second: list[str], *, duration: str = "|",  # noqa: F811
           timing: str = "", event: str = "S13") -> tuple[dict, bytes]:
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID), siu(f"{c}2", event, sch(c, duration=duration, timing=timing), *second))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    return valid(appointment(engine, fhir, f"{c}2")), acks[1]


def _kept_said_at_tq1_7(appt: dict, ack: bytes, *named: str) -> None:
    """schedfix23b: the stored 08:30-09:00 (30 min) stands, said at TQ1-7 naming the TQ1 length(s)."""
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 30), (appt, _text(ack))
    said = [e[8] for e in err_fields(ack) if e[2] == "TQ1^1^7"]
    assert said and all(n in said[0] for n in named) and "stored earlier stand" in said[0], _text(ack)


def _span_minutes(appt: dict) -> float:
    return (dt.datetime.fromisoformat(appt["end"]) - dt.datetime.fromisoformat(appt["start"])).total_seconds() / 60


# --- findings (fail at f14027c) ---------------------------------------------------------------------


def test_s12_tq1_service_duration_beside_stated_start_and_end_is_no_longer_minutes_duration(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12: TQ1-7 10:00, TQ1-8 10:30, TQ1-6 service duration 1 wk (how long the service is wanted).
    The stated span is 30 min; minutesDuration becomes 10080 -- R4 minutesDuration may be less than
    end - start, never more. New since the mend (TQ1 was not read before)."""
    acks = send(engine, siu("RBA1", "S12", sch("RBA", duration="|", timing=""), _tq1("1^wk", T10, "20261206103000"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = valid(appointment(engine, fhir, "RBA1"))
    assert appt.get("minutesDuration", 0) <= _span_minutes(appt), (appt, _text(acks[0]))


def test_s13_sch9_and_tq1_13_that_differ_are_not_silently_resolved_by_sch9(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S13: SCH-9/10 30 min, SCH-11 empty, TQ1-7 10:00, TQ1-13 60 min. Two appointment durations that
    differ -- the mend keeps the stored times for TQ1-6 vs TQ1-13, but SCH-9 vs TQ1-13 is taken as SCH-9
    (10:00-10:30) with no ERR naming TQ1-13."""
    appt, ack = _moved(engine, fhir, "RBB", [_tq1(start=T10, occurrence="60^min"), PID], duration="30|min")
    took_sch9 = (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00")
    assert not took_sch9 or "TQ1-13" in _text(ack), (appt, _text(ack))


def test_s13_second_tq1_with_another_occurrence_duration_is_not_ignored_unsaid(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S13 with two TQ1 (v2.5.1 SIU: TQ1 repeats): 60 min and 90 min. Only the first is read; the
    appointment gets 10:00-11:00 and the ACK says nothing of the second."""
    appt, ack = _moved(engine, fhir, "RBC", [_tq1(start=T10, occurrence="60^min"),
                                               "TQ1|2||||||" + T10 + "||||||90^min", PID])
    took_first = appt.get("end") == "2026-12-06T11:00:00+08:00"
    assert not took_first or "TQ1^2" in _text(ack) or "90" in _text(ack), (appt, _text(ack))


def test_s13_tq1_durations_equal_in_length_but_not_in_spelling_are_read(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """TQ1-6 1 h and TQ1-13 60 min are the same length: compared as strings they 'differ' and the new
    time is refused (stored times stand). LOW: a refusal where both fields agree.
    schedfix23b: neither is read (no text comparison left) -- the stored times stand, said naming both."""
    appt, ack = _moved(engine, fhir, "RBD", [_tq1("1^h", T10, occurrence="60^min"), PID])
    _kept_said_at_tq1_7(appt, ack, "TQ1-6 (1 h)", "TQ1-13 (60 min)")


# --- guards (pass at f14027c) -----------------------------------------------------------------------


@pytest.mark.parametrize("c,occ", [
    ("RG1", "2^h"),
    ("RG2", "5400^s"),
    ("RG3", "45^M"),  # ISO+/ANSI+ minute
    ("RG4", "45"),  # no unit
    ("RG5", "45^min&minute&UCUM"),  # coded CE unit
    ("RG6", "1^d"),
])
def test_s13_tq1_13_units(engine: Engine, fhir: TestClient, c: str, occ: str) -> None:  # noqa: F811
    """schedfix23b: was "ends by TQ1-13 in its unit"; TQ1-13 is no longer read -- whatever its unit, the
    stored times stand, said at TQ1-7 naming TQ1-13."""
    appt, ack = _moved(engine, fhir, c, [_tq1(start=T10, occurrence=occ), PID])
    _kept_said_at_tq1_7(appt, ack, "TQ1-13")


@pytest.mark.parametrize("c,occ,why", [
    ("RH1", "1^mo", "unit"),
    ("RH2", "1^a", "unit"),
    ("RH3", "-30^min", "negative"),
    ("RH4", "abc^min", "not a number"),
    ("RH5", "1" + "0" * 40 + "^min", "ten years"),
    ("RH6", "30,5^min", "not a number"),
])
def test_s13_unreadable_tq1_13_keeps_the_stored_times_said_at_tq1_13(engine: Engine, fhir: TestClient, c: str, occ: str, why: str) -> None:  # noqa: F811
    """schedfix23b: TQ1-13 is not read, so its unit or number is not judged (was: said at TQ1-13 why);
    the stored times stand, said at TQ1-7 naming TQ1-13 -- never a 500."""
    appt, ack = _moved(engine, fhir, c, [_tq1(start=T10, occurrence=occ), PID])
    _kept_said_at_tq1_7(appt, ack, "TQ1-13")


def test_s13_tq1_6_unknown_unit_said_at_tq1_6(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """schedfix23b: said at TQ1-7 naming TQ1-6 (was: at TQ1-6, its unit judged)."""
    appt, ack = _moved(engine, fhir, "RH7", [_tq1("2^fortnight", T10), PID])
    _kept_said_at_tq1_7(appt, ack, "TQ1-6 (2 fortnight)")


def test_s13_tq1_7_with_its_own_offset_ends_by_tq1_13(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """schedfix23b: was "ends by TQ1-13"; the stored times stand, said naming TQ1-13."""
    appt, ack = _moved(engine, fhir, "RI1", [_tq1(start=T10 + "-0500", occurrence="60^min"), PID])
    _kept_said_at_tq1_7(appt, ack, "TQ1-13 (60 min)")


@pytest.mark.parametrize("event", ["S12", "S14", "S15", "S17"])
def test_other_events_take_a_tq1_13_end_and_never_500(engine: Engine, fhir: TestClient, event: str) -> None:  # noqa: F811
    c = f"RJ{event[1:]}"
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID),
                siu(f"{c}2", event, sch(c, duration="|", timing="", status="Booked"), _tq1(start=T10, occurrence="60^min"), PID))
    assert all(ack_code_of(x) in ("AA", "AE") for x in acks), [_text(x) for x in acks]
    # ERR-3 (a bare b"207" also matched the digits of MSH-7 or a control id: flaky)
    assert b"|207^" not in acks[1] or event != "S14", _text(acks[1])


def test_s14_thinner_tq1_13_alone_does_not_leave_minutes_duration_beyond_the_stored_span(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S14 with no start anywhere but TQ1-13 60 min beside a stored 08:30-09:00."""
    appt, ack = _moved(engine, fhir, "RK1", [_tq1(occurrence="60^min"), PID], event="S14")
    assert appt.get("minutesDuration", 0) <= _span_minutes(appt), (appt, _text(ack))


def test_s13_tq1_13_of_90_seconds_leaves_the_stored_minutes_duration_beyond_the_new_span(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S13 TQ1-7 10:00, TQ1-13 90 s: the end moves to 10:01:30 but the stored minutesDuration 30 stays
    (the new one is not whole minutes, so none is sent and the merge keeps the old) -- 30 min in a 1.5 min span."""
    appt, ack = _moved(engine, fhir, "RL1", [_tq1(start=T10, occurrence="90^s"), PID])
    assert appt.get("minutesDuration", 0) <= _span_minutes(appt), (appt, _text(ack))
    _kept_said_at_tq1_7(appt, ack, "TQ1-13 (90 s)")  # schedfix23b: was "the end moves to 10:01:30"


def test_s13_tq1_6_course_of_a_repeating_service_is_not_one_appointments_length(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S13 TQ1-3 repeat pattern Q1D (daily), TQ1-6 service duration 5 d, TQ1-7 10:00: TQ1-6 is how long
    the repeating service runs, not one occurrence -- the appointment is made to end five days later."""
    seg = "TQ1|1||Q1D|||5^d|" + T10
    appt, ack = _moved(engine, fhir, "RM1", [seg, PID])
    assert appt.get("end") != "2026-12-11T10:00:00+08:00", (appt, _text(ack))
