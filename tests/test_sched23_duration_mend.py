"""schedfix23: an S13 moving the start alone beside a duration the message states elsewhere (rvsched23's
HIGH finding). TQ1-13 / TQ1-6 are the appointment's duration (read, in their CQ unit); a resource's own
duration (AIS-7, AIP-9) or two TQ1 durations that differ are not guessed from: the stored times stand and
the ACK says why at the start's field. Real HL7 over MLLP (``send``), the real store, read via /fhir."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_ingest_durability import err_fields
from tests.test_sched21_status_times import sch
from tests.test_sched22_changes import AT, D01
from tests.test_sched22_rv_probes import _text

OLD = ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00")  # the S12's 08:30 for 30 min


def _moved(engine: Engine, fhir: TestClient, c: str, second: list[str], *, timing: str) -> tuple[dict, bytes]:  # noqa: F811
    acks = send(engine, siu(f"{c}1", "S12", sch(c), PID), siu(f"{c}2", "S13", sch(c, duration="|", timing=timing), *second))
    assert [ack_code_of(x) for x in acks] == ["AA", "AA"], [_text(x) for x in acks]
    return valid(appointment(engine, fhir, f"{c}2")), acks[1]


@pytest.mark.parametrize("c,tq1", [
    ("WA", "TQ1|1||||||20261206100000||||||60^min"),  # TQ1-13 occurrence duration
    ("WB", "TQ1|1|||||1^h|20261206100000"),  # TQ1-6 service duration, in hours
    ("WC", "TQ1|1|||||60^min|20261206100000||||||60^min"),  # both, the same
])
def test_an_s13_start_alone_with_a_tq1_duration_ends_by_it(engine: Engine, fhir: TestClient, c: str, tq1: str) -> None:  # noqa: F811
    """S13 with SCH-9/10/11 empty, TQ1-7 10:00 and a TQ1 duration of an hour: 10:00-11:00 (the stored
    30 min was applied, and the ACK said "no end and no duration")."""
    appt, ack = _moved(engine, fhir, c, [tq1, PID], timing="")
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-06T10:00:00+08:00", "2026-12-06T11:00:00+08:00", 60), (appt, _text(ack))
    assert "no end and no duration" not in _text(ack), _text(ack)


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
