"""Which processes have the audit log open to append, on MongoDB: a lease each, renewed while it lives.

Why: on SQLite the writers hold a shared ``flock`` beside the log (``engine.audit.writers``), which
the kernel lets go the moment a process dies; an opener that can take it exclusive knows the
unsigned tail past the newest signature is a dead writer's, *found*, and marks it ``recovered``.
MongoDB has no such lock, and an opener used to take every tail as found: a live peer's records of
the last second (its seal on the way) were stamped ``recovered``, which says nothing proves them.

Here each writer keeps a document in ``audit_writers`` (``writer:<owner>``: a random owner id, its
host and pid, ``expires`` and a renewal count), renewed every ``LEASE_SECONDS / 5`` by a thread of
its own (not the log's background tick, which a long drain can hold up) until it closes, when it
deletes it. A writer that dies stops renewing, and its lease lapses ``LEASE_SECONDS`` later. An
opener first takes the *opening* lock (``audit_writers/opening``: taken by an atomic
find-and-modify that matches only a free, lapsed or own lock; renewed with the lease, so a dead
opener's lapses too), registers its own lease, then looks at the others: none unlapsed, it is
alone; otherwise, when the log has an unsigned tail (``settle``), it waits until each either renews
(a live writer: not alone, the tail is left to the live writers' seals, as on SQLite) or lapses
(dead: alone, the tail is found) — at most ``LEASE_SECONDS``, a fifth of it when a peer lives. It
lets the opening lock go (``share``) once it has noted the tail, so a second opener waits for that
and then sees the first's lease. Times are the hosts' own clocks (``time.time``): hosts whose
clocks differ by more than a few seconds make a lease lapse early or late.

The limit: a live writer whose renewals stop for longer than ``LEASE_SECONDS`` (the process
stopped, a network partition from the database) looks dead, and its unsigned second may be marked
``recovered`` by an opener meanwhile: the lesser wrong (a mark over appended records, never a
found tail left unmarked).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

COLLECTION = "audit_writers"
OPENING = "opening"  # the opening lock's ``_id``
PREFIX = "writer:"  # each writer's lease ``_id``: this and its owner id
LEASE_SECONDS = 10.0  # a lease lapses this long after its last renewal (renewed five times in it)
TAKE_POLL = 0.05  # how often an opener waiting for the opening lock tries again (fraction of a lease)


def _duplicate_key() -> tuple[type[BaseException], ...]:
    """pymongo's duplicate-key error, and mongomock's own where it is installed (a test dependency);
    imported when a lease is taken, so a log on SQLite never imports either."""
    import pymongo.errors

    try:
        import mongomock
    except ImportError:  # pragma: no cover
        return (pymongo.errors.DuplicateKeyError,)
    return (pymongo.errors.DuplicateKeyError, mongomock.DuplicateKeyError)


def _renewing(ref: weakref.ReferenceType[Lease], stop: threading.Event, every: float) -> None:
    """The renewing thread: the lease held weakly, so a lease let go unclosed is collected (and
    lets its document go) rather than renewed for the rest of the process."""
    while not stop.wait(every):
        lease = ref()
        if lease is None:
            return
        try:
            lease._renew()
        except Exception:  # the next renewal tries again; a lease not renewed in time lapses
            log.exception("audit: renewing the writers' lease failed")
        del lease


class RawCollection(Protocol):
    """What the lease needs of a pymongo (or mongomock) collection: single-document atomic writes."""

    def find_one_and_update(self, filter: Mapping[str, Any], update: Mapping[str, Any], *,
                            upsert: bool = ...) -> Any: ...

    def update_one(self, filter: Mapping[str, Any], update: Mapping[str, Any], *, upsert: bool = ...) -> Any: ...

    def delete_one(self, filter: Mapping[str, Any]) -> Any: ...

    def find(self, filter: Mapping[str, Any]) -> Any: ...

    def find_one(self, filter: Mapping[str, Any]) -> Any: ...


class Lease:
    """This process's lease on a MongoDB audit log (``join``, ``settle``, ``share``, ``close``: as
    ``engine.audit.writers.Writers``)."""

    def __init__(self, raw: RawCollection, *, seconds: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.raw = raw
        self.seconds = LEASE_SECONDS if seconds is None else seconds
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self.id = PREFIX + self.owner
        self.who = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid()}
        self.alone = False
        self._opening = False  # this process holds the opening lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the writers' lock's interface
    def join(self) -> bool:
        """Take the opening lock (waiting for another opener to let it go, or for it to lapse),
        register this lease and start renewing it; ``True`` when no other writer holds an unlapsed
        lease (``alone``; with others, ``settle`` decides)."""
        self._take_opening()
        self._renew()
        self._thread = threading.Thread(target=_renewing, args=(weakref.ref(self), self._stop, self.seconds / 5),
                                        name="audit-lease", daemon=True)
        self._thread.start()
        self.alone = not self._others()
        return self.alone

    def settle(self) -> bool:
        """When the log has an unsigned tail and others held leases at ``join``: wait until each
        renews (a live writer: ``False``) or lapses or is let go (all: ``True``, alone)."""
        if self.alone:
            return True
        seen = self._others()
        while seen:
            if self._stop.wait(min(self.seconds / 20, 0.5)):
                return False  # (closed meanwhile)
            now = self.clock()
            for lease_id, before in list(seen.items()):
                doc = self.raw.find_one({"_id": lease_id})
                if doc is None or float(doc.get("expires", 0)) <= now:
                    del seen[lease_id]  # let go (closed) or lapsed (dead)
                elif doc.get("renewals") != before.get("renewals"):
                    return False  # renewed: a live writer
        self.alone = True
        return True

    def share(self) -> None:
        """After the load (and any note of a found tail): let the opening lock go."""
        if self._opening:
            self._opening = False
            self.raw.delete_one({"_id": OPENING, "owner": self.owner})

    def close(self) -> None:
        """Stop renewing and delete this lease: no longer a live writer (a later opener may find a tail)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
            self._thread = None
        try:
            self.share()
            self.raw.delete_one({"_id": self.id})
        except Exception:  # (the database gone: the lease lapses by itself)
            log.exception("audit: could not let go of the writers' lease; it lapses in %.0f s", self.seconds)

    # ------------------------------------------------------------------ the documents
    def _take_opening(self) -> None:
        """The opening lock, by one atomic find-and-modify: it matches only a lock that is free (no
        document: upserted), lapsed or this owner's; a live holder's makes the upsert collide with its
        ``_id`` (a duplicate key), and the opener tries again a little later."""
        duplicate = _duplicate_key()
        while True:
            now = self.clock()
            try:
                self.raw.find_one_and_update(
                    {"_id": OPENING, "$or": [{"expires": {"$lte": now}}, {"owner": self.owner}]},
                    {"$set": {**self.who, "expires": now + self.seconds}}, upsert=True)
                self._opening = True
                return
            except duplicate:  # held by a live opener: the upsert collided with its ``_id``
                pass
            if self._stop.wait(max(self.seconds * TAKE_POLL, 0.005)):
                raise RuntimeError("audit: closed while waiting for the writers' opening lock")

    def _renew(self) -> None:
        now = self.clock()
        self.raw.update_one({"_id": self.id}, {"$set": {**self.who, "expires": now + self.seconds},
                                               "$inc": {"renewals": 1}}, upsert=True)
        if self._opening:  # (a dead opener's lock lapses as its lease does)
            self.raw.update_one({"_id": OPENING, "owner": self.owner}, {"$set": {"expires": now + self.seconds}})

    def _others(self) -> dict[str, dict[str, Any]]:
        """The other writers' unlapsed leases, by ``_id``."""
        now = self.clock()
        return {doc["_id"]: doc for doc in self.raw.find({"_id": {"$regex": f"^{PREFIX}"}})
                if doc["_id"] != self.id and float(doc.get("expires", 0)) > now}

    def __del__(self) -> None:
        """A log let go without ``close`` (no longer referenced) lets its lease go as the ``flock``'s
        descriptor would be closed: its renewing thread holds it only weakly, and ends."""
        self._stop.set()
        try:
            if self._opening:
                self.raw.delete_one({"_id": OPENING, "owner": self.owner})
            self.raw.delete_one({"_id": self.id})
        except Exception:  # (at interpreter exit, or the database gone: it lapses by itself)
            pass

    def abandon(self) -> None:
        """Stop renewing without letting go, as a process's death leaves its lease (it lapses
        ``seconds`` later). Tests use it where the database cannot outlive a process (mongomock)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
            self._thread = None
