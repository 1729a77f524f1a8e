"""Second review of the MongoDB writers' lease (audfix2): leases still carry ``expires`` for the
previous version's openers during a rolling upgrade, and an opener's watch of a lease starts when
its read returns, not before it. On mongomock; clocks are the test's own."""

from __future__ import annotations

import time
from typing import Any

import mongomock

from engine.audit.lease import COLLECTION, PREFIX, Lease
from tests.test_audfix14_lease import _until


def _old_others(raw: Any, own_id: str, now: float) -> dict[str, dict[str, Any]]:
    """The previous version's reader (``Lease._others`` at baab174): a lease counts only while its
    ``expires`` is in the future on the reader's wall clock."""
    return {doc["_id"]: doc for doc in raw.find({"_id": {"$regex": f"^{PREFIX}"}, "expires": {"$gt": now}})
            if doc["_id"] != own_id}


def test_a_renewing_writer_of_this_version_counts_for_an_older_opener() -> None:
    """A live writer's lease, renewed by this code, keeps ``expires`` (its wall clock + a lease) in
    the future, so an opener of the previous version sees it live and does not mark its unsigned tail
    ``recovered`` (before: no ``expires``, taken as gone)."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    writer = Lease(raw, seconds=10.0)
    writer.join()
    writer.share()
    writer.abandon()  # (renewals by hand below)
    for _ in range(3):
        before = time.time()
        writer._renew()
        doc = raw.find_one({"_id": writer.id})
        assert doc is not None and before + 10.0 <= float(doc.get("expires", 0)) <= time.time() + 10.0
        assert writer.id in _old_others(raw, "writer:old-opener", time.time() + 9.0)  # live to an older reader
    assert writer.id not in _old_others(raw, "writer:old-opener", time.time() + 10.5)  # lapses once renewals stop


def test_the_opening_lock_carries_expires_for_older_openers() -> None:
    """The opening lock held by this code has ``expires`` in the future, so an older opener's
    find-and-modify (free, lapsed or own lock) does not take it from a live holder."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    opener = Lease(raw, seconds=10.0)
    opener._take_opening()
    opener._renew()
    now = time.time()
    assert raw.find_one({"_id": "opening", "expires": {"$lte": now}}) is None  # the old rule: not lapsed
    doc = raw.find_one({"_id": "opening"})
    assert doc is not None and float(doc.get("expires", 0)) > now + 9.0
    opener.share(opened=False)


def test_a_dead_openers_lease_is_deleted_once_seen_unchanged_for_a_lease() -> None:
    """An opener killed before ``share`` leaves a lease still ``opening``: a live writer's renewing
    thread deletes it once its count has not changed for a lease (before: left for ever); an opener
    still renewing keeps its lease."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    dead = Lease(raw, seconds=0.2)
    dead.join()
    dead.abandon()  # killed while opening
    waiting = Lease(raw, seconds=0.2)
    waiting.join()  # alive, still opening (renewing)
    writer = Lease(raw, seconds=0.2)
    writer.join()
    writer.share()
    try:
        assert _until(lambda: raw.find_one({"_id": dead.id}) is None)
        assert raw.find_one({"_id": waiting.id}) is not None
        assert raw.find_one({"_id": writer.id}) is not None
    finally:
        writer.close()
        waiting.close()


def test_a_slow_read_does_not_shorten_the_window_a_lease_is_seen_unchanged() -> None:
    """The opener's clock is read after each read of the leases: a lease first seen by a read that
    took half a lease is proven unchanged for a whole lease from when that read returned (before: from
    when it began, so the writer was judged dead after half a lease of proof)."""
    raw = mongomock.MongoClient()["huren"][COLLECTION]
    dead = Lease(raw, seconds=1.0)
    dead.join()
    dead.share()
    dead.abandon()
    t = [0.0]
    reads = [0]

    class Slow:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def find(self, *a: Any, **k: Any) -> Any:
            reads[0] += 1
            t[0] += 0.5 if reads[0] == 1 else 0.125  # the first read takes half a lease
            return self.inner.find(*a, **k)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    opener = Lease(Slow(raw), seconds=1.0, clock=lambda: t[0])  # type: ignore[arg-type]
    opener.join()
    decided: list[float] = []
    real_take = opener._take_opening

    def take() -> None:
        decided.append(t[0])
        real_take()

    opener._take_opening = take  # type: ignore[method-assign]
    reads[0], t[0] = 0, 0.0
    assert opener.settle() is True
    assert decided and decided[0] >= 0.5 + 1.0  # a whole lease after the first read returned
    opener.share()
    opener.close()
