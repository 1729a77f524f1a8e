"""A resident's inclusion proofs (``/audit/proof/inclusion``) over real HTTP: only of records that name
them. A leaf hash names nobody, but a record's bytes are predictable enough that its hash confirms a
guess about someone else's file; an auditor still gets a proof of any record."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import merkle
from engine.audit.view import patients_named
from engine.engine import Engine
from tests.test_audit_api import bearer, two_patients_read_by_a_hospital


def _leaf_naming(engine: Engine, pid: str) -> int:
    """The number of the newest record that names patient ``pid`` (and no one else)."""
    events = engine.audit.events()
    return max(int(ev["id"].split("-")[1]) for ev in events if patients_named(ev) == [pid])


def test_a_resident_gets_proofs_of_their_own_records_only(engine: Engine, client_token) -> None:
    http = TestClient(create_app(engine))
    resident = bearer(two_patients_read_by_a_hospital(http, engine, client_token))
    assert http.get("/fhir/Patient/p1", headers=resident).status_code == 200
    size = engine.audit.size
    mine, theirs = _leaf_naming(engine, "p1"), _leaf_naming(engine, "p2")

    r = http.get(f"/audit/proof/inclusion?leaf={mine}&size={size}", headers=resident)
    assert r.status_code == 200, r.text
    proof = r.json()
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    assert merkle.verify_inclusion(mine, size, bytes.fromhex(proof["leaf_hash"]), path, bytes.fromhex(proof["root"]))

    r = http.get(f"/audit/proof/inclusion?leaf={theirs}&size={size}", headers=resident)
    assert r.status_code == 404, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and "leaf_hash" not in r.text

    auditor = bearer(client_token(engine, "system/AuditEvent.rs", "insurance-audit"))
    r = http.get(f"/audit/proof/inclusion?leaf={theirs}&size={size}", headers=auditor)
    assert r.status_code == 200 and r.json()["leaf_index"] == theirs
