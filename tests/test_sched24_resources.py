"""sched24: with no SCH-11/TQ1 time, an appointment booked as several resources at their own starts ends
when the last of them does (v2.5.1 ch. 10, AIS-7: a resource's duration is its own, "if different from the
overall duration"). The end was the first-read resource's duration added to the earliest start: AIS 09:00
for 30 min beside AIP 08:30 for 60 min ended the visit at 09:00, before either resource's booking did.
Real HL7 over MLLP, the real store, read back through /fhir."""

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


def _ais(start: str, length: str = "") -> str:
    return f"AIS|1||US1^腹部B超^L|{start}|||{length}"


def _aip(start: str, length: str = "") -> str:
    return f"AIP|1||{D01}|{AT}||{start}|||{length}"


def _booked(engine: Engine, fhir: TestClient, c: str, *resources: str) -> tuple[dict, bytes]:  # noqa: F811
    (ack,) = send(engine, siu(f"{c}1", "S12", sch(c, duration="|", timing=""), PID, "RGS|1|A", *resources))
    assert ack_code_of(ack) == "AA", _text(ack)
    return valid(appointment(engine, fhir, f"{c}1")), ack


@pytest.mark.parametrize("c,resources,times", [
    # AIS 09:00-09:30, AIP 08:30-09:30: base 08:30-09:00 (the AIS's 30 min from the AIP's start)
    ("ZA", (_ais("20261205090000", "30|MIN"), _aip("20261205083000", "60|MIN")),
     ("2026-12-05T08:30:00+08:00", "2026-12-05T09:30:00+08:00", 60)),
    # both at 09:00, the doctor for an hour: base 09:00-09:30
    ("ZB", (_ais("20261205090000", "30|MIN"), _aip("20261205090000", "1|H")),
     ("2026-12-05T09:00:00+08:00", "2026-12-05T10:00:00+08:00", 60)),
])
def test_several_resources_end_when_the_last_does(  # noqa: F811
        engine: Engine, fhir: TestClient, c: str, resources: tuple[str, ...], times: tuple) -> None:  # noqa: F811
    appt, ack = _booked(engine, fhir, c, *resources)
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == times, (appt, _text(ack))


def test_one_resource_still_ends_by_its_own_duration(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard (convmend20): one resource booked -- its own duration ends the appointment."""
    appt, ack = _booked(engine, fhir, "ZC", _aip("20261205083000", "45|MIN"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == (
        "2026-12-05T08:30:00+08:00", "2026-12-05T09:15:00+08:00", 45), (appt, _text(ack))


def test_a_resource_needed_past_the_stated_ends_leaves_the_end_unstated(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIS 08:30 for 30 min and AIP from 09:00 with no duration (needed "until the end of the appointment",
    which nothing states): no end is guessed -- neither time is stored, said where the start came from.
    (Base: 08:30-09:00, ending as the doctor's part begins.)"""
    appt, ack = _booked(engine, fhir, "ZD", _ais("20261205083000", "30|MIN"), _aip("20261205090000"))
    assert "start" not in appt and "end" not in appt, (appt, _text(ack))
    assert [e for e in err_fields(ack) if e[2] == "AIS^1^4"], _text(ack)


def test_an_unreadable_resource_duration_takes_no_end(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """AIP-10 ``fortnight`` beside AIS 30 min: which end is the last cannot be told -- said at AIP-10, no end."""
    appt, ack = _booked(engine, fhir, "ZE", _ais("20261205083000", "30|MIN"), _aip("20261205083000", "1|FORTNIGHT"))
    assert "end" not in appt, (appt, _text(ack))
    assert [e for e in err_fields(ack) if e[2] == "AIP^1^10"], _text(ack)
