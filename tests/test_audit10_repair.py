"""``huren audit repair``: a record file damaged in its middle stops the log (every audited request
503); the repair puts the records back from a backup copy, proven by the tree and the signed
checkpoints, keeps the damaged bytes, changes nothing when a record is in no copy, and the running
server serves audited reads again, numbering on after the records held."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record_files import HEADER, records_directory
from engine.audit.segment import decode, encode
from engine.audit.store import audit_path, open_audit_store
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.test_aud19_signed_header import trusted
from tests.test_audit_damage import _flip_in_frame
from tests.test_audit_log import event

ROOT = Path(__file__).resolve().parent.parent


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "audit", *args, *trusted(settings.data_dir, args)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(settings.data_dir)},
                          capture_output=True, text=True, timeout=120)


def test_repair_puts_back_the_records_from_a_backup_and_the_server_audits_again(settings: Settings,
                                                                              tmp_path: Path) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for i in range(12):
        log.record(event(i))
    log.checkpoint(force=True)  # signs size 12: the records put back are proven by it
    log.drain()
    log.store.close()
    records = records_directory(audit_path(settings))
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    [damaged_file] = sorted(records.glob("*.records"))
    _flip_in_frame(damaged_file, 6)
    damaged = damaged_file.read_bytes()

    # what the operator sees: every audited read refused, verification naming record 6
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        headers = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
        client = TestClient(create_app(engine))
        refused = client.get("/fhir/Patient/p1", headers=headers)
        assert refused.status_code == 503 and "female" not in refused.text
        assert _cli(settings, "verify").returncode == 1

        # without a copy of record 6 nothing changes, and the output says what to do
        alone = _cli(settings, "repair")
        assert alone.returncode == 1, alone.stdout + alone.stderr[-2000:]
        assert "records 6-11 cannot be read" in alone.stdout and "MISSING" in alone.stdout
        assert "--from" in alone.stdout and damaged_file.read_bytes() == damaged

        fixed = _cli(settings, "repair", "--from", str(backup))  # while the server runs
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
        assert "put back" in fixed.stdout and "the whole log verifies" in fixed.stdout
        [kept] = list(records.glob("*.damaged-*"))
        assert kept.read_bytes() == damaged  # the damaged bytes are kept, not thrown away

        # the running server looks again (once a second while damaged) and audits reads again
        deadline = time.monotonic() + 10
        while (status := client.get("/fhir/Patient/p1", headers=headers).status_code) == 503 \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        engine.audit.drain()
        seqs = [d["seq"] for d in engine.audit.leaves.find(sort=[("_id", 1)])]
        assert seqs[:12] == list(range(12)) and seqs == list(range(len(seqs))) and len(seqs) > 12
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def test_repair_takes_no_copy_that_the_tree_does_not_prove(settings: Settings, tmp_path: Path) -> None:
    """A forged "backup": record 6 changed and its leaf hash and CRC made again, so its frame passes
    every check a frame has; only the tree (the stored nodes, the signed checkpoint) can tell. The
    repair's verification fails, the damaged file is put back as it was, and nothing is kept."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for i in range(12):
        log.record(event(i))
    log.checkpoint(force=True)
    log.drain()
    log.store.close()
    records = records_directory(audit_path(settings))
    [damaged_file] = sorted(records.glob("*.records"))
    rows, _ = decode(damaged_file.read_bytes()[HEADER.size:])
    seq, _leaf, data, nodes = rows[6]
    forged = data.replace(b"audit-6", b"audit-9")
    assert forged != data and len(forged) == len(data)
    rows[6] = (seq, hashlib.sha256(b"\x00" + forged).digest(), forged, nodes)
    forgery = tmp_path / damaged_file.name
    forgery.write_bytes(damaged_file.read_bytes()[:HEADER.size] + encode(rows))
    _flip_in_frame(damaged_file, 6)
    damaged = damaged_file.read_bytes()
    wrong = _cli(settings, "repair", "--from", str(forgery))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr[-2000:]
    assert "verification failed after the repair, which was undone" in wrong.stdout
    assert damaged_file.read_bytes() == damaged and not list(records.glob("*.damaged-*"))
    assert _cli(settings, "verify").returncode == 1
