"""schedfix23: an S13 moving the start alone beside a duration the message states elsewhere (rvsched23's
HIGH finding). schedfix23b (the re-review, rvrvsched23b): TQ1-13 / TQ1-6 are not read as the appointment's
length (TQ1-6 is a repeating service's course); a length stated anywhere (TQ1-6/13, SCH-11.3, a resource's
own AIS-7/AIP-9) beside a start alone keeps the stored times, said at the start's field; minutesDuration is
never left longer than end - start. Real HL7 over MLLP (``send``), the real store, read via /fhir."""

from __future__ import annotations

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
from tests.test_sched22_changes import AT, D01
from tests.test_sched22_rv_probes import _text

OLD = ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00")  # the S12's 08:30 for 30 min


def _moved(engine: Engine, fhir: TestClient, c: str, second: list[str], *, timing: str, duration: str = "|",  # noqa: F811
           event: str = "S13") -> tuple[dict, bytes]:
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID), siu(f"{c}2", event, sch(c, duration=duration, timing=timing), *second))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    return valid(appointment(engine, fhir, f"{c}2")), acks[1]


@pytest.mark.parametrize("c,tq1,named", [
    ("WA", "TQ1|1||||||20261206100000||||||60^min", ["TQ1-13 (60 min)"]),  # TQ1-13 occurrence duration
    ("WB", "TQ1|1|||||1^h|20261206100000", ["TQ1-6 (1 h)"]),  # TQ1-6 service duration, in hours
    ("WC", "TQ1|1|||||60^min|20261206100000||||||60^min", ["TQ1-6 (60 min)", "TQ1-13 (60 min)"]),  # both
])
def test_an_s13_start_alone_with_a_tq1_duration_keeps_the_old_times(
        engine: Engine, fhir: TestClient, c: str, tq1: str, named: list[str]) -> None:  # noqa: F811
    """S13 with SCH-9/10/11 empty, TQ1-7 10:00 and a TQ1 duration of an hour: the stored 30 min was
    applied as though none was sent (rvsched23); schedfix23 read TQ1 as the length (rvrvsched23b: TQ1-6 is
    a course); now the stored times stand, said at TQ1-7 naming the TQ1 field -- as base did for AIS-7."""
    appt, ack = _moved(engine, fhir, c, [tq1, PID], timing="")
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 30), (appt, _text(ack))
    said = [e[8] for e in err_fields(ack) if e[2] == "TQ1^1^7"]
    assert said and all(n in said[0] for n in named) and "stored earlier stand" in said[0], _text(ack)
    assert "keeps its stored length" not in _text(ack), _text(ack)


def test_an_s13_start_alone_with_two_tq1_durations_that_differ_keeps_the_old_times(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """TQ1-6 90 min and TQ1-13 60 min: which is the appointment's is a guess -- the stored times stand,
    said at TQ1-7 naming both."""
    appt, ack = _moved(engine, fhir, "WD", ["TQ1|1|||||90^min|20261206100000||||||60^min", PID], timing="")
    assert (appt.get("start"), appt.get("end")) == OLD, (appt, _text(ack))
    said = [e[8] for e in err_fields(ack) if e[2] == "TQ1^1^7"]
    assert said and "TQ1-13" in said[0] and "TQ1-6" in said[0] and "stored earlier stand" in said[0], _text(ack)


@pytest.mark.parametrize("c,seg,field", [
    ("WE", "AIS|1||US1^腹部B超^L|20261206100000|0|MIN|60|MIN", "AIS-7"),
    ("WF", f"AIP|1||{D01}|{AT}||20261206100000|0|MIN|45|MIN", "AIP-9"),
])
def test_an_s13_start_alone_beside_a_resource_duration_keeps_the_old_times(
        engine: Engine, fhir: TestClient, c: str, seg: str, field: str) -> None:  # noqa: F811
    """SCH-11 10:00 alone beside a resource's own duration: not the stored length (10:00-10:30), not a
    guess from the resource's -- the stored times stand, said at SCH-11 naming the field."""
    appt, ack = _moved(engine, fhir, c, [PID, "RGS|1|A", seg], timing="^^^20261206100000")
    assert (appt.get("start"), appt.get("end")) == OLD, (appt, _text(ack))
    said = [e[8] for e in err_fields(ack) if e[2] == "SCH^1^11"]
    assert said and field in said[0] and "stored earlier stand" in said[0], _text(ack)
    assert "keeps its stored length" not in _text(ack), _text(ack)


def test_an_s13_start_alone_with_nothing_else_still_keeps_the_stored_length(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard (sched23): no duration anywhere -- 10:00 with the stored 30 min."""
    appt, ack = _moved(engine, fhir, "WG", [PID], timing="^^^20261206100000")
    assert (appt.get("start"), appt.get("end")) == ("2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00"), (
        appt, _text(ack))


def test_an_s13_start_alone_beside_sch_11_3_keeps_the_old_times(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-11.3 (the TQ's duration component) valued beside a start alone: a length is stated, so the
    stored length is not applied as though none was -- the stored times stand, said naming SCH-11.3."""
    appt, ack = _moved(engine, fhir, "WH", [PID], timing="^^M60^20261206100000")
    assert (appt.get("start"), appt.get("end")) == OLD, (appt, _text(ack))
    said = [e[8] for e in err_fields(ack) if e[2] == "SCH^1^11"]
    assert said and "SCH-11.3" in said[0] and "stored earlier stand" in said[0], _text(ack)


def test_sch_9_beside_a_tq1_13_is_read_and_the_tq1_one_is_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-9 30 min (the appointment's duration) and TQ1-13 60 min: SCH-9 is read as before this round,
    and the ACK names the TQ1-13 it did not read (rvrvsched23b: it was settled unsaid)."""
    acks = send(engine, siu("WI1", "S12", sch("WI"), PID),
                siu("WI2", "S13", sch("WI", timing=""), "TQ1|1||||||20261206100000||||||60^min", PID))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    appt = valid(appointment(engine, fhir, "WI2"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-06T10:00:00+08:00", "2026-12-06T10:30:00+08:00", 30), (appt, _text(acks[1]))
    said = [e[8] for e in err_fields(acks[1]) if e[2] == "SCH^1^9"]
    assert said and "TQ1-13 (60 min)" in said[0], _text(acks[1])


def test_an_s13_sch_9_of_90_seconds_does_not_leave_the_stored_30_minutes_in_a_shorter_span(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Finding 6 through SCH-9 (on base too): 10:00 for 90 s -- no whole-minute minutesDuration is sent, the
    merge kept the stored 30 in a 1.5-minute span (R4: never more than end - start). The message states
    its start and its length, so its times are taken; the stored 30 min it does not send is not kept,
    said (the lead, after the third review of sched23: a message's own times are never put back)."""
    appt, ack = _moved(engine, fhir, "WJ", [PID], timing="^^^20261206100000", duration="90|s")
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-06T10:00:00+08:00", "2026-12-06T10:01:30+08:00", None), (appt, _text(ack))
    assert "minutesDuration" in _text(ack) and "states no length: not kept" in _text(ack), _text(ack)


def test_an_s14_sch_9_longer_than_the_stored_span_keeps_the_stored_three(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Finding 5 through SCH-9 (on base too): an S14 with no start but SCH-9 60 min beside a stored
    08:30-09:00 left minutesDuration 60 in a 30-minute span; now the stored three stand, said."""
    appt, ack = _moved(engine, fhir, "WK", [PID], timing="", duration="60|min", event="S14")
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, 30), (appt, _text(ack))
    assert "stored start, end and minutesDuration stand" in _text(ack), _text(ack)


def test_an_s12_sch_9_longer_than_its_stated_span_is_not_stored(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A new appointment stating 08:30-09:00 and SCH-9 60 min: the stated times stand, minutesDuration is
    not stored (it was 60 in a 30-minute span), said at SCH-9."""
    acks = send(engine, siu("WL1", "S12", sch("WL", duration="60|min", timing="^^^20261205083000^20261205090000"), PID))
    assert [ack_code_of(x) for x in acks] == ["AA"], _text(acks[0])
    appt = valid(appointment(engine, fhir, "WL1"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (*OLD, None), (appt, _text(acks[0]))
    said = [e[8] for e in err_fields(acks[0]) if e[2] == "SCH^1^9"]
    assert said and "longer than the appointment's stated span" in said[0], _text(acks[0])
