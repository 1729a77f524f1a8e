"""Review probes of perf40 (the raw base64-encoded once for the in-flight journal and the message document;
reads by key in five statement sizes) and perf40r (``Appends._append_sealed``, a lone record's own write path
beside the group's), fortieth round, rv40j. (Since the forty-first round, perfa41, a lone record and a group
take one path, ``Appends._record_many``: the probes below count which of its two ways, the segment file or
the database, each append took.)

Every probe goes through the real path: a real ingest process killed with SIGKILL mid-batch and a real restart
recovering from its in-flight journal; the real repository on both backends; the real audit log appended by two
real processes to one segment file, one of them killed, then ``huren audit export`` / ``huren audit verify``
as an auditor runs them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.engine import Engine
from engine.messages import PROCESSED, message_id, raw_of
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.suite45b_kill_batches import message, peer
from tests.test_audit24_guarantees import _huren

# --- perf40: kill -9 mid-batch, batches of varied sizes, raws that are not UTF-8 and a 1 MB one -----------------


_KILL_MID_BATCH = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.suite45b_kill_batches import message, peer
from engine.engine import Engine
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)
plan = [[tuple(m.split(":")) for m in batch.split(",")] for batch in sys.argv[3].split("/")]
die_at = int(sys.argv[4])
with Engine(settings) as engine:
    for batch in plan[:-1]:
        outcomes = engine.ingestor.process([(message(kind, int(n)), "mllp", peer(int(n))) for kind, n in batch])
        print(" ".join(o.code for o in outcomes), flush=True)  # these are ACKed
    written = []

    def die(resource, previous):
        written.append(resource.get("resourceType"))
        if written.count("Observation") == die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return []

    engine.repository.add_write_hook(die)
    engine.ingestor.process([(message(kind, int(n)), "mllp", peer(int(n))) for kind, n in plan[-1]])
    print("not killed", flush=True)
"""


def _control(raw: bytes) -> str:
    return raw.split(b"|")[9].decode()


# (acked batches of varied sizes / the killed batch; the Observation write the process dies at: 12 a message)
PLANS = {
    "one-message-batch": ("utf8:4100/gb:4101,big:4102,utf8:4103/gb:4104", 5),
    "mid-of-three": ("big:4110,gb:4111/utf8:4112/utf8:4113,gb:4114,big:4115", 12 + 7),
    "last-of-seven": ("gb:4120/utf8:4121,utf8:4122,utf8:4123,utf8:4124,big:4125,gb:4126,utf8:4127,gb:4128/"
                      "utf8:4130,gb:4131,utf8:4132,big:4133,utf8:4134,gb:4135,big:4136", 6 * 12 + 11),
}


@pytest.mark.parametrize("plan", list(PLANS))
def test_kill_9_mid_batch_keeps_every_acked_raw_exactly_and_recovers_the_killed_batch_once(
        settings: Settings, plan: str) -> None:
    """perf40 hands the journal and the document one base64 text. Killed inside a batch's commit (after the
    journal line, before anything was ACKed): every message of the earlier, ACKed batches is stored, its raw
    exactly the bytes sent (GB18030, a 1 MB comment); the killed batch is recovered from the journal, each
    message once, its raw exactly as sent; a resend of all of them doubles nothing."""
    text, die_at = PLANS[plan]
    batches = [[(k, int(n)) for k, n in (m.split(":") for m in b.split(","))] for b in text.split("/")]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _KILL_MID_BATCH, str(settings.data_dir), str(REPO_ROOT), text,
                           str(die_at)], cwd=REPO_ROOT, capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    lines = proc.stdout.decode().split("\n")
    assert lines[: len(batches) - 1] == [" ".join(["AA"] * len(b)) for b in batches[:-1]], proc.stdout.decode()
    acked = [message(k, n) for b in batches[:-1] for k, n in b]
    killed = [message(k, n) for k, n in batches[-1]]
    for raw in acked + killed:  # (what the probe means to send: GB18030 bytes are not UTF-8; the big one ~1 MB)
        if b"GB18030" in raw:
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
    assert max(len(raw) for raw in acked + killed) > 1_000_000
    with Engine(settings) as engine:
        ing = engine.ingestor
        for raw in acked:
            doc = ing.messages.get(message_id("FNXRMYY", _control(raw)))
            assert doc is not None and doc["status"] == PROCESSED and raw_of(doc) == raw, _control(raw)
        assert all(ing.messages.get(message_id("FNXRMYY", _control(raw))) is None for raw in killed)
        assert ing.recover() == len(killed)
        assert ing.recover() == 0
        for raw in killed:
            doc = ing.messages.get(message_id("FNXRMYY", _control(raw)))
            assert doc is not None and doc["status"] == PROCESSED, _control(raw)
            assert raw_of(doc) == raw and doc["size"] == len(raw)
            assert doc["peer"] == peer(int(_control(raw)[3:]))
        outcomes = ing.process([(raw, "mllp", "p") for raw in acked + killed])
        assert [(o.code, o.duplicate) for o in outcomes] == [("AA", True)] * len(outcomes)
        assert engine.repository.search("Observation", [("_summary", "count")]).total == 12 * len(outcomes)
        assert engine.store.query("SELECT count(*) FROM fhir_history WHERE type = 'Observation'")[0][0] == 0


# --- perf40: reads by key, both backends, at the slice edges -------------------------------------------------

COUNTS = (0, 1, 4, 16, 64, 255, 256, 257, 1000)


def test_reads_by_key_find_what_one_key_at_a_time_finds_on_both_backends(backend_settings: Settings) -> None:
    """``current_many`` of 0, 1, exactly a slice, a slice +/- 1 and 1,000 keys (stored, absent, deleted,
    repeated, two types under one id): the same records as ``current`` one key at a time, on SQLite (sliced)
    and MongoDB (not): no key of one slice answered by another's row, none lost at an edge."""
    with Engine(backend_settings) as engine:
        repo = engine.repository
        repo.write_many([{"resourceType": "Patient", "id": f"k{i:04d}", "active": True} for i in range(300)])
        repo.write_many([{"resourceType": "Organization", "id": f"k{i:04d}", "name": f"O{i}"} for i in range(30)])
        repo.delete("Patient", "k0011")
        backend = repo.backend
        for n in COUNTS:
            keys = [("Patient" if i % 4 else "Organization", f"k{(i * 37) % 420:04d}") for i in range(n)]
            if n > 3:
                keys[1] = ("Patient", "k0011")
                keys.insert(n // 2, keys[2])
            found = backend.current_many(keys)
            expected = {k: backend.current(*k) for k in dict.fromkeys(keys)}
            expected = {k: r for k, r in expected.items() if r is not None}
            assert {k: (r.type, r.id, r.version, r.deleted, r.body) for k, r in found.items()} == \
                {k: (r.type, r.id, r.version, r.deleted, r.body) for k, r in expected.items()}, n


# --- perf40r: the lone path and the group's in one segment, two processes, one killed -------------------------

_APPENDER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import seal
from engine.audit.store import open_audit_store
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0).with_(
    audit_checkpoint_every=50, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
who, count = sys.argv[3], int(sys.argv[4])
log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))


def sealed(i):
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", who, None, who, None, None,
           None, None], "node": "test", "out": "0", "pat": [f"{who}{i}"], "res": [f"Observation/{who}{i}"],
           "salt": os.urandom(16).hex()}
    return seal(doc, (f"p:{who}{i}",), "2026-01-01T00:00:00.000Z")


taken = []  # the appends of this call written through the database (a checkpoint due with the record)
real = log._to_table


def counted(events, blocking):
    taken.append(1)
    return real(events, blocking)


log._to_table = counted
print("ready", flush=True)
while not (settings.data_dir / "go").exists():  # both processes start appending together (a 1 ms poll: the one
    time.sleep(0.001)  # started first had spun a core while the other imported, competing with its start)
i = 0
while i < count:
    if who == "lone":  # one record a call, as lone mode's committer appends it; busy: a worker's record_many
        got = log.try_record_many([sealed(i)], keep=i % 3 == 0)
        if got is None:
            got = log.record_many([sealed(i)])
        log.let_go_segment(blocking=True)
        done = [(i, got[0])]
        i += 1
    else:  # a group of four
        got = log.record_many([sealed(i + j) for j in range(4)])
        time.sleep(0.0005)  # (between the lone process's appends, not only while it waits for the lock)
        done = list(zip(range(i, i + 4), got))
        i += 4
    path = ("table" if taken else "segment") if who == "lone" else "group"
    taken.clear()
    for k, appended in done:
        print(k, appended.seq, appended.leaf_hash.hex(), path, flush=True)
print("done", flush=True)
"""


def _appender(data_dir: Path, who: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _APPENDER, str(data_dir), str(REPO_ROOT), who, str(count)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _answered(out: bytes) -> dict[int, tuple[int, str]]:
    return {int(k): (int(seq), leaf) for k, seq, leaf, _path in
            (line.split() for line in out.decode().splitlines() if line and line not in ("ready", "done"))}


def test_two_processes_one_lone_one_grouped_one_killed_every_answered_record_kept_and_the_log_verifies(
        settings: Settings, tmp_path: Path) -> None:
    """Two processes append to one segment file at once: one record a call (its lock kept now and then), the
    other groups of four, both through the one path of every append; a checkpoint falls due every 50
    records, so at lone records and inside groups alike. The lone process is killed with SIGKILL mid-stream.
    Every record either process was answered for is in the log under its number with its leaf, no number twice,
    and the log verifies online and offline (``huren audit export``, then ``verify --export`` with the keys)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    lone = _appender(settings.data_dir, "lone", 100_000)
    group = _appender(settings.data_dir, "group", 2000)
    try:
        for p in (lone, group):
            assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        (settings.data_dir / "go").touch()
        deadline = time.monotonic() + 120
        lines = 0
        paths: list[str] = []
        assert lone.stdout is not None
        while lines < 1500 and time.monotonic() < deadline:
            if line := lone.stdout.readline():
                lines += 1
                paths.append(line.split()[-1].decode())
        lone.send_signal(signal.SIGKILL)
        lone_out = lone.stdout.read()
        lone.wait(30)
        group_out, group_err = group.communicate(timeout=300)
    finally:
        for p in (lone, group):
            if p.poll() is None:
                p.kill()
                p.wait(30)
    assert group.returncode == 0, group_err.decode()[-2000:]
    assert lines >= 1500, lone.stderr.read().decode()[-2000:] if lone.stderr else ""
    del lone_out  # (the lines read before the kill are counted; what came after is checked below too)
    # the lone process wrote to the segment file and, where a checkpoint fell due at its record, through the
    # database with the checkpoint: both ways are in the log
    assert paths.count("segment") > 1000 and paths.count("table") >= 10, (paths.count("segment"), paths.count("table"))
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    try:
        log.drain()
        rows = {d["seq"]: (d["hash"], orjson.loads(d["data"])) for d in log.leaves.find(sort=[("seq", 1)])}
    finally:
        log.close()
    assert sorted(rows) == list(range(len(rows)))
    grouped = _answered(group_out)
    assert len(grouped) == 2000
    for k, (seq, leaf) in grouped.items():
        held_hash, record = rows[seq]
        held = held_hash.hex() if isinstance(held_hash, bytes) else str(held_hash)
        assert held == leaf and record["pat"] == [f"group{k}"], (k, seq)
    lone_pats = [r["pat"][0] for _h, r in rows.values() if r["pat"][0].startswith("lone")]
    assert len(lone_pats) == len(set(lone_pats)) >= 1500  # none doubled, every one answered before the kill
    assert lone_pats == sorted(lone_pats, key=lambda p: int(p[4:]))
    writers = [r["pat"][0].startswith("lone") for _h, r in rows.values()]
    assert sum(a != b for a, b in zip(writers[:-1], writers[1:], strict=True)) >= 3  # the two processes interleave
    checked = _huren(settings.data_dir, "audit", "verify", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    export = tmp_path / "export.jsonl"
    assert _huren(settings.data_dir, "audit", "export", "-o", str(export)).returncode == 0
    keys = [a for pem in sorted((settings.data_dir / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
    offline = _huren(settings.data_dir, "audit", "verify", "--export", str(export), "--json", *keys)
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_a_checkpoint_due_by_the_clock_at_every_lone_record_writes_each_with_its_checkpoint(
        settings: Settings, tmp_path: Path) -> None:
    """No count rule, the clock's rule due at every append (``audit_checkpoint_seconds`` 0, no timer): the
    append writes each record with its checkpoint through the database, none to the segment file; nothing
    is written twice or skipped, and the log verifies offline."""
    from engine.audit.record import seal

    s = settings.with_(audit_checkpoint_every=0, audit_checkpoint_seconds=0, audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    try:
        for i in range(12):
            doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "c", None, "c", None,
                   None, None, None], "node": "test", "out": "0", "pat": [f"c{i}"], "res": [f"Observation/c{i}"],
                   "salt": f"{i:032x}"}
            (got,) = log.try_record_many([seal(doc, (f"p:c{i}",), "2026-01-01T00:00:00.000Z")], keep=True)
            assert got.seq == i
        assert sorted(d["size"] for d in log.checkpoints.find()) == list(range(1, 13))
        assert not log._unmoved  # each went through the database, none to the segment file
    finally:
        log.close()
    export = tmp_path / "export.jsonl"
    assert _huren(s.data_dir, "audit", "export", "-o", str(export)).returncode == 0
    keys = [a for pem in sorted((s.data_dir / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
    offline = _huren(s.data_dir, "audit", "verify", "--export", str(export), "--json", *keys)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert orjson.loads(offline.stdout)["records"] == 12
