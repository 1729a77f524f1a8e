"""sched24: a TQ1 length beside the appointment's duration is read as a quantity in its unit, not as
written. SCH-9/10 30 min beside TQ1-13 ``0.5^h`` (or ``1800^s``) states one length: the ACK named it as a
second, disagreeing one (an ERR at SCH-9 on every such booking); a TQ1-6/13 unit huren does not read was
never said at its field. Real HL7 over MLLP (``send``), the real store, read back through /fhir."""

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
from tests.test_sched22_rv_probes import _text

BOOKED = ("2026-12-05T08:30:00+08:00", "2026-12-05T09:00:00+08:00", 30)  # SCH-11 08:30, SCH-9 30 min


def _tq1_13(length: str) -> str:
    return "TQ1|1" + "|" * 12 + length  # TQ1-13: an occurrence's duration (CQ)


def _booked(engine: Engine, fhir: TestClient, c: str, length: str) -> tuple[dict, bytes]:  # noqa: F811
    (ack,) = send(engine, siu(f"{c}1", "S12", sch(c), _tq1_13(length), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    appt = valid(appointment(engine, fhir, f"{c}1"))
    assert (appt.get("start"), appt.get("end"), appt.get("minutesDuration")) == BOOKED, (appt, _text(ack))
    return appt, ack


def _said_at(ack: bytes, where: str) -> list[str]:
    return [e[8] for e in err_fields(ack) if e[2] == where]


@pytest.mark.parametrize("c,length", [("XA", "0.5^h"), ("XB", "1800^s"), ("XC", "30^min&minute&UCUM"), ("XD", "30")])
def test_a_tq1_13_of_the_same_length_in_another_unit_is_no_disagreement(
        engine: Engine, fhir: TestClient, c: str, length: str) -> None:  # noqa: F811
    """SCH-9 30 min, TQ1-13 half an hour: one length. All four fail on base (each named at SCH-9 as
    a length huren does not read and that may differ)."""
    _, ack = _booked(engine, fhir, c, length)
    assert not _said_at(ack, "SCH^1^9"), _text(ack)
    assert not _said_at(ack, "TQ1^1^13"), _text(ack)


def test_a_tq1_13_of_another_length_is_still_said_at_sch_9(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard (schedfix23b): 60 min beside SCH-9 30 min -- SCH-9 read, the TQ1-13 named at SCH-9."""
    _, ack = _booked(engine, fhir, "XE", "1^h")
    said = _said_at(ack, "SCH^1^9")
    assert said and "TQ1-13 (1 h)" in said[0], _text(ack)


def test_a_tq1_13_unit_not_understood_is_said_at_tq1_13(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """TQ1-13 ``2^fortnight``: not a unit huren reads -- said at TQ1-13 naming it (fails on base: nothing at
    TQ1-13), and, being no length huren can compare, still named at SCH-9 beside the duration read."""
    _, ack = _booked(engine, fhir, "XF", "2^fortnight")
    said = _said_at(ack, "TQ1^1^13")
    assert said and "'fortnight'" in said[0] and "TQ1-13" in said[0], _text(ack)
    assert any("TQ1-13 (2 fortnight)" in t for t in _said_at(ack, "SCH^1^9")), _text(ack)
