"""schedfix25b: the second review of schedfix25 mended -- the refusal of a same number in a namespace of another
kind names no system (it named another institution's), an EI-2 namespace id is the application of this
institution it names (a relay is the same booking). Real HL7 over MLLP, the real store, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv_probes import _all, _booked

OID = "1.2.156.112604.1.2"


def _with(schl: str, c: str, sent: str) -> str:
    return schl.replace(f"|BK-{c}|", f"|{sent}|", 1)


def _app(msg: bytes, msh3: str) -> bytes:
    return msg.replace(b"MSH|^~\\&|HIS|", f"MSH|^~\\&|{msh3}|".encode(), 1)


def _errs(ack: bytes) -> list[str]:
    return [s for s in ack.decode().split("\r") if s.startswith("ERR|")]


def test_a_cancel_in_another_kind_of_namespace_is_refused_at_sch2_naming_no_system(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The HIS books BK-AM with an OID its MSH-3 does not name; its cancel ``BK-AM`` (no namespace) cannot be told
    to be the same filler's: refused, AE at SCH-2, the booking stays booked -- and the ERR names no system (the
    text named the stored booking's systems, which could be another institution's)."""
    acks = send(engine, siu("AM1", "S12", _with(sch("AM"), "AM", f"BK-AM^^{OID}^ISO"), PID),
                siu("AM2", "S15", sch("AM"), PID))
    assert ack_code_of(acks[0]) == "AA", _text(acks[0])
    assert ack_code_of(acks[1]) == "AE", (_text(acks[1]), _all(fhir, "BK-AM"))
    errs = _errs(acks[1])
    assert any("|SCH^1^2|" in e for e in errs), errs
    assert not any("urn:" in e for e in errs), errs
    assert [a["status"] for a in _all(fhir, "BK-AM")] == ["booked"]


def test_a_relay_of_a_namespaced_id_reschedules_the_one_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The HIS books BK-RS sending ``BK-RS^HIS``; the interface engine (MSH-3 ``ESB``) relays its S13 with the
    same SCH-2: one Appointment, rescheduled. A third sender naming ``BK-RS^LIS`` is another filler's booking."""
    acks = send(engine, siu("RS1", "S12", _with(sch("RS"), "RS", "BK-RS^HIS"), PID),
                _app(siu("RS2", "S13", _with(sch("RS", timing="^^^20261206100000"), "RS", "BK-RS^HIS"), PID), "ESB"),
                _app(siu("RS3", "S12", _with(sch("RS", timing="^^^20261205140000"), "RS", "BK-RS^LIS"), PID), "ESB"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, [_text(a) for a in acks]
    assert sorted(a["start"] for a in _booked(fhir, "BK-RS")) == ["2026-12-05T14:00:00+08:00",
                                                                  "2026-12-06T10:00:00+08:00"]
