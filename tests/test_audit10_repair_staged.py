"""``huren audit repair`` verifies a repaired record file while it is staged, under the audit
database's write lock, and puts it in place only once verified: a running server goes on refusing
appends (and cannot move a record into the file) until then, so a repair that fails verification
drops nothing the server answered; a record file that was missing is missing again after a failed
repair; and a verified repair that cannot be put in place is undone to exactly the files before."""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import engine.audit.loading as loading
import engine.audit.record_files as record_files
import engine.audit.verify as audit_verify
from engine.api.app import create_app
from engine.audit.cli import open_log
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog, AuditLogDamaged
from engine.audit.record_files import HEADER, records_directory
from engine.audit.repair import repair
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


def test_a_running_server_answers_nothing_on_a_repair_that_fails_verification(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running server looks at its damaged log at every append (``DAMAGE_RECHECK_SECONDS`` 0,
    instead of once a second) and a client asks it *while* ``huren audit repair`` verifies (the
    repair's own call of ``verify_online``, the same function the CLI calls): so the server's look
    falls inside the window between staging the repaired file and verifying it, deterministically,
    however small the log. The forged record is past the last signed checkpoint, where the server's
    own proof of a replaced file (against the signature) cannot tell it and only the repair's
    verification (the stored tree nodes) can. With a forged copy every audited read is refused before, during and
    after the failed repair (no record lands on records that failed verification, none is dropped
    by an undo); with the true copy the read during verification is still refused (nothing is put
    in place before it verifies), then the server audits again and every record it answered is
    held and verifies."""
    settings = _log_of(settings, 10)  # records 0-9 signed, 10-13 not
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    log.record_many([event(i) for i in range(10, 14)])
    log.drain()
    log.store.close()
    records = records_directory(audit_path(settings))
    [damaged_file] = sorted(records.glob("*.records"))
    backup = tmp_path / "backup"
    shutil.copytree(records, backup / "audit.records")
    forgery = tmp_path / "forged" / damaged_file.name
    forgery.parent.mkdir()
    _forge(damaged_file, 10, forgery)
    _flip_in_frame(damaged_file, 10)
    damaged = damaged_file.read_bytes()
    monkeypatch.setattr(loading, "DAMAGE_RECHECK_SECONDS", 0.0)  # the server's look: at every append
    verify_for_real = audit_verify.verify_online

    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        headers = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
        client = TestClient(create_app(engine))
        statuses: list[int] = []

        def ask() -> int:
            with ThreadPoolExecutor(1) as pool:  # the server's own threads, not the repair's
                status = pool.submit(client.get, "/fhir/Patient/p1", headers=headers).result(timeout=30).status_code
            statuses.append(status)
            return status

        def verify_while_asked(log: AuditLog) -> object:
            ask()  # the server looks at its log while the repair verifies
            return verify_for_real(log)

        monkeypatch.setattr(audit_verify, "verify_online", verify_while_asked)
        assert ask() == 503
        wrong = repair(settings, forgery.parent)
        assert statuses == [503, 503], statuses  # before, and during the repair's verification
        assert wrong.verified is False and not wrong.ok, wrong.text()
        assert "verification failed after the repair, which was undone" in wrong.text()
        assert ask() == 503  # and after it
        assert damaged_file.read_bytes() == damaged and not list(records.glob("*.damaged-*"))
        assert not list(records.glob("*.repair"))
        assert records_held(settings) == 14  # the index holds what it held: nothing answered to lose

        statuses.clear()
        fixed = repair(settings, backup)
        assert fixed.ok, fixed.text()
        assert statuses == [503]  # during its verification, the damaged file was still the server's
        monkeypatch.setattr(audit_verify, "verify_online", verify_for_real)
        assert ask() == 200  # the next look sees the verified repair
        engine.audit.drain()
        assert records_held(settings) == 15
        assert verify_online(engine.audit).ok
    log = open_log(settings)  # afresh, as ``huren audit verify`` opens it
    try:
        assert verify_for_real(log).ok
    finally:
        log.store.close()


def records_held(settings: Settings) -> int:
    store = open_audit_store(settings)
    try:
        [(last,)] = store.query("SELECT max(last) FROM audit_files")
    finally:
        store.close()
    return int(last) + 1
