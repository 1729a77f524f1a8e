"""Review of the MongoDB writers' lease (audfix14): openers do not wait for one another, an opener's
wait is bounded, hosts' clocks do not matter, a dead writer's lease goes once its tail is noted.

On mongomock (no MongoDB server here): leases are ``Lease``s over one in-process collection, a
writer's death its lease no longer renewed (``Lease.abandon``), a live writer's renewals driven by
hand where the test needs to know when one happens. Each lease's seconds are the test's own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import mongomock
import pytest

import engine.audit.lease as lease
from engine.audit.keys import AuditKeys
from engine.audit.lease import COLLECTION, Lease
from engine.audit.log import FOUND, AuditLog
from engine.repository.mongo_store import MongoStore
from engine.settings import Settings
from tests.test_audit_log import event, quiet


def _until(check: Callable[[], bool], within: float = 5.0) -> bool:
    """Observe state until ``check`` holds (``False`` if it does not within ``within`` seconds)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _live_writer(raw: object, seconds: float) -> Lease:
    """A writer that has opened the log, whose renewals the test makes by hand (``_renew``)."""
    writer = Lease(raw, seconds=seconds)  # type: ignore[arg-type]
    writer.join()
    writer.share()
    writer.abandon()  # (no renewing thread: the test renews it)
    return writer


def _opening(opener: Lease, out: dict[str, bool], name: str) -> threading.Thread:
    def run() -> None:
        out[name] = opener.settle()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_openers_beside_a_live_writer_wait_for_its_renewal_together_not_in_turn() -> None:
    """Two openers find an unsigned tail beside a live writer: both watch its lease at once and both
    go on, not alone, at its next renewal (before: the first held the opening lock while it waited,
    and the second could not even register until the first had shared: ~2 s each, in series)."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    writer = _live_writer(raw, seconds=5.0)
    a, b = Lease(raw, seconds=5.0), Lease(raw, seconds=5.0)
    out: dict[str, bool] = {}
    threads = []
    try:
        for name, opener in (("a", a), ("b", b)):
            threads.append(threading.Thread(target=lambda o=opener, n=name: out.__setitem__(n, o.join() or o.settle()),
                                            daemon=True))
            threads[-1].start()
        # both registered and watching while the writer has not renewed
        assert _until(lambda: raw.count_documents({}) == 3, within=2.0)
        assert not out
        # the writer renews (as its thread would, here faster than its lease's fifth): both see it live
        assert _until(lambda: writer._renew() or len(out) == 2, within=2.0)
        assert out == {"a": False, "b": False}
        assert raw.find_one({"_id": lease.OPENING}) is None  # neither took the opening lock
    finally:
        a.close()
        b.close()
        writer.close()


def test_an_openers_wait_beside_a_dead_writer_whose_clock_ran_ahead_is_bounded() -> None:
    """A writer on a host whose clock ran an hour ahead died (its lease stamped to expire an hour from
    now by that clock): the opener decides within a lease of its own time (before: it waited until
    the stamp passed, holding the opening lock)."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    dead = _live_writer(raw, seconds=0.3)
    raw.update_one({"_id": dead.id}, {"$set": {"expires": time.time() + 3600}})  # (as the old lease stamped it)
    opener = Lease(raw, seconds=0.3)
    out: dict[str, bool] = {}
    try:
        assert not opener.join()
        thread = _opening(opener, out, "settled")
        thread.join(timeout=3.0)
        assert out == {"settled": True}  # dead: alone, within a lease and a poll
        opener.share()
        assert raw.find_one({"_id": dead.id}) is None  # its tail recorded: its lease deleted
    finally:
        opener.close()  # (ends a waiting settle on the old code)


def test_an_opener_whose_clock_runs_ahead_still_sees_a_live_writer() -> None:
    """An opener whose clock runs an hour ahead of the live writer's: it must not count the writer
    as lapsed (before: expiry was compared with the opener's ``time.time``, so the live writer's
    tail was noted found and marked ``recovered``)."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    writer = Lease(raw, seconds=1.0)  # renewed by its own thread
    writer.join()
    writer.share()
    ahead = Lease(raw, seconds=1.0, clock=lambda: time.time() + 3600)
    try:
        assert not ahead.join()
        assert not ahead.settle()
        assert raw.find_one({"_id": lease.OPENING}) is None
    finally:
        ahead.close()
        writer.close()


def test_a_dead_writers_lease_is_deleted_once_its_tail_is_noted(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the log on the store: the writer dies with 8..11 unsigned; the opener notes the tail
    and deletes the dead lease (before: it was left, and every later opener read it again)."""
    monkeypatch.setattr(lease, "LEASE_SECONDS", 0.3)
    client = mongomock.MongoClient()
    s = quiet(settings.with_(mongodb_uri="mongomock://"))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    writer = AuditLog(MongoStore(client), s, AuditKeys.load(s, create=True))
    for i in range(12):
        writer.record(event(i))
        if i == 7:
            assert writer.checkpoint() is not None
    assert isinstance(writer._writers, Lease)
    writer._writers.abandon()
    opener = AuditLog(MongoStore(client), s, AuditKeys.load(s))
    try:
        assert opener.meta.get(FOUND) == {"_id": FOUND, "first": 8, "end": 12}
        assert isinstance(opener._writers, Lease)
        assert [d["_id"] for d in client["huren"][COLLECTION].find({})] == [opener._writers.id]
    finally:
        opener.close()


def test_two_noted_tails_that_do_not_touch_are_marked_apart(settings: Settings) -> None:
    """A tail noted found (8..11) and a later one (20..23) with appended records between: each is
    marked by a checkpoint of its own (before: ``_note_found`` joined them into one range, and the
    signature marked 8..23, the appended 12..19 with them). Through the log on the store
    (mongomock); the notes made as an opener makes them."""
    client = mongomock.MongoClient()
    s = quiet(settings.with_(mongodb_uri="mongomock://"))
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(MongoStore(client), s, AuditKeys.load(s, create=True))
    try:
        for i in range(24):
            log.record(event(i))
            if i == 7:
                assert log.checkpoint() is not None
        log._note_found(8, 12)
        log._note_found(20, 24)
        assert log.meta.get(FOUND) == {"_id": FOUND, "first": 8, "end": 24, "spans": [[8, 12], [20, 24]]}
        log._note_found(10, 12)  # (noted again, as a second opener might: no new span)
        assert log.meta.get(FOUND)["spans"] == [[8, 12], [20, 24]]
        assert log.checkpoint() is not None
        assert [(cp.size, cp.recovered) for cp in log.list_checkpoints()] == [(8, None), (12, 8), (24, 20)]
        assert log.meta.get(FOUND) is None
    finally:
        log.close()
