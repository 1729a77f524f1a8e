"""On MongoDB a live writer's unsigned records are not marked found; a dead writer's are.

The limit the thirteenth round left: MongoDB had no writers' lock, so a process opening the log
took every record past the newest signature as a stopped writer's and signed it ``recovered``,
also a live peer's last second (its seal on the way). Now each writer holds a lease
(``engine.audit.lease``) renewed by a thread of its own; an opener that finds an unsigned tail
waits until each other lease renews (alive: nothing is marked) or lapses (dead: the tail is noted
and marked ``recovered``).

On mongomock (always): two writers are two ``MongoStore``s over one in-process database, a
writer's death its lease no longer renewed (``Lease.abandon``: mongomock's database cannot outlive
a process). On a real server (when ``HUREN_MONGODB_URI`` is set): the writer is a process of its
own, killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mongomock
import pytest

import engine.audit.lease as lease
from engine.audit.keys import AuditKeys
from engine.audit.lease import COLLECTION, Lease
from engine.audit.log import FOUND, AuditLog
from engine.repository.mongo_store import MongoStore
from engine.settings import Settings
from tests.test_audit_log import event, quiet

ROOT = Path(__file__).resolve().parent.parent
LEASE = 0.5  # seconds: a dead writer's lease lapses within a test's patience


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "LEASE_SECONDS", LEASE)


def _writer(store: MongoStore, s: Settings) -> AuditLog:
    """A writer that appended 0..7 under checkpoint 0 and 8..11 it has not signed yet."""
    log = AuditLog(store, s, AuditKeys.load(s, create=True))
    for i in range(12):
        log.record(event(i))
        if i == 7:
            assert log.checkpoint() is not None
    return log


def _marks(log: AuditLog) -> list[tuple[int, int | None]]:
    return [(cp.size, cp.recovered) for cp in log.list_checkpoints()]


@pytest.fixture
def client() -> Iterator[mongomock.MongoClient]:
    yield mongomock.MongoClient()


def test_an_opener_beside_a_live_writer_marks_nothing(
        settings: Settings, short_lease: None, client: mongomock.MongoClient) -> None:
    """The writer lives (its lease renews); the opener finds 8..11 unsigned, waits for the lease to
    renew, and notes nothing; its checkpoint is unmarked (before: ``recovered 8`` over the live
    writer's records)."""
    s = quiet(settings.with_(mongodb_uri="mongomock://"))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    writer = _writer(MongoStore(client), s)
    opener = AuditLog(MongoStore(client), s, AuditKeys.load(s))
    try:
        assert opener.meta.get(FOUND) is None and opener.size == 12
        opener.record(event(12))
        assert opener.checkpoint() is not None
        assert _marks(opener) == [(8, None), (13, None)]
    finally:
        opener.close()
        writer.close()
    assert client["huren"][COLLECTION].count_documents({}) == 0  # both leases let go at close


def test_an_opener_after_a_dead_writer_marks_its_tail_once_its_lease_lapses(
        settings: Settings, short_lease: None, client: mongomock.MongoClient) -> None:
    """The writer dies (its lease is no longer renewed) with 8..11 unsigned; the opener waits for
    its lease to lapse, notes the tail, and the next signature marks exactly 8..11."""
    s = quiet(settings.with_(mongodb_uri="mongomock://"))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    writer = _writer(MongoStore(client), s)
    assert isinstance(writer._writers, Lease)
    writer._writers.abandon()
    opener = AuditLog(MongoStore(client), s, AuditKeys.load(s))
    try:
        assert opener.meta.get(FOUND) == {"_id": FOUND, "first": 8, "end": 12}
        opener.record(event(12))
        assert opener.checkpoint() is not None
        assert _marks(opener) == [(8, None), (12, 8), (13, None)]
        assert opener.meta.get(FOUND) is None
    finally:
        opener.close()


def test_the_opening_lock_is_taken_by_one_opener_at_a_time_and_a_dead_ones_lapses(
        short_lease: None, client: mongomock.MongoClient) -> None:
    """The opening lock is held from the decide step (``settle``) to ``share``: a second opener takes
    it once the first, abandoned while it holds it, has not renewed it for a lease; then a third sees
    the second's lease as a live writer's."""
    raw = client["huren"][COLLECTION]
    first = Lease(raw)
    assert first.join() and first.settle()  # alone: no other lease; holds the opening lock
    second = Lease(raw)
    first.abandon()  # dies while it holds the opening lock
    assert second.join() and second.settle()  # the first was opening (counts for nothing); its lock taken over
    assert raw.find_one({"_id": "opening"})["owner"] == second.owner
    second.share()
    third = Lease(raw)
    assert not third.join() and not third.settle()  # the second renews: a live writer
    third.close()
    second.close()
    # at most the dead first opener's lease (an opener's: it counts for nothing; since audfix2 a live
    # writer's renewing thread deletes it once unchanged for a lease, which may have happened by now)
    assert {doc["_id"] for doc in raw.find({})} <= {first.id}


_REAL_WRITER = """
import sys
import engine.audit.lease as lease
lease.LEASE_SECONDS = 1.0
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.repository import open_store
from engine.settings import Settings
from tests.test_audit_log import event
s = Settings(data_dir=Path(sys.argv[1]), mongodb_uri=sys.argv[2], mongodb_db=sys.argv[3],
             audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
log = AuditLog(open_store(s), s, AuditKeys.load(s, create=True))
for i in range(12):
    log.record(event(i))
    if i == 7:
        log.checkpoint()
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(not os.environ.get("HUREN_MONGODB_URI"), reason="needs a MongoDB server (HUREN_MONGODB_URI)")
def test_on_a_real_server_a_live_writer_process_is_not_marked_and_a_killed_ones_tail_is(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.repository import open_store

    monkeypatch.setattr(lease, "LEASE_SECONDS", 1.0)
    uri, db = os.environ["HUREN_MONGODB_URI"], f"huren_test_{uuid.uuid4().hex[:12]}"
    s = quiet(settings.with_(mongodb_uri=uri, mongodb_db=db))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", _REAL_WRITER, str(s.data_dir), uri, db], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        beside = AuditLog(open_store(s), s, AuditKeys.load(s))
        try:
            assert beside.meta.get(FOUND) is None  # the writer lives
        finally:
            beside.close()  # (signs 8..11 unmarked: its own view, as a live peer's seal would)
            beside.store.close()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        # nothing is past a signature now (``beside`` signed 8..11 at its close): a second writer
        # process appends 12..23, signs through 19 and is killed with 20..23 unsigned
        proc = subprocess.Popen([sys.executable, "-c", _REAL_WRITER, str(s.data_dir), uri, db], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        after = AuditLog(open_store(s), s, AuditKeys.load(s))
        try:
            assert after.meta.get(FOUND) == {"_id": FOUND, "first": 20, "end": 24}  # waited for its lease to lapse
        finally:
            after.close()
            after.store.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        import pymongo

        pymongo.MongoClient(uri).drop_database(db)
