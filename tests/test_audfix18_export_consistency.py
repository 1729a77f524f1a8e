"""What an auditor can compare between an export and the live log once the log has grown.

The README used to advise comparing an export's newest signed size with ``GET /audit/checkpoints``
``latest``: on a running server the log grows (every read is a record) and the seal is replaced
every second, so the two differ at once and say nothing. What does say something: the export's
newest signed statement (size N, root R: the report's ``signed_size`` and ``signed_root``) and a
signed checkpoint of the live log of size M >= N, joined by the RFC 9162 consistency proof the
API serves (``GET /audit/proof/consistency?first=N&second=M``), checked by the auditor against R
and the live checkpoint's signed root, not against the roots the API states. Real HTTP through
FastAPI, the engine's own log, the export as ``huren audit export`` writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import merkle
from engine.audit.checkpoint import parse_checkpoint
from engine.audit.export import verify_export, write_export
from engine.engine import Engine


def test_an_export_is_shown_to_be_a_prefix_of_the_grown_live_log(engine: Engine, tmp_path: Path,
                                                                  client_token: Callable[..., str]) -> None:
    http = TestClient(create_app(engine))
    auditor = {"Authorization": "Bearer " + client_token(engine, "system/AuditEvent.rs", "auditor-1")}
    for _ in range(4):
        assert http.get("/audit/checkpoints", headers=auditor).status_code == 200
    export = tmp_path / "audit.jsonl"
    with export.open("wb") as out:
        write_export(engine.audit, out)
    pem = tmp_path / "audit.pub.pem"
    pem.write_text(http.get("/audit/public-key").json()["keys"][0]["pem"])
    report = verify_export(export, [pem.read_bytes()])
    assert report.ok and report.signed_size and report.signed_root
    n, r = report.signed_size, bytes.fromhex(report.signed_root)

    for _ in range(5):  # the log grows: the old advice (compare with ``latest``) now fails on a true export
        http.get("/fhir/metadata", headers=auditor)
    live = parse_checkpoint(http.post("/audit/checkpoints", headers=auditor).json()["note"])
    assert live.size > n
    proof = http.get(f"/audit/proof/consistency?first={n}&second={live.size}", headers=auditor).json()
    path = [bytes.fromhex(h) for h in proof["proof"]]
    assert merkle.verify_consistency(n, live.size, r, live.root, path)
    # an export whose signed root is not the live log's at that size (another log, or one rewritten) fails
    assert not merkle.verify_consistency(n, live.size, bytes(32), live.root, path)
