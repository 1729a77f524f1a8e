"""rvlast25b review of schedfix25b: bookings and merges. Real HL7 over MLLP (``send``), the real store and
patient index, read back through /fhir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text
from tests.test_schedfix24_rv_probes import OTHER, _all
from tests.test_schedfix25_rv_probes import _a40, _patient_id

OID = "1.2.156.112604.1.2"


def _with(schl: str, c: str, sent: str) -> str:
    return schl.replace(f"|BK-{c}|", f"|{sent}|", 1)


def test_a_late_cancel_under_the_merged_away_record_cancels_the_one_booking(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Booked under ZY24R; A40 ZY24R -> ZY20S; a late S15 under ZY24R: the one booking is cancelled (and, as
    schedfix25b states for a late message, filed under the kept record ZY20S)."""
    acks = send(engine, siu("LC1", "S12", sch("LC"), OTHER), _a40("LC40", PID, "ZY24R"),
                siu("LC2", "S15", sch("LC"), OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, [_text(a) for a in acks]
    (appt,) = _all(fhir, "BK-LC")
    assert appt["status"] == "cancelled", appt
    assert appt["participant"][0]["actor"]["reference"] == f"Patient/{_patient_id(fhir, 'ZY20S')}", appt


def test_a_cancel_in_another_kind_of_namespace_under_the_kept_record_is_not_lost(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The HIS books BK-MK with an OID (SCH-2 EI-3) under ZY24R; A40 ZY24R -> ZY20S; its cancel ``BK-MK`` (no
    namespace) under the kept ZY20S. One cancelled booking, or a refusal (AE) with the booking booked -- never an
    AA leaving the booking booked beside a cancelled twin (schedfix25b's ``_same_sender`` skip is asked here)."""
    acks = send(engine, siu("MK1", "S12", _with(sch("MK"), "MK", f"BK-MK^^{OID}^ISO"), OTHER),
                _a40("MK40", PID, "ZY24R"), siu("MK2", "S15", sch("MK"), PID))
    assert [ack_code_of(a) for a in acks[:2]] == ["AA", "AA"], [_text(a) for a in acks]
    every = _all(fhir, "BK-MK")
    booked = [a for a in every if a["status"] == "booked"]
    assert not (ack_code_of(acks[2]) == "AA" and booked), (_text(acks[2]), every)
