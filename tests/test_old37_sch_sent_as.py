"""SCH-2 as sent stays searchable beside the booking's key (thirty-seventh round, old37).

schedfix25b keys a booking by its filler application (``urn:huren:appointment:<MSH-4>:<app>``) so that
``BK-1^HIS`` and ``BK-1`` from the HIS are one booking; the EI as the message stated it
(``urn:huren:id:HIS|BK-1``, made as every other EI-2 is) was stored nowhere, so a FHIR client searching it
found nothing (the strict xfail of ``tests/test_schedfix25b_rv_probes.py``). Now it is kept beside the key,
typed only by its text (no v2 0203 code: the key and the filler checks read the FILL identifier alone).
Real HL7 over MLLP, the real store, read back through /fhir.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_sched21_status_times import sch
from tests.test_sched22_rv_probes import _text

__all__ = ["fhir"]


def _with(c: str, sent: str, **kw: Any) -> str:
    return sch(c, **kw).replace(f"|BK-{c}|", f"|{sent}|", 1)


def _found(fhir: TestClient, token: str) -> list[dict[str, Any]]:  # noqa: F811
    answer = fhir.get("/fhir/Appointment", params={"identifier": token})
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry") or ()]


def test_the_ei_as_sent_and_the_key_name_one_booking(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``BK-SA^HIS`` from the HIS, then its cancel sent ``BK-SA`` alone: one booking, cancelled, found by the
    identifier as first sent and by the filler's key; the sent-as copy carries no FILL code."""
    acks = send(engine, siu("SA1", "S12", _with("SA", "BK-SA^HIS"), PID),
                siu("SA2", "S15", sch("SA", status="Cancelled"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (as_sent,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-SA")  # (the sender's: codedoc38)
    (keyed,) = _found(fhir, "urn:huren:appointment:FNXRMYY:HIS|BK-SA")
    assert as_sent["id"] == keyed["id"] and as_sent["status"] == "cancelled", as_sent
    sent = [i for i in as_sent["identifier"] if i.get("system") == "urn:huren:id:FNXRMYY:HIS"]
    assert sent == [{"type": {"text": "SCH-2 as sent (filler appointment id in its namespace)"},
                     "system": "urn:huren:id:FNXRMYY:HIS", "value": "BK-SA"}], as_sent["identifier"]
    fill = [i for i in as_sent["identifier"] if "coding" in (i.get("type") or {})
            and i["type"]["coding"][0]["code"] == "FILL"]
    assert [i["system"] for i in fill] == ["urn:huren:appointment:FNXRMYY:HIS"], fill


def test_a_relay_sending_the_his_namespace_is_found_as_sent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An ESB (MSH-3 ESB) relaying ``BK-RL^HIS``: keyed as the HIS's booking and found as sent; the HIS's own
    later S14 sending ``BK-RL`` updates that one booking."""
    relayed = siu("RL1", "S12", _with("RL", "BK-RL^HIS"), PID).replace(b"MSH|^~\\&|HIS|", b"MSH|^~\\&|ESB|", 1)
    acks = send(engine, relayed, siu("RL2", "S14", sch("RL", timing="^^^20261207100000"), PID))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (booking,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-RL")
    assert booking["start"] == "2026-12-07T10:00:00+08:00", booking
    assert [b["id"] for b in _found(fhir, "BK-RL")] == [booking["id"]]


def test_an_id_sent_without_a_namespace_gets_no_copy(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Guard: ``BK-NO`` sent bare: its one identifier is the key (nothing was sent another way)."""
    (ack,) = send(engine, siu("NO1", "S12", sch("NO"), PID))
    assert ack_code_of(ack) == "AA", _text(ack)
    (booking,) = _found(fhir, "BK-NO")
    assert [i["system"] for i in booking["identifier"] if i["value"] == "BK-NO"] == ["urn:huren:appointment:FNXRMYY:HIS"]
