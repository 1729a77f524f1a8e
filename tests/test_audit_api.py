"""/audit over real HTTP (TestClient): an outside verifier fetches the public key, a signed
checkpoint and proofs, and checks them with nothing but RFC 9162 and Ed25519; the CLI exports the
log and verifies it offline with only the public key file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import merkle
from engine.audit.checkpoint import parse_checkpoint
from engine.cli import main
from engine.engine import Engine
from engine.settings import Settings
from tests.test_aud19_signed_header import trusted


@pytest.fixture
def http(engine: Engine) -> TestClient:
    return TestClient(create_app(engine))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_outside_verifier_checks_checkpoint_inclusion_and_consistency(http, engine, client_token) -> None:
    auditor = bearer(client_token(engine, "system/AuditEvent.rs", "auditor-1"))
    for _ in range(5):
        assert http.get("/audit/checkpoints", headers=auditor).status_code == 200
    first = http.post("/audit/checkpoints", headers=auditor).json()
    for _ in range(6):
        http.get("/audit/checkpoints", headers=auditor)
    second = http.post("/audit/checkpoints", headers=auditor).json()

    keys = http.get("/audit/public-key").json()  # published, no token needed
    [key] = keys["keys"]
    public = load_pem_public_key(key["pem"].encode())
    cps = []
    for cp in (first, second):
        text = cp["note"]
        body, _, sig_line = text.partition("\n\n")
        raw = base64.b64decode(sig_line.split(" ")[-1])
        assert raw[:4].hex() == key["key_id"]
        public.verify(raw[4:], (body + "\n").encode())  # raises if forged
        cps.append(parse_checkpoint(text))
    small, big = cps
    assert small.size == 5 and big.size == 12  # the POST that signs is recorded after it signs

    for leaf in range(small.size):
        proof = http.get(f"/audit/proof/inclusion?leaf={leaf}&size={small.size}", headers=auditor).json()
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        assert merkle.verify_inclusion(leaf, small.size, bytes.fromhex(proof["leaf_hash"]), path, small.root)
    cons = http.get(f"/audit/proof/consistency?first={small.size}&second={big.size}", headers=auditor).json()
    assert merkle.verify_consistency(small.size, big.size, small.root, big.root,
                                     [bytes.fromhex(h) for h in cons["proof"]])

    report = http.get("/audit/verify", headers=auditor).json()
    assert report["ok"] and report["checkpoints"] == 2


def test_access_rules_and_bad_parameters(http, engine, client_token) -> None:
    assert http.get("/audit/checkpoints").status_code == 401
    resident_app = bearer(client_token(engine, "system/Observation.rs", "his-lab"))
    r = http.get("/audit/verify", headers=resident_app)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    r = http.get("/audit/proof/inclusion?leaf=50&size=3", headers=resident_app)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    refused = engine.audit.events()
    assert len(refused) == 3
    assert refused[0]["outcome"] == "4" and refused[0]["outcomeDesc"] == "HTTP 401"
    assert refused[1]["outcomeDesc"] == "HTTP 403"
    assert refused[1]["agent"][0]["who"]["identifier"]["system"] == "urn:huren:client"


def test_cli_export_then_offline_verify_with_only_the_public_key(
        engine: Engine, settings: Settings, tmp_path: Path, monkeypatch, capsys) -> None:
    for i in range(25):
        engine.audit.record({"type": {"code": "rest"}, "action": "R", "recorded": "2026-11-23T10:00:00Z",
                             "outcome": "0", "agent": [{"requestor": True, "who": {"display": f"c{i}"}}],
                             "source": {"observer": {"display": "huren"}}})
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    export = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "-o", str(export)]) == 0
    pub = next((settings.data_dir / "keys").glob("audit-ed25519-*.pub.pem"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    key_copy = elsewhere / "audit.pub.pem"
    key_copy.write_bytes(pub.read_bytes())
    monkeypatch.setenv("HUREN_DATA_DIR", str(elsewhere / "var"))  # another machine: no database, no keys
    capsys.readouterr()
    assert main(["audit", "verify", "--export", str(export), "--public-key", str(key_copy)]) == 0
    assert "OK" in capsys.readouterr().out
    lines = export.read_text().splitlines()
    del lines[-10]  # drop record 15
    export.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify", "--export", str(export), "--public-key", str(key_copy), "--json"]) == 1
    out = capsys.readouterr().out
    assert '"first_bad_record": 15' in out and "15..15 missing (deleted)" in out
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    assert main(["audit", "verify"]) == 3  # online, against the keys beside the log: not proven
    assert main(["audit", "verify", *trusted(settings.data_dir, ("verify",))]) == 0  # online, against the database
    assert main(["audit", "verify", "--skip-nodes", *trusted(settings.data_dir, ("verify",))]) == 0


def test_keys_init_creates_the_audit_key_read_only(settings: Settings, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    assert main(["keys", "init"]) == 0
    [private] = [p for p in (settings.data_dir / "keys").glob("audit-ed25519-*.pem") if not p.name.endswith("pub.pem")]
    assert private.stat().st_mode & 0o777 == 0o400
    assert "audit key" in capsys.readouterr().out


def two_patients_read_by_a_hospital(http: TestClient, engine: Engine, client_token) -> str:
    """Patients p1 and p2, each read once by a hospital system (his-fnxrmyy); returns the token of
    p1's resident: the log then holds a record naming p1 and one naming p2."""
    for pid in ("p1", "p2"):
        engine.repository.update({"resourceType": "Patient", "id": pid, "name": [{"family": "张"}]})
    his = bearer(client_token(engine, "system/*.rs", "his-fnxrmyy"))
    assert http.get("/fhir/Patient/p1", headers=his).status_code == 200
    assert http.get("/fhir/Patient/p2", headers=his).status_code == 200
    token, _ = engine.auth.issue_token(subject="resident-1", kind="patient", client_id="app",
                                       scopes=["patient/*.rs"], patient="p1")
    return token


def test_a_resident_lists_who_accessed_their_records(http, engine, client_token) -> None:
    token = two_patients_read_by_a_hospital(http, engine, client_token)
    r = http.get("/fhir/AuditEvent?patient=p1", headers=bearer(token))
    assert r.status_code == 200, r.text
    events = [e["resource"] for e in r.json().get("entry", [])]
    assert events and all(
        any(ent.get("what", {}).get("reference") == "Patient/p1" for ent in ev["entity"]) for ev in events)
    who = {a["who"].get("identifier", {}).get("value") for ev in events for a in ev["agent"] if a["requestor"]}
    assert "his-fnxrmyy" in who
    assert not any("Patient/p2" in str(ev) for ev in events)
    r = http.get("/fhir/AuditEvent?patient=p2", headers=bearer(token))
    assert r.status_code in (200, 403, 404) and not r.json().get("entry")
