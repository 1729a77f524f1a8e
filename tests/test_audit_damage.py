"""Bad storage under the audit log: a segment file damaged in its middle, a record file damaged in
its middle, a disk that takes no more bytes. A read whose record cannot be written is refused
with a 503 OperationOutcome, never answered unaudited; nothing already answered is lost; the
damage is named, never silently cut away."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.leaves import leaf_document
from engine.audit.log import AuditLog, AuditLogDamaged
from engine.audit.record_files import records_directory
from engine.audit.segment import HEADER, SegmentDamaged, decode, segment_path
from engine.audit.store import audit_path, open_audit_store
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit_log import event

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def seg_settings(settings: Settings) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.with_(audit_checkpoint_every=10_000, audit_checkpoint_seconds=3600)


def _flip_in_frame(path: Path, index: int) -> None:
    """Change one byte inside the record bytes of frame ``index`` (its CRC no longer matches)."""
    buf = path.read_bytes()
    start = HEADER.size
    rows, _ = decode(buf[start:])
    for row in rows[:index]:
        start += 49 + len(row[3] or b"") + len(row[2])
    at = start + 49 + len(rows[index][3] or b"") + 3
    path.write_bytes(buf[:at] + bytes([buf[at] ^ 0x20]) + buf[at + 1:])


def test_a_segment_damaged_in_its_middle_is_not_cut_and_refuses_appends(seg_settings: Settings) -> None:
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    other = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))  # a second worker
    for i in range(5):
        log.record(event(i))
    path = segment_path(audit_path(seg_settings))
    _flip_in_frame(path, 1)
    before = path.read_bytes()
    with pytest.raises(SegmentDamaged, match="damaged in its middle"):
        other.record(event(9))  # taking in the first worker's records meets the damage
    assert path.read_bytes() == before  # nothing cut off, nothing appended
    assert not list(path.parent.glob(path.name + ".torn-*"))
    with pytest.raises(SegmentDamaged):
        AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    log.store.close()
    other.store.close()
    # `huren audit verify` says so (exit 1) and still verifies what was stored before the segment
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--json"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(seg_settings.data_dir)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert "damaged in its middle" in report["notes"][0] and not report["problems"]
    assert path.read_bytes() == before


def test_reads_are_refused_with_503_while_the_segment_is_damaged(settings: Settings) -> None:
    """Another worker's records in the segment, one of them damaged on disk: the server's next
    read takes them in, meets the damage and is refused. The server's background thread drains
    the segment each second, and a drain between the other worker's appends and the damage left no
    frame of theirs to damage (on two loaded cores the set-up can take that long): the test holds
    the server's log meanwhile (the drain waits for it), once its loop let go of the lock its
    appends keep (``segment_kept``), so the other worker can append."""
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        token = engine.auth.issue_system_token("his-a", "system/*.rs")
        headers = {"Authorization": f"Bearer {token}"}
        client = TestClient(create_app(engine))
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        worker = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))  # another worker
        path = segment_path(audit_path(settings))
        with engine.audit._lock:  # no drain, seal or append of the server's until the damage is done
            engine.audit.let_go_segment(blocking=True)  # (its loop's 2 ms timer cannot, the log held)
            for i in range(3):
                worker.record(event(i))
            frames, _ = decode(path.read_bytes()[HEADER.size:])
            assert [f[0] for f in frames[-3:]] == list(range(worker.size - 3, worker.size))  # still there
            _flip_in_frame(path, len(frames) - 2)  # one of the other worker's, with one after it
        resp = client.get("/fhir/Patient/p1", headers=headers)
        assert resp.status_code == 503
        assert resp.json()["resourceType"] == "OperationOutcome" and "female" not in resp.text
        worker.store.close()


def test_a_record_file_damaged_in_its_middle_is_named_by_verification(seg_settings: Settings) -> None:
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(12):
        log.record(event(i))
    log.checkpoint(force=True)
    log.drain()
    files = sorted(records_directory(audit_path(seg_settings)).glob("*.records"))
    assert len(files) == 1 and verify_online(log).ok
    _flip_in_frame(files[0], 6)
    reopened = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    report = verify_online(reopened)
    assert not report.ok and report.first_bad_record == 6
    assert [d["seq"] for d in reopened.leaves.find(sort=[("_id", 1)])] == list(range(6))  # read up to the damage
    log.store.close()
    reopened.store.close()


# A server process whose audit segment cannot grow (RLIMIT_FSIZE: the kernel refuses the bytes as a
# full disk would): prints the status of each read and what the log holds afterwards.
FULL_DISK = r"""
import json, resource, signal, sys
from pathlib import Path
from fastapi.testclient import TestClient
from engine.api.app import create_app
from engine.audit.segment import HEADER, segment_path
from engine.audit.store import audit_path
from engine.engine import Engine
from engine.settings import Settings

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)
out = {}
with Engine(settings) as engine:
    engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
    headers = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-a", "system/*.rs")}
    client = TestClient(create_app(engine))
    statuses = [client.get("/fhir/Patient/p1", headers=headers).status_code]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # below the smallest frame past the file's header, wherever its end is: the background drain
    # (each second) may empty the file between a look at its size and the read, and a limit of
    # that size + 20 then took the read's record whole (200 on a loaded machine)
    resource.setrlimit(resource.RLIMIT_FSIZE, (HEADER.size + 20, hard))
    full = client.get("/fhir/Patient/p1", headers=headers)
    statuses.append(full.status_code)
    out["full_body"] = full.text
    out["size_when_full"] = segment_path(audit_path(settings)).stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    statuses.append(client.get("/fhir/Patient/p1", headers=headers).status_code)
    out["statuses"] = statuses
    docs = [json.loads(d["data"]) for d in engine.audit.leaves.find()]
    out["reads"] = sum(1 for d in docs if d.get("act") == "read" and d.get("pat") == ["p1"])
print(json.dumps(out))
"""


def test_a_full_disk_refuses_the_read_with_503_and_loses_nothing_answered(settings: Settings) -> None:
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(settings.data_dir)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["statuses"] == [200, 503, 200]
    assert '"OperationOutcome"' in out["full_body"] and "female" not in out["full_body"]
    assert out["reads"] == 2  # the two answered reads have their records; the refused one none
    with Engine(settings) as engine:
        assert verify_online(engine.audit).ok


def test_records_across_several_record_files_read_in_order_and_verify(seg_settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A record file takes appends up to ``ROLL_BYTES``; then the next drain starts another. Readers
    see the records of all of them, in order, by number, range and list."""
    from engine.audit import record_files

    monkeypatch.setattr(record_files, "ROLL_BYTES", 2000)
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(40):
        log.record(event(i))
        if i % 4 == 3:
            log.drain()
    log.checkpoint(force=True)
    files = sorted(records_directory(audit_path(seg_settings)).glob("*.records"))
    assert len(files) > 2
    leaves = log.leaves
    assert [d["seq"] for d in leaves.find(sort=[("_id", 1)])] == list(range(40))
    assert [d["seq"] for d in leaves.find(sort=[("_id", -1)], limit=3)] == [39, 38, 37]
    assert [d["seq"] for d in leaves.find({"_id": {"$in": ["000000000003", "000000000021", "000000000039"]}},
                                          sort=[("_id", 1)])] == [3, 21, 39]
    assert [d["seq"] for d in leaves.find({"seq": {"$gt": 10, "$lte": 14}}, sort=[("seq", 1)])] == [11, 12, 13, 14]
    assert leaves.count() == 40 and leaves.get("000000000017")["seq"] == 17
    reopened = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert reopened.root() == log.root() and verify_online(reopened).ok
    log.store.close()
    reopened.store.close()


def _verify_cli(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--json"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(settings.data_dir)},
                          capture_output=True, text=True, timeout=120)


def test_a_damaged_record_file_refuses_reads_and_never_renumbers_answered_records(settings: Settings) -> None:
    """Damage in the middle of the newest record file makes what can be read stop short of what
    the index states is held: the log must not number new records from there (they would reuse
    numbers of answered records, and the drain dropped them), but refuse reads with a 503 and
    leave verification to name the first unreadable record."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.with_(audit_checkpoint_every=10_000, audit_checkpoint_seconds=3600)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    for i in range(12):
        log.record(event(i))
    log.drain()
    log.store.close()
    files = sorted(records_directory(audit_path(settings)).glob("*.records"))
    _flip_in_frame(files[0], 6)
    damaged = files[0].read_bytes()
    reopened = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    with pytest.raises(AuditLogDamaged, match="record 6 onward cannot be read"):
        reopened.record(event(100))
    with pytest.raises(AuditLogDamaged):
        reopened.checkpoint(force=True)
    report = verify_online(reopened)
    assert not report.ok and report.first_bad_record == 6
    reopened.store.close()
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        headers = {"Authorization": f"Bearer {engine.auth.issue_system_token('his-a', 'system/*.rs')}"}
        client = TestClient(create_app(engine))
        for _ in range(3):
            resp = client.get("/fhir/Patient/p1", headers=headers)
            assert resp.status_code == 503
            assert resp.json()["resourceType"] == "OperationOutcome" and "female" not in resp.text
    assert files[0].read_bytes() == damaged  # nothing appended over the damage, nothing cut
    proc = _verify_cli(settings)
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["first_bad_record"] == 6 and out["problems"][0]["kind"] == "unreadable"


def test_the_drain_refuses_records_numbered_at_or_below_those_held(seg_settings: Settings) -> None:
    """A segment record whose number the log already holds (here a tool put record 0 in through
    the port meanwhile) is an error for the drain, not something to filter out: the answered
    record stays in the segment file."""
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(3):
        log.record(event(i))
    path = segment_path(audit_path(seg_settings))
    before = path.read_bytes()
    tool = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings), segment=False)
    data = b'{"id":"audit-0"}'
    tool.leaves.insert(leaf_document(0, hashlib.sha256(b"\x00" + data).digest(), data, None))
    with pytest.raises(AuditLogDamaged, match="record 0 is not the record 0 the log holds"):
        log.drain()
    assert path.read_bytes() == before  # the answered records are still there, nothing emptied
    tool.store.close()
    log.store.close()


def test_the_drain_works_where_copy_file_range_does_not_exist(seg_settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.copy_file_range`` is Linux only: on macOS (simulated by taking it away) the drain copies
    the segment's frames through the process and every reader still sees every record."""
    monkeypatch.delattr(os, "copy_file_range", raising=False)
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(5):
        log.record(event(i))
    log.drain()
    log.record(event(5))
    assert [d["seq"] for d in log.leaves.find(sort=[("_id", 1)])] == list(range(6))
    assert segment_path(audit_path(seg_settings)).stat().st_size == HEADER.size  # drained
    reopened = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert reopened.root() == log.root() and verify_online(reopened).ok
    log.store.close()
    reopened.store.close()


def _open_audit_files(settings: Settings) -> list[str]:
    """This process's open file descriptors on the audit log's database and segment file."""
    names = {str(audit_path(settings)), str(segment_path(audit_path(settings)))}
    fds = Path("/proc/self/fd")
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target in names:
            out.append(target)
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see open files")
def test_verify_of_a_damaged_segment_leaves_no_file_open(seg_settings: Settings) -> None:
    """``huren audit verify`` (in process) opens the log, meets the damaged segment, opens it again
    without the segment: the first opening's database and segment must be closed, not leaked."""
    import argparse

    from engine.audit.cli import cmd_verify

    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(5):
        log.record(event(i))
    log.store.close()
    _flip_in_frame(segment_path(audit_path(seg_settings)), 1)
    del log
    before = _open_audit_files(seg_settings)
    args = argparse.Namespace(export=None, public_key=None, json=True, skip_nodes=False)
    assert cmd_verify(args, seg_settings) == 1
    assert _open_audit_files(seg_settings) == before
