"""A replayed message's audit record is a compact, salted record like every import's.

``Ingestor._audit_replay`` (reached from ``POST /admin/quarantine/{id}/replay``) appended a complete
format-1 AuditEvent: no salt, so its bytes -- the patients, message id, control id and operator, the
millisecond -- were guessable, and a resident's inclusion proof beside it confirmed a guess (what
aud19's salt closed for every other record). Real MLLP send, real replay over HTTP, the real log.
"""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.audit.record import FORMAT, event_of
from engine.engine import Engine
from tests.test_ingest_e2e import fhir, lab_result, send

__all__ = ["fhir"]


def test_a_replay_is_recorded_as_salted_facts(engine: Engine, fhir: TestClient) -> None:
    (ack,) = send(engine, lab_result("R9", national_id="110101198001010019"))  # wrong check character: AE
    assert ack_code_of(ack) == "AE"
    (item,) = engine.ingestor.messages.quarantined()
    admin = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/MessageHeader.cr")}
    r = fhir.post(f"/admin/quarantine/{item['_id']}/replay", content=lab_result("R9"), headers=admin)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA"
    patient = next(ref for ref in r.json()["resources"] if ref.startswith("Patient/"))

    log = engine.audit
    docs = [d for d in (log.get(seq) for seq in range(log.size)) if d is not None]
    ours = [d for d in docs if any(c.get("code") == "replay" for c in event_of(d["data"]).get("subtype") or ())]
    assert len(ours) == 2, [event_of(d["data"]).get("subtype") for d in docs]  # the ingest's, the request's
    for doc in ours:
        raw = orjson.loads(doc["data"])
        assert raw.get("f") == FORMAT and "resourceType" not in raw, doc["data"][:200]
        assert isinstance(raw.get("salt"), str) and len(raw["salt"]) == 32
    # the ingest's own record of the replay: its patient, message and control id, by the operator
    event = max((event_of(d["data"]) for d in ours), key=lambda e: len(e.get("entity") or ()))
    details = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail") or ()}
    assert details.get("control-id") == "R9" and details.get("ack") == "AA"
    assert any(e.get("what", {}).get("reference") == patient for e in event["entity"])
    assert any(a.get("who", {}).get("identifier", {}).get("value") == "operator" for a in event["agent"])
    assert "salt" not in orjson.dumps(event).decode()
