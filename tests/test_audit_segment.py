"""The audit log's segment file with real processes: kill -9 in the middle of appends and of a
drain, a torn tail, two workers appending to one log, a restart. What a process was told was
written is there after it died, exactly once; the tree and the signed checkpoints verify offline
(``huren audit verify``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from engine.audit.keys import AuditKeys
from engine.audit.leaves import LeafTable
from engine.audit.log import AuditLog
from engine.audit.record_files import records_directory
from engine.audit.segment import HEADER, SegmentDamaged, decode, encode, segment_path, torn
from engine.audit.store import audit_path, open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.audit_server import served
from tests.test_aud19_signed_header import trusted
from tests.test_audit_log import event

ROOT = Path(__file__).resolve().parent.parent

# A process appending groups of records to the log in ``argv[1]`` (its data directory) as worker
# ``argv[2]``, printing each group's sequence numbers once ``record_many`` returned (what a request
# is answered after); its key indexer drains the segment each second meanwhile, as in the server.
# ``argv[3]``: how many groups (0: until killed); ``argv[4]``: "kill-in-drain" kills the process
# (SIGKILL) the first time a drain has committed its records and not yet emptied the segment file.
APPENDER = r"""
import os, signal, sys
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.audit import segment
from engine.settings import Settings
from tests.test_audit_log import event

settings = Settings(data_dir=Path(sys.argv[1]), audit_checkpoint_every=50, audit_checkpoint_seconds=3600)
worker, groups = sys.argv[2], int(sys.argv[3])
if sys.argv[4:] == ["kill-in-drain"]:
    def reset(self):
        os.kill(os.getpid(), signal.SIGKILL)
    segment.Segment.reset = reset
if sys.argv[4:] == ["kill-in-copy"]:  # the record file written, its index row not committed
    from engine.audit import record_files
    copy = record_files._copy
    def killed(source, fd, at):
        copy(source, fd, at)
        os.kill(os.getpid(), signal.SIGKILL)
    record_files._copy = killed
log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
log.start()
n = 0
while groups == 0 or n < groups:
    batch = []
    for k in range(1 + n % 5):
        e = event(n)
        e["outcomeDesc"] = f"{worker}-{n}-{k}"
        batch.append(e)
    results = log.record_many(batch)
    print(" ".join(f"{r.seq}:{worker}-{n}-{k}" for k, r in enumerate(results)), flush=True)
    n += 1
    if sys.argv[4:] == ["drain"] and n % 7 == 0:
        log.drain()
log.close()
"""


def _spawn(data_dir: Path, worker: str, groups: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", APPENDER, str(data_dir), worker, str(groups), *extra],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, text=True)


def _answered(lines: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in lines:
        for item in line.split():
            seq, label = item.split(":", 1)
            out[int(seq)] = label
    return out


def _records(settings: Settings) -> tuple[AuditLog, dict[int, str]]:
    """The log reopened (as a restart does) and each record's label, by sequence number."""
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    labels = {}
    for doc in log.leaves.find(sort=[("seq", 1)]):
        labels[doc["seq"]] = orjson.loads(doc["data"]).get("outcomeDesc")
    return log, labels


def _cli_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--json", *trusted(data_dir, ("verify",))],
                          cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def seg_settings(settings: Settings) -> Settings:
    settings.data_dir.mkdir(parents=True)
    AuditKeys.load(settings, create=True)
    return settings.with_(audit_checkpoint_every=50, audit_checkpoint_seconds=3600)


def test_frames_round_trip_and_a_cut_frame_ends_the_valid_part() -> None:
    rows = [(7, b"\x01" * 32, b'{"a":1}', None), (8, b"\x02" * 32, b'{"b":"\xc3\xa9"}', b"\x03" * 64)]
    buf = encode(rows)
    assert decode(buf) == (rows, len(buf))
    assert decode(buf[:-1]) == (rows[:1], len(encode(rows[:1])))
    flipped = bytearray(buf)
    flipped[-2] ^= 0xFF  # the last record's bytes altered: its CRC no longer matches
    assert decode(bytes(flipped)) == (rows[:1], len(encode(rows[:1])))


def test_records_wait_in_the_segment_and_every_reader_sees_them(seg_settings: Settings) -> None:
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert isinstance(log._leaves, LeafTable)
    log.record_many([event(i) for i in range(3)])
    path = segment_path(audit_path(seg_settings))
    assert path.stat().st_size > HEADER.size  # written to the segment, not yet the table
    assert log._leaves.count() == 0
    assert [e["id"] for e in log.events()] == ["audit-0", "audit-1", "audit-2"]  # a reader drains first
    assert log._leaves.count() == 3 and path.stat().st_size == HEADER.size
    assert verify_online(log).ok
    log.store.close()


def test_a_torn_tail_is_cut_off_at_open_and_kept_beside_the_file(seg_settings: Settings) -> None:
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    for i in range(5):
        log.record(event(i))
    root = log.root()
    log.store.close()
    path = segment_path(audit_path(seg_settings))
    size = path.stat().st_size
    frame = encode([(5, b"\x07" * 32, b'{"torn":true}', None)])
    with path.open("ab") as fh:  # a write cut short by a crash: half a frame
        fh.write(frame[: len(frame) // 2])
    again = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert (again.size, again.root()) == (5, root) and path.stat().st_size == size
    kept = list(path.parent.glob(path.name + ".torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == frame[: len(frame) // 2]
    assert again.record(event(5)).seq == 5  # numbering goes on where the whole records end
    assert verify_online(again).ok and again.size == 6
    again.store.close()


def test_a_group_write_torn_by_a_power_cut_is_a_torn_tail(seg_settings: Settings) -> None:
    """A power cut inside one ``write()`` of several frames leaves the first page(s) of the group
    and zeros after them (the file's size was already extended): no whole frame follows the bad
    one, so it is a torn tail, cut off and kept, and the log opens; a bad frame with a whole frame
    after it is still damage in the middle."""
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    log.record(event(0))
    root = log.root()
    path = segment_path(audit_path(seg_settings))
    whole = path.stat().st_size
    log.record_many([event(i) for i in range(1, 4)])  # one write() of 3 frames
    log.store.close()
    buf = bytearray(path.read_bytes())
    intact = bytes(buf)
    cut = whole + 100  # inside the group's first frame
    buf[cut:] = bytes(len(buf) - cut)
    path.write_bytes(bytes(buf))
    again = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert (again.size, again.root()) == (1, root) and path.stat().st_size == whole
    kept = list(path.parent.glob(path.name + ".torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(buf[whole:])
    assert again.record(event(9)).seq == 1 and verify_online(again).ok
    again.store.close()
    # the same group with the first frame's length damaged and the other two whole: damage
    damaged = bytearray(intact)
    damaged[whole + 2] ^= 0x40  # the length's third byte: where the next frame starts is unknown
    path.write_bytes(bytes(damaged))
    assert not torn(bytes(damaged[whole:]))
    with pytest.raises(SegmentDamaged, match="damaged in its middle"):
        AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    assert torn(bytes(damaged[whole:whole + 200]) + bytes(len(damaged) - whole - 200))


def test_kill_9_mid_append_loses_nothing_answered_and_doubles_nothing(seg_settings: Settings) -> None:
    proc = _spawn(seg_settings.data_dir, "w", 0)
    lines: list[str] = []
    assert proc.stdout is not None
    while len(lines) < 400:
        line = proc.stdout.readline()
        assert line, "the appender stopped early"
        lines.append(line)
    proc.send_signal(signal.SIGKILL)  # in the middle of its appends (and of its drains)
    proc.wait(10)
    lines.extend(proc.stdout.read().splitlines())  # what it answered before it died
    answered = _answered(lines)
    log, labels = _records(seg_settings)
    assert all(labels.get(seq) == label for seq, label in answered.items()), "an answered record was lost"
    assert sorted(labels) == list(range(log.size)) and len(set(labels.values())) == log.size  # once each
    assert verify_online(log).ok
    assert log.record(event(0)).seq == log.size - 1  # a restart goes on numbering
    log.store.close()
    report = _cli_verify(seg_settings.data_dir)
    assert report.returncode == 0, report.stdout + report.stderr
    assert orjson.loads(report.stdout)["records"] == len(labels) + 1


def test_kill_9_between_a_drain_and_the_emptying_of_the_segment_doubles_nothing(seg_settings: Settings) -> None:
    proc = _spawn(seg_settings.data_dir, "w", 200, "kill-in-drain")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL  # it died inside its first drain (a checkpoint's, at 50)
    answered = _answered(out.splitlines())
    path = segment_path(audit_path(seg_settings))
    assert path.stat().st_size > HEADER.size  # the segment still holds records the table holds too
    log, labels = _records(seg_settings)
    assert all(labels.get(seq) == label for seq, label in answered.items())
    assert sorted(labels) == list(range(log.size)) and len(set(labels.values())) == log.size
    assert verify_online(log).ok and path.stat().st_size == HEADER.size
    log.store.close()


def test_kill_9_after_the_record_file_grew_and_before_its_commit_doubles_nothing(seg_settings: Settings) -> None:
    """The drain copied the segment's frames to the record file and died before the transaction
    that indexes them committed: the file's bytes past its indexed size are not the log's; the
    records are still in the segment, and the next drain writes them there again, once."""
    proc = _spawn(seg_settings.data_dir, "w", 200, "kill-in-copy")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    answered = _answered(out.splitlines())
    files = sorted(records_directory(audit_path(seg_settings)).glob("*.records"))
    assert len(files) == 1 and files[0].stat().st_size > 16  # bytes past what the index says
    log, labels = _records(seg_settings)
    assert all(labels.get(seq) == label for seq, label in answered.items())
    assert sorted(labels) == list(range(log.size)) and len(set(labels.values())) == log.size
    assert verify_online(log).ok
    log.record(event(1))
    log.drain()
    assert verify_online(log).ok and log.leaves.count() == log.size
    log.store.close()
    assert _cli_verify(seg_settings.data_dir).returncode == 0


def test_two_workers_append_to_one_log_without_gaps_or_forks(seg_settings: Settings) -> None:
    procs = [_spawn(seg_settings.data_dir, name, 150, "drain") for name in ("a", "b")]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    answered = _answered([line for out in outs for line in out.splitlines()])
    log, labels = _records(seg_settings)
    expected = 2 * sum(1 + n % 5 for n in range(150))
    assert len(answered) == expected and log.size == expected
    assert labels == answered  # every number given once, each to the record it was given to
    assert verify_online(log).ok
    assert {cp.size for cp in log.list_checkpoints()} >= {log.size}  # closed cleanly: the tail is signed
    log.store.close()
    assert _cli_verify(seg_settings.data_dir).returncode == 0


def test_kill_9_of_a_server_mid_stream_keeps_every_answered_read_s_record(settings: Settings) -> None:
    """Audited reads over real HTTP into a server process killed with SIGKILL while they stream:
    each read answered 200 has its record (found by its query, unique per request) after the
    restart, once."""
    import http.client

    from engine.engine import Engine

    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        token = engine.auth.issue_system_token("crash", "system/*.rs")
    answered: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = 0
        while True:
            query = f"_id=p1&_count={k * 100000 + i}"
            try:
                conn.request("GET", f"/fhir/Patient?{query}", headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                return
            if response.status == 200:
                with lock:
                    answered.append(query)
            i += 1

    with served(settings.data_dir) as (port, proc):
        deadline = time.monotonic() + 60
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for t in threads:
            t.join(10)
    assert len(answered) >= 300
    log, _ = _records(settings)
    queries: list[str] = []
    for doc in log.leaves.find(sort=[("seq", 1)]):
        q = orjson.loads(doc["data"]).get("q")
        if isinstance(q, str) and q.startswith("Patient?"):
            queries.append(q.removeprefix("Patient?"))
    assert set(answered) <= set(queries), "a read answered 200 has no record"
    assert len(queries) == len(set(queries))  # none twice
    assert verify_online(log).ok
    log.store.close()


def test_a_forked_child_opens_its_own_segment_file_so_the_lock_excludes_its_parent(seg_settings: Settings) -> None:
    """``flock`` belongs to the open file, which a fork shares: a child still using its parent's
    handle would take the lock its parent holds. The segment opens its own file in the child."""
    log = AuditLog(open_audit_store(seg_settings), seg_settings, AuditKeys.load(seg_settings))
    segment = log._segment
    assert segment is not None and segment.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # the child: the parent holds the lock, so it must not get it
            os._exit(0 if segment.acquire(blocking=False) is False else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        segment.release()
    assert log.record(event(0)).seq == 0
    log.store.close()


def test_a_workers_checkpoint_written_to_the_table_is_seen_by_the_other_worker(seg_settings: Settings) -> None:
    """Worker B's group that is due a checkpoint goes into the table directly, at a moment when
    the segment file is empty; worker A's next group must number its records after B's (before,
    A kept its stale right edge, reused B's numbers, and its records were silently dropped)."""
    keys = AuditKeys.load(seg_settings)
    a_settings = seg_settings.with_(audit_checkpoint_every=0, audit_checkpoint_seconds=3600)
    b_settings = seg_settings.with_(audit_checkpoint_every=0, audit_checkpoint_seconds=0)  # always due
    a = AuditLog(open_audit_store(a_settings), a_settings, keys)
    b = AuditLog(open_audit_store(b_settings), b_settings, keys)
    try:
        given = [a.record(event(i)).seq for i in range(3)]  # in the segment file
        a.drain()  # into the table: the file is empty again
        given.append(b.record(event(3)).seq)  # due a checkpoint: straight into the table
        given += [a.record(event(i)).seq for i in (4, 5)]  # no checkpoint due: the segment file
        assert given == [0, 1, 2, 3, 4, 5]
        a.drain()
        b.refresh()
        assert a.size == b.size == 6 and a.root() == b.root()
        assert [int(doc["_id"]) for doc in a.leaves.find({})] == given
        assert verify_online(a).ok
    finally:
        a.close()
        b.close()
        a.store.close()
        b.store.close()
