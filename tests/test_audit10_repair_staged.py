"""``huren audit repair`` verifies a repaired record file while it is staged, under the audit
database's write lock, and puts it in place only once verified: a running server goes on refusing
appends (and cannot move a record into the file) until then, so a repair that fails verification
drops nothing the server answered; a record file that was missing is missing again after a failed
repair; and a verified repair that cannot be put in place is undone to exactly the files before."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import engine.audit.record_files as record_files
from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog, AuditLogDamaged
from engine.audit.record_files import HEADER, records_directory
from engine.audit.segment import decode, encode
from engine.audit.store import audit_path, open_audit_store
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit10_repair import _cli
from tests.test_audit_damage import _flip_in_frame
from tests.test_audit_log import event


def _log_of(settings: Settings, count: int) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for start in range(0, count, 500):
        log.record_many([event(i) for i in range(start, min(count, start + 500))])
    log.checkpoint(force=True)  # signs every record: a forged one is told by the tree
    log.drain()
    log.store.close()
    return settings


def _forge(path: Path, index: int, target: Path) -> None:
    """A copy of record file ``path`` whose record ``index`` is changed with its leaf hash and CRC made
    again: every check a frame has passes, only the tree can tell."""
    rows, _ = decode(path.read_bytes()[HEADER.size:])
    seq, _leaf, data, nodes = rows[index]
    forged = data.replace(f"audit-{seq}".encode(), f"audit-{seq + 3}".encode())
    assert forged != data and len(forged) == len(data)
    rows[index] = (seq, hashlib.sha256(b"\x00" + forged).digest(), forged, nodes)
    target.write_bytes(path.read_bytes()[:HEADER.size] + encode(rows))


def _refused(settings: Settings) -> bool:
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    try:
        log.record(event(99))
    except AuditLogDamaged:
        return True
    finally:
        log.store.close()
    return False


def test_a_missing_record_file_stays_missing_when_the_repair_fails_verification(settings: Settings,
                                                                                tmp_path: Path) -> None:
    settings = _log_of(settings, 12)
    records = records_directory(audit_path(settings))
    [lost] = sorted(records.glob("*.records"))
    original = lost.read_bytes()
    _forge(lost, 6, tmp_path / lost.name)
    lost.unlink()

    wrong = _cli(settings, "repair", "--from", str(tmp_path / lost.name))
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr[-2000:]
    assert "verification failed after the repair, which was undone" in wrong.stdout
    assert not lost.exists() and sorted(p.name for p in records.iterdir()) == []  # missing, as before
    assert _cli(settings, "verify").returncode == 1
    assert _refused(settings)  # the log still refuses appends: nothing lands on unverified records

    backup = tmp_path / "backup"
    (backup / "audit.records").mkdir(parents=True)
    (backup / "audit.records" / lost.name).write_bytes(original)
    fixed = _cli(settings, "repair", "--from", str(backup))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
    assert "the whole log verifies" in fixed.stdout and "damaged bytes kept" not in fixed.stdout
    assert lost.read_bytes() == original and not list(records.glob("*.repair"))
    assert _cli(settings, "verify").returncode == 0
    assert not _refused(settings)


def test_a_verified_repair_that_cannot_be_put_in_place_is_undone_exactly(settings: Settings, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two damaged files: the first is put in place, the second cannot be (a directory sits where the
    missing file was): the first is put back, damaged as it was, and nothing else is left behind."""
    monkeypatch.setattr(record_files, "ROLL_BYTES", 5000)  # small record files: several of them
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for i in range(12):
        log.record(event(i))
        if i % 3 == 2:
            log.drain()
    log.checkpoint(force=True)
    log.drain()
    log.store.close()
    records = records_directory(audit_path(settings))
    first, second, *_ = sorted(records.glob("*.records"))
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    _flip_in_frame(first, 1)
    damaged = first.read_bytes()
    second.unlink()
    second.mkdir()  # where the repaired file must go, something that cannot be replaced

    undone = _cli(settings, "repair", "--from", str(backup))
    assert undone.returncode == 1, undone.stdout + undone.stderr[-2000:]
    assert "the repair was verified but undone, every file as it was" in undone.stdout
    assert first.read_bytes() == damaged and second.is_dir()
    assert not list(records.glob("*.damaged-*")) and not list(records.glob("*.repair"))
    told = _cli(settings, "verify")  # a directory where a record file goes is damage, told as such
    assert told.returncode == 1 and "Traceback" not in told.stderr, told.stdout + told.stderr[-2000:]

    second.rmdir()  # now only missing: put back from the backup like the damaged one
    fixed = _cli(settings, "repair", "--from", str(backup))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
    assert second.read_bytes() == (backup / "audit.records" / second.name).read_bytes()
    assert [p.read_bytes() for p in records.glob("*.damaged-*")] == [damaged]
    assert _cli(settings, "verify").returncode == 0


def test_a_running_server_answers_nothing_on_a_repair_that_fails_verification(settings: Settings,
                                                                             tmp_path: Path) -> None:
    """A log large enough that verifying it takes longer than the server's once-a-second look at a
    damaged log, and a client asking all the while: with a forged copy, every audited read is refused
    before, during and after the failed repair (no record lands on records that failed verification,
    none is dropped by an undo); with the true copy the repair goes through, the server audits again,
    and every record it answered is held and verifies."""
    settings = _log_of(settings, 60_000)
    records = records_directory(audit_path(settings))
    [damaged_file] = sorted(records.glob("*.records"))
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    forgery = tmp_path / "forged" / damaged_file.name
    forgery.parent.mkdir()
    _forge(damaged_file, 20_000, forgery)
    _flip_in_frame(damaged_file, 20_000)
    damaged = damaged_file.read_bytes()

    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        headers = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
        client = TestClient(create_app(engine))
        statuses: list[int] = []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                statuses.append(client.get("/fhir/Patient/p1", headers=headers).status_code)
                time.sleep(0.02)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            wrong = _cli(settings, "repair", "--from", str(forgery.parent))
            time.sleep(1.5)  # past the server's next look at the log
        finally:
            stop.set()
            asker.join()
        assert wrong.returncode == 1, wrong.stdout + wrong.stderr[-2000:]
        assert "verification failed after the repair, which was undone" in wrong.stdout
        assert len(statuses) > 20 and set(statuses) == {503}, statuses  # refused throughout, none answered
        assert damaged_file.read_bytes() == damaged and not list(records.glob("*.damaged-*"))
        assert records_held(settings) == 60_000  # the index holds what it held: nothing answered to lose

        fixed = _cli(settings, "repair", "--from", str(backup))
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
        deadline = time.monotonic() + 10
        while (status := client.get("/fhir/Patient/p1", headers=headers).status_code) == 503 \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        engine.audit.drain()
        assert records_held(settings) > 60_000
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def records_held(settings: Settings) -> int:
    store = open_audit_store(settings)
    try:
        [(last,)] = store.query("SELECT max(last) FROM audit_files")
    finally:
        store.close()
    return int(last) + 1
