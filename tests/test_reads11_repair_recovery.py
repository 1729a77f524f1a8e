"""A running server recovers by itself from every verified repair it can see in place.

Two ways a server that saw a damaged record file kept refusing every audited read after the repair
(until it was restarted): ``huren audit repair`` killed between renaming the verified file into
place and its commit (the rewrite is not counted, so the server trusted its cached scan of the
damaged file), and a damaged record file that is not the newest (the server's once-a-second look
reloaded only the newest file, so the old file's damage, as it had first found it, stayed known).
Both through the real path: real record files, the CLI in a real process (killed with SIGKILL),
audited reads through the app."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import engine.audit.record_files as record_files
from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record_files import records_directory
from engine.audit.store import audit_path, open_audit_store
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit10_repair import _cli
from tests.test_audit_damage import _flip_in_frame
from tests.test_audit_log import event

ROOT = Path(__file__).resolve().parent.parent

# ``huren audit repair`` whose process dies (SIGKILL) right after the verified file was renamed
# over the damaged one, before the transaction that counts the rewrite commits
_KILLED_REPAIR = """
import os, signal, sys
import engine.audit.repair as repair
put = repair._put_in_place
def put_then_die(plans, stamp):
    put(plans, stamp)
    os.kill(os.getpid(), signal.SIGKILL)
repair._put_in_place = put_then_die
from engine.cli import main
sys.argv = ["huren", "audit", "repair", "--from", sys.argv[1]]
main()
"""


def _log_of(settings: Settings, count: int, drain_every: int = 0) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for i in range(count):
        log.record(event(i))
        if drain_every and i % drain_every == drain_every - 1:
            log.drain()
    log.checkpoint(force=True)
    log.drain()
    log.store.close()
    return settings


def _status_within(client: TestClient, headers: dict[str, str], seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while (status := client.get("/fhir/Patient/p1", headers=headers).status_code) == 503 \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    return status


def _server(engine: Engine) -> tuple[TestClient, dict[str, str]]:
    """The app of ``engine`` with a patient to read and a system token to read it with."""
    engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
    headers = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
    return TestClient(create_app(engine)), headers


def _gens(settings: Settings) -> list[int]:
    store = open_audit_store(settings)
    try:
        return [int(gen) for (gen,) in store.query("SELECT gen FROM audit_files ORDER BY first")]
    finally:
        store.close()


def test_a_repair_killed_between_its_rename_and_its_commit_is_seen_by_a_running_server(
        settings: Settings, tmp_path: Path) -> None:
    settings = _log_of(settings, 12)
    records = records_directory(audit_path(settings))
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    [damaged_file] = sorted(records.glob("*.records"))
    original = damaged_file.read_bytes()
    _flip_in_frame(damaged_file, 6)

    with Engine(settings) as engine:
        client, headers = _server(engine)
        refused = client.get("/fhir/Patient/p1", headers=headers)
        assert refused.status_code == 503 and "female" not in refused.text

        killed = subprocess.run([sys.executable, "-c", _KILLED_REPAIR, str(backup)], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT),
                                     "HUREN_DATA_DIR": str(settings.data_dir)},
                                capture_output=True, text=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-2000:]
        assert damaged_file.read_bytes() == original  # the verified file is in place ...
        assert _gens(settings) == [0]  # ... and its rewrite was never counted

        assert _status_within(client, headers, 10) == 200  # the server looks at the file itself
        engine.audit.drain()
        seqs = [d["seq"] for d in engine.audit.leaves.find(sort=[("_id", 1)])]
        assert seqs == list(range(len(seqs))) and len(seqs) > 12
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def test_a_running_server_recovers_from_the_repair_of_a_record_file_that_is_not_the_newest(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_files, "ROLL_BYTES", 3000)  # small record files: several of them
    settings = _log_of(settings, 30, drain_every=3)
    records = records_directory(audit_path(settings))
    files = sorted(records.glob("*.records"))
    assert len(files) >= 3
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    _flip_in_frame(files[0], 1)

    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert not verify_online(engine.audit).ok  # a reader meets the old file's damage ...
        refused = client.get("/fhir/Patient/p1", headers=headers)  # ... and appends stop
        assert refused.status_code == 503 and "female" not in refused.text

        fixed = _cli(settings, "repair", "--from", str(backup))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
        assert _status_within(client, headers, 10) == 200
        engine.audit.drain()
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0
