"""Which processes have the audit log open to append, on MongoDB: a lease each, renewed while it lives.

Why: on SQLite the writers hold a shared ``flock`` beside the log (``engine.audit.writers``), which
the kernel lets go the moment a process dies; an opener that can take it exclusive knows the
unsigned tail past the newest signature is a dead writer's, *found*, and marks it ``recovered``.
MongoDB has no such lock, and an opener used to take every tail as found: a live peer's records of
the last second (its seal on the way) were stamped ``recovered``, which says nothing proves them.

Here each writer keeps a document in ``audit_writers`` (``writer:<owner>``: a random owner id, its
host and pid, its state, ``opening`` until it has opened the log and ``open`` after, and a renewal
count), renewed every ``LEASE_SECONDS / 5`` by a thread of its own (not the log's background tick,
which a long drain can hold up) until it closes, when it deletes it. An opener registers its lease
with no lock (``join``); when the log has an unsigned tail (``settle``) it watches the others: a writer
whose count changes is live (not alone, the tail is left to the live writers' seals, as on SQLite), one
whose count has not changed for ``LEASE_SECONDS`` of the opener's own monotonic time is dead; at most a
lease and a poll. All dead or gone, it takes the *opening* lock (``audit_writers/opening``, by an atomic
find-and-modify) for the short decide-and-record step, reads the leases again there, and lets it go
(``share``) once the tail is noted, its own lease marked ``open`` and the dead leases deleted. No clock
is compared between hosts: only each observer's elapsed time. Each renewal still writes ``expires``
(the writer's wall clock and a lease), read only by the previous version's openers during a rolling
upgrade. A live writer's renewing thread deletes an opener's lease left ``opening`` and unchanged
for a lease (an opener that died before ``share``; it holds no records).

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
OPENING_STATE = "opening"  # a lease's state until its process has opened the log
WRITING = "open"  # ... and after: it may append
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
            lease._sweep()
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
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.raw = raw
        self.seconds = LEASE_SECONDS if seconds is None else seconds
        self.clock = clock  # this process's own elapsed time: only differences of it are used
        self.wall = wall  # only for ``expires``, written for older readers (this code never reads it)
        self.owner = uuid.uuid4().hex
        self.id = PREFIX + self.owner
        self.who = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid()}
        self.alone = False
        self._state = OPENING_STATE  # a writer only once ``share``: until then it has appended nothing
        self._opening = False  # this process holds the opening lock
        self._dead: dict[str, tuple[Any, Any]] = {}  # dead leases seen at the decide step (``share`` deletes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._openers: dict[str, tuple[Any, float]] = {}  # others' opening leases: (renewals, first seen so)

    # ------------------------------------------------------------------ the writers' lock's interface
    def join(self) -> bool:
        """Register this lease (as opening) and start renewing it; ``True`` when no other writer
        holds a lease (``alone``; with others, ``settle`` decides). Takes no lock: openers do not
        wait for one another here."""
        self._renew()
        self._thread = threading.Thread(target=_renewing, args=(weakref.ref(self), self._stop, self.seconds / 5),
                                        name="audit-lease", daemon=True)
        self._thread.start()
        self.alone = not self._writers()
        return self.alone

    def settle(self) -> bool:
        """When the log has an unsigned tail: watch the other leases, without any lock, until each
        writer's renews (a live writer: ``False`` at once) or none has for ``seconds`` of this
        process's own time (dead) or it is let go; at most ``seconds`` and a poll. Then, all dead or
        gone, take the opening lock for the short decide-and-record step and look again there: a
        writer not seen dead (renewed since, or new) is live (``False``, the lock let go); otherwise
        ``True`` (alone), holding the lock until ``share`` (after the tail is noted), so one opener
        at a time decides and the tail is noted once. Opening leases count for nothing: an opener
        has appended nothing until it shares."""
        seen: dict[str, tuple[Any, Any]] = {}  # lease _id -> (renewals, state) last read
        since: dict[str, float] = {}  # lease _id -> when (this process's clock) it was first read so
        dead: dict[str, tuple[Any, Any]] = {}
        start = self.clock()
        while True:
            docs = self._leases()
            now = self.clock()  # (after the read: a slow read must not lengthen what it proves unchanged)
            for lease_id, doc in docs.items():
                key = (doc.get("renewals"), doc.get("state"))
                if lease_id not in seen:
                    seen[lease_id], since[lease_id] = key, now
                elif seen[lease_id] != key:
                    if doc.get("state") != OPENING_STATE:
                        return False  # renewed (or opened the log): a live writer
                    seen[lease_id], since[lease_id] = key, now
                    dead.pop(lease_id, None)
                elif now - since[lease_id] >= self.seconds:
                    dead[lease_id] = key  # not renewed for a whole lease: its process is dead
            live = [i for i, d in docs.items() if d.get("state") != OPENING_STATE and i not in dead]
            if not live or now - start >= 2 * self.seconds:
                break
            if self._stop.wait(min(self.seconds / 20, 0.5)):
                return False  # (closed meanwhile)
        if live:
            return False  # (a writer neither renewed nor lapsed in twice a lease: taken as live)
        self._take_opening()
        for lease_id, doc in self._leases().items():  # the decide step: look again, under the lock
            key = (doc.get("renewals"), doc.get("state"))
            if doc.get("state") != OPENING_STATE and dead.get(lease_id) != key:
                self.share(opened=False)
                return False  # renewed since, or a writer that was not there: live
        self._dead = dead
        self.alone = True
        return True

    def share(self, *, opened: bool = True) -> None:
        """After the load (and any note of a found tail): delete the dead writers' leases whose tail
        is now recorded, let the opening lock go, and (``opened``) count as a writer from now on."""
        if opened and self._state != WRITING:  # (before the lock goes: the next opener to decide sees a writer)
            self._state = WRITING
            self._renew()
        if self._opening:
            for lease_id, (renewals, state) in self._dead.items():
                self.raw.delete_one({"_id": lease_id, "renewals": renewals, "state": state})
            self._dead = {}
            self._opening = False
            self.raw.delete_one({"_id": OPENING, "owner": self.owner})

    def close(self) -> None:
        """Stop renewing and delete this lease: no longer a live writer (a later opener may find a tail)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
            self._thread = None
        try:
            self.share(opened=False)
            self.raw.delete_one({"_id": self.id})
        except Exception:  # (the database gone: the lease lapses by itself)
            log.exception("audit: could not let go of the writers' lease; it lapses in %.0f s", self.seconds)

    # ------------------------------------------------------------------ the documents
    def _take_opening(self) -> None:
        """The opening lock, by one atomic find-and-modify: it matches only a free lock (no document:
        upserted) or this owner's; a holder's makes the upsert collide with its ``_id`` (a duplicate
        key), and the opener tries again a little later. A holder whose lock has not been renewed for
        ``seconds`` of this process's time is dead: its lock is taken over by a find-and-modify that
        matches only that holder at that renewal count. No clock is compared between hosts."""
        duplicate = _duplicate_key()
        last: tuple[Any, Any] | None = None
        since = self.clock()
        while True:
            try:
                self.raw.find_one_and_update({"_id": OPENING, "owner": self.owner},
                                             {"$set": {**self.who, "renewals": 0, "expires": self._expires()}},
                                             upsert=True)
                self._opening = True
                return
            except duplicate:  # held by another opener: the upsert collided with its ``_id``
                pass
            doc = self.raw.find_one({"_id": OPENING})
            now = self.clock()  # (after the read, as in ``settle``)
            if doc is not None:
                key = (doc.get("owner"), doc.get("renewals"))
                if key != last:
                    last, since = key, now
                elif now - since >= self.seconds and self.raw.find_one_and_update(
                        {"_id": OPENING, "owner": key[0], "renewals": key[1]},
                        {"$set": {**self.who, "renewals": 0, "expires": self._expires()}}) is not None:
                    self._opening = True
                    return
            if self._stop.wait(max(self.seconds * TAKE_POLL, 0.005)):
                raise RuntimeError("audit: closed while waiting for the writers' opening lock")

    def _expires(self) -> float:
        """``expires`` for the previous version's openers during a rolling upgrade: they count a
        lease (and hold back from the opening lock) only while it is in the future on their clock.
        Without it an older opener beside a live writer of this version took it as gone and marked
        its unsigned tail ``recovered``. This code never reads it (no clock compared between hosts)."""
        return self.wall() + self.seconds

    def _renew(self) -> None:
        expires = self._expires()
        self.raw.update_one({"_id": self.id}, {"$set": {**self.who, "state": self._state, "expires": expires},
                                               "$inc": {"renewals": 1}}, upsert=True)
        if self._opening:  # (a dead opener's lock is taken over as its lease lapses)
            self.raw.update_one({"_id": OPENING, "owner": self.owner},
                                {"$set": {"expires": expires}, "$inc": {"renewals": 1}})

    def _sweep(self) -> None:
        """Delete the leases of openers that died before ``share`` (each writer's renewing thread,
        after each renewal): one still ``opening`` whose renewal count has not changed for a lease of
        this process's own time. It holds no records (an opener appends nothing until it shares), and
        the delete matches it only at the count seen, so one renewed meanwhile stays. Before, such a
        lease was never deleted (``settle`` stops watching once no writer is live)."""
        docs = {i: d for i, d in self._leases().items() if d.get("state") == OPENING_STATE}
        now = self.clock()  # (after the read)
        for lease_id in list(self._openers):
            if lease_id not in docs:
                del self._openers[lease_id]
        for lease_id, doc in docs.items():
            seen = self._openers.get(lease_id)
            if seen is None or seen[0] != doc.get("renewals"):
                self._openers[lease_id] = (doc.get("renewals"), now)
            elif now - seen[1] >= self.seconds:
                self.raw.delete_one({"_id": lease_id, "renewals": seen[0], "state": OPENING_STATE})
                del self._openers[lease_id]

    def _leases(self) -> dict[str, dict[str, Any]]:
        """The other processes' leases, by ``_id``."""
        return {doc["_id"]: doc for doc in self.raw.find({"_id": {"$regex": f"^{PREFIX}"}}) if doc["_id"] != self.id}

    def _writers(self) -> dict[str, dict[str, Any]]:
        """The other leases of processes that have opened the log (not still opening it)."""
        return {i: d for i, d in self._leases().items() if d.get("state") != OPENING_STATE}

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
