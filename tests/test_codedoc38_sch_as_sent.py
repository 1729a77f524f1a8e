"""codedoc38: SCH-2 as sent is kept under the sending institution's system.

old37 kept SCH-2 as the message sent it (``urn:huren:id:HIS|BK-1``) beside the booking's key, but
``urn:huren:id:HIS`` is every hospital's HIS: two institutions' equal booking numbers, for two patients, met in one
search (review rv37d LOW 5). An EI-2 namespace id is now kept under the sender, ``urn:huren:id:<MSH-4>:<HD-1>``
(as another authority's record numbers are, ``urn:huren:mrn:<code>:<authority>``); a copy stored before stays
readable, and the booking's next message puts the sender's in its place.

Real HL7 over MLLP, the real store, read back through ``/fhir`` (TestClient).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu
from tests.test_old37_sch_sent_as import _found, _with
from tests.test_sched22_rv_probes import _text

__all__ = ["fhir"]
_OTHER = "PID|1||ZY38Z^^^FNZYY^MR||王^五||19700101|M"
_SENT = "urn:huren:id:HIS"


def _from_fnzyy(message: bytes) -> bytes:
    return message.replace(b"|HIS|FNXRMYY|", b"|HIS|FNZYY|", 1)


def _patient(booking: dict[str, Any]) -> str:
    return str(booking["participant"][0]["actor"]["reference"])


def _as_sent(booking: dict[str, Any]) -> list[str]:
    return [f"{i['system']}|{i['value']}" for i in booking["identifier"] if "coding" not in (i.get("type") or {})]


def test_two_institutions_equal_numbers_are_two_as_sent_identifiers(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """FNXRMYY's and FNZYY's HIS each book ``BK-TW^HIS``, for two patients: each as-sent identifier finds its own
    booking alone; the bare ``urn:huren:id:HIS`` no longer finds both."""
    acks = send(engine, siu("TW1", "S12", _with("TW", "BK-TW^HIS"), PID),
                _from_fnzyy(siu("TW2", "S12", _with("TW", "BK-TW^HIS"), _OTHER)))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], [_text(a) for a in acks]
    (ours,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-TW")
    (theirs,) = _found(fhir, "urn:huren:id:FNZYY:HIS|BK-TW")
    assert ours["id"] != theirs["id"] and _patient(ours) != _patient(theirs), (ours, theirs)
    assert _as_sent(ours) == ["urn:huren:id:FNXRMYY:HIS|BK-TW"], ours["identifier"]
    assert _found(fhir, f"{_SENT}|BK-TW") == []


def test_a_copy_stored_before_stays_readable_and_the_next_message_puts_the_senders(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A booking whose as-sent copy an earlier release stored (``urn:huren:id:HIS``: written back so here) is
    still found by it; the HIS's next S14 keeps one as-sent copy, the sender's, and updates the one booking."""
    assert ack_code_of(send(engine, siu("OL1", "S12", _with("OL", "BK-OL^HIS"), PID))[0]) == "AA"
    (booking,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-OL")
    body = {k: v for k, v in booking.items() if k != "meta"}
    body["identifier"] = [{**i, "system": _SENT} if "coding" not in (i.get("type") or {}) else i
                          for i in booking["identifier"]]
    writer = {"Authorization": "Bearer " + engine.auth.issue_system_token("sched", "system/*.cruds")}
    put = fhir.put(f"/fhir/Appointment/{booking['id']}", json=body, headers=writer)
    assert put.status_code == 200, put.text
    (old,) = _found(fhir, f"{_SENT}|BK-OL")
    assert old["id"] == booking["id"]
    ack = send(engine, siu("OL2", "S14", _with("OL", "BK-OL^HIS", timing="^^^20261207100000"), PID))[0]
    assert ack_code_of(ack) == "AA", _text(ack)
    (now,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-OL")
    assert now["id"] == booking["id"] and now["start"] == "2026-12-07T10:00:00+08:00", now
    assert _as_sent(now) == ["urn:huren:id:FNXRMYY:HIS|BK-OL"], now["identifier"]
