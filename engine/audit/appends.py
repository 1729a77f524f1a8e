"""Appending records: numbered, hashed into the tree, one ``write()`` to the segment or one transaction.

A part of ``AuditLog`` (``engine.audit.log``, whose state these methods use). A group of records gets
consecutive sequence numbers on a copy of the tree's right edge (``_prepare``), then is written in
one ``write()`` to the segment file under its lock (SQLite) or, when a checkpoint is due or on
MongoDB, in one transaction with it; the right edge is adopted only once written. The segment's
records move into the leaf table in large batches (``drain``, ``_table_transaction``). The event
loop appends without waiting for a lock (``try_record_many``); a worker thread otherwise.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from engine.audit import merkle
from engine.audit.canonical import canonical
from engine.audit.derived import facts_keys
from engine.audit.key_index import KEYS_NOTED
from engine.audit.leaves import Leaf
from engine.audit.loading import AuditLogDamaged
from engine.audit.merkle import LEAF_PREFIX
from engine.audit.record import SEALED_FORMAT, Facts, Sealed, event_of
from engine.repository.port import DuplicateKey

if TYPE_CHECKING:  # what this part needs from the others (engine.audit.parts); object at run time
    from engine.audit.parts import AppendsNeeds as _Needs
else:
    _Needs = object

log = logging.getLogger("engine.audit.log")  # (the log's own logger: operators and tests filter on it)
_sha256 = hashlib.sha256
_tuple_new = tuple.__new__

DRAIN_BATCH = 2000  # segment records moved into the leaf table per transaction (appends wait ~2-4 ms)


# what an append takes: a request's record written at the request (``Sealed``), an HTTP interaction's
# facts (``Facts``) or a complete AuditEvent (format 1: ingest's), told apart by their exact type
Record = Sealed | Facts | dict[str, Any]


# the search keys of a group's compact records, by number (noted once the group is written), and what
# writing a group returns: its results, the right edge after it and those keys
_Keys = dict[int, tuple[Sequence[str], "str | None"]]
_Written = tuple[list["Appended | Exception"], merkle.Frontier, _Keys]


class _Busy(Exception):
    """A lock ``try_record_many`` would have had to wait for."""


def _canonical(event: dict[str, Any], resource: dict[str, Any]) -> bytes:
    """RFC 8785 form of the record: orjson directly for an event ``build_event`` vouched for
    (``BuiltEvent.jcs_safe``: the record adds only ASCII names and strings), else ``canonical``."""
    if getattr(event, "jcs_safe", False):
        try:
            return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a string orjson refuses (a lone surrogate): canonical decides
            pass
    return canonical(resource)


def event_id(seq: int) -> str:
    return f"audit-{seq}"


class Appended(NamedTuple):
    """A record as appended: its number, its Merkle leaf and its signed bytes (a tuple: one is made
    per audited request, and a frozen dataclass costs ~1 µs to build)."""

    seq: int
    leaf_hash: bytes
    data: bytes

    @property
    def resource(self) -> dict[str, Any]:
        """The AuditEvent the record states (derived: nothing on the append path needs it)."""
        return event_of(self.data)


class Appends(_Needs):
    """``AuditLog``'s appends and the segment's drain into the leaf table."""

    # state of AuditLog this part assigns (declared here too: a type checker takes an assignment in a
    # subclass of its Protocol for a new attribute); annotations only, nothing at run time
    _frontier: merkle.Frontier
    _data_version: int | None

    def record(self, event: Record) -> Appended:
        """Append one AuditEvent (without id); raises if it cannot be made durable."""
        result = self.record_many([event])[0]
        if isinstance(result, BaseException):
            raise result
        return result


    def record_many(self, events: Sequence[Record]) -> list[Appended | Exception]:
        """Append several AuditEvents as one group: consecutive sequence numbers, one ``write()``
        to the segment file (or, on MongoDB and when a checkpoint is due, one transaction).
        Returns, per event, its ``Appended`` or the exception that kept that one event out (it
        could not be canonicalised); the others are unaffected. A failure of the write itself
        raises and appends none of them, so a caller that waits on any of these records learns it
        was not written and the numbering has no gap."""
        with self._lock:
            return self._record_many(events, True)


    def _record_many(self, events: Sequence[Record], blocking: bool,
                     keep: bool = False) -> list[Appended | Exception]:
        """``record_many`` under the log's lock; without ``blocking`` raises ``_Busy`` rather than
        wait for the segment's or the database's lock; ``keep``: see ``try_record_many``.

        The one path of steps every append takes, a request's lone record (lone mode: one caller, a
        quiet server: nearly every append) as a group of many (forty-first round, perfa41: the lone
        record had had a hand-copied path of its own, rv40j LOW 3). In order: the segment's lock
        (without waiting unless ``blocking``: ``_Busy``), the other workers' records taken in, the
        group prepared on a copy of the right edge (``_prepare``: the damage check, the numbers, the
        bytes, the leaves and the nodes they complete), the checkpoint's due rule, the frames in one
        ``write()`` with the lock kept if asked (``Segment.append``). When a checkpoint falls due with
        the group, or there is no segment file (MongoDB), the group goes through the database with
        the checkpoint instead (``_to_table``), the segment's lock let go first (an appender never
        holds the segment's lock while it waits for the database's). Then, only once written: the
        right edge adopted, the search keys of the group's compact records noted for ``index_keys``
        (from their facts, not read back; bounded: past ``KEYS_NOTED`` records waiting,
        ``index_keys`` reads the rest back as it does another process's), each record given to the
        after-append hooks. On a failure the right edge is reloaded (a node or a checkpoint counter
        may have been half-applied), as the log holds it."""
        seg = self._segment
        if seg is not None:
            if not seg.acquire(blocking):
                raise _Busy
            try:
                try:
                    if not seg._since_sync:  # (held without a break since the last sync: nothing new; perfr36)
                        self._sync_segment()  # another worker's records first: the numbering continues theirs
                    results, rows, frontier, keys = self._prepare(events)
                    if rows and self._checkpoint_due(self._frontier.size, frontier.size):
                        seg = None  # (through the database, with the checkpoint: below)
                    else:
                        seg.append(rows, keep)
                        self._unmoved.extend(rows)
                finally:
                    self._segment.release()  # type: ignore[union-attr]
            except BaseException:
                self._reload()
                raise
        if seg is None:
            results, frontier, keys = self._to_table(events, blocking)
        self._frontier = frontier
        noted = self._appended_keys
        if len(noted) < KEYS_NOTED:
            noted |= keys
        for hook in self.after_append:  # (none by default: no walk of the group for nothing)
            for appended in results:
                if isinstance(appended, Appended):
                    hook(appended)
        return results


    def _to_table(self, events: Sequence[Record], blocking: bool) -> _Written:
        """The group in a transaction of the database, with the checkpoint when one is due (the
        segment's records moved in first, so a checkpoint's records are in the table with it): a group
        a checkpoint falls due with, and every group on MongoDB (no segment file). A number another
        writer took first (MongoDB's unique key) is taken again after a reload; on any other failure
        the right edge is reloaded (a node or a checkpoint counter may have been half-applied).
        Returns the results, the right edge after them and the keys to note (the caller adopts them)."""
        for _attempt in range(5):
            try:
                return self._table_append(events, blocking)
            except DuplicateKey:
                log.info("audit: sequence %d taken by another writer; reloading", self._frontier.size)
                self._reload()
            except _Busy:
                raise
            except BaseException:
                self._reload()
                raise
        raise RuntimeError("audit: could not obtain a sequence number")


    def _table_append(self, events: Sequence[Record], blocking: bool) -> _Written:
        """One try of ``_to_table``."""
        store_lock = getattr(self.store, "lock", None)
        if not blocking and (store_lock is None or not store_lock.acquire(blocking=False)):
            raise _Busy  # (MongoDB has no local lock: its appends always go to a worker thread)
        try:
            with self._table_transaction():
                results, rows, frontier, keys = self._prepare(events)
                if rows:
                    # signed before anything is written: a key that cannot sign leaves the database
                    # untouched even on a backend without transactions (mongomock, standalone MongoDB)
                    cps = self._sign(frontier) if self._checkpoint_due(self._frontier.size, frontier.size) else []
                    self._leaf_rows.append(rows)
                    for cp in cps:
                        self._store_checkpoint(cp)
            if rows:
                self._signed_through(cps)
                # the store holds these records now, so a rollback of a block around this one (MongoDB's:
                # SQLite's flat transaction is always the outermost) may undo them: then the right edge is
                # reloaded. Not on the segment's path: a record written to the segment file is in no
                # transaction of the store, so nothing the store rolls back can take it away (each lone
                # read paid the look-up and the call for nothing; thirty-ninth round, perf39r)
                if (on_rollback := getattr(self.store, "on_rollback", None)) is not None:
                    on_rollback(self._rolled_back)
            return results, frontier, keys
        finally:
            if not blocking:
                store_lock.release()  # type: ignore[union-attr]


    def _transaction(self) -> AbstractContextManager[None]:
        """The append's transaction: on SQLite one whose nested blocks open no savepoints, so each
        collection's ``insert_many`` is one ``executemany`` without copying the pages it touches
        into a statement journal (a savepoint per collection made a group of 8 records cost ~2x
        more); the append is all or nothing anyway, and a ``DuplicateKey`` still propagates."""
        flat = getattr(self.store, "flat_transaction", None)
        return flat() if flat is not None else self.store.transaction()


    def _catch_up(self) -> None:
        """Inside the append's transaction: reload the right edge if another process (``serve
        --workers``) appended since this one last looked. On SQLite the transaction holds the
        file's write lock, so what is read here stays current until the commit, and
        ``PRAGMA data_version`` (which changes only when another connection commits) makes the
        check nearly free. Elsewhere (MongoDB) a lost race shows as ``DuplicateKey`` instead."""
        conn = getattr(self.store, "conn", None)
        if conn is None:
            return
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._reload()
            self._data_version = version


    def _prepare(self, events: Sequence[Record]) -> tuple[
            list[Appended | Exception], list[Leaf], merkle.Frontier, _Keys]:
        """The rows appending ``events`` writes (each leaf with the tree nodes it completes), on a
        copy of the right edge, and the search keys of its compact records by number (noted once
        written). Refused on a damaged log (``AuditLogDamaged``)."""
        self._refuse_if_damaged()
        frontier = self._frontier.copy()
        results: list[Appended | Exception] = []
        rows: list[Leaf] = []
        keys: _Keys = {}
        for event in events:
            seq = frontier.size
            kind = type(event)
            if kind is Sealed:  # a request's record, its bytes but the number made (Sealed.data)
                data = SEALED_FORMAT % (event[0], seq, event[1])  # type: ignore[index]  # (head, tail)
                keys[seq] = (event[2], event[3])  # type: ignore[index]  # its keys made at the request
            else:
                try:
                    if kind is Facts:  # an HTTP interaction's compact record (engine.audit.record)
                        data = event.data(seq)  # type: ignore[union-attr]  # (``kind`` narrows nothing)
                        keys[seq] = (facts_keys(event), event.recorded)  # type: ignore[arg-type, union-attr]
                    else:  # a complete AuditEvent (format 1): its keys read back by ``index_keys``
                        data = _canonical(event, {**event, "resourceType": "AuditEvent",  # type: ignore[arg-type, dict-item]
                                                  "id": event_id(seq)})
                except Exception as exc:  # this record only; the rest of the group goes on (its keys, the try's
                    results.append(exc)  # last statement, were never set)
                    continue
            leaf = _sha256(LEAF_PREFIX + data).digest()  # (``merkle.leaf_hash``, in place)
            rows.append((seq, leaf, data, frontier.push(leaf)))  # with the nodes it completes, level 1 up
            results.append(_tuple_new(Appended, (seq, leaf, data)))  # (no Python-level ``__new__``)
        return results, rows, frontier, keys

    def try_record_many(self, events: Sequence[Record], *,
                        keep: bool = False) -> list[Appended | Exception] | None:
        """``record_many`` at once when no lock it needs is held elsewhere; ``None`` otherwise (and
        always for MongoDB, which has no local lock), and the caller appends from a worker thread.
        ``keep``: the segment's lock may be kept past the append (``Segment.keep``), so the next
        group skips the lock and the sync; the caller then calls ``let_go_segment`` soon
        (``engine.audit.group_commit``: a few milliseconds later, on the event loop).

        Why: an append to the segment file is a few µs and one through the embedded SQLite store
        ~0.1 ms, less than the hop to a worker thread and back (measured: +60 µs per audited FHIR
        read inline against +500-700 µs through the thread pool). Trying the locks without
        blocking keeps the event loop from ever waiting behind a drain or a long ingest batch.
        """
        if not self._lock.acquire(False):  # positional: keyword parsing costs ~1 k a read (audit35)
            return None
        try:
            return self._record_many(events, False, keep)
        except _Busy:
            return None
        finally:
            self._lock.release()


    @property
    def segment_kept(self) -> bool:
        """Whether the segment's lock is kept past the last append (``try_record_many(keep=True)``)."""
        seg = self._segment
        return seg is not None and seg.kept


    def let_go_segment(self, *, blocking: bool = False) -> bool:
        """Release the segment's lock kept by ``try_record_many(keep=True)``; ``False`` when the
        log is busy (without ``blocking``): try again a little later."""
        seg = self._segment
        if seg is None or not seg.kept:
            return True
        if not self._lock.acquire(blocking=blocking):
            return False
        try:
            seg.let_go()
        finally:
            self._lock.release()
        return True


    def record_nowait(self, event: Record) -> Appended | None:
        """``record`` at once when the log and the store are free, else ``None`` (see
        ``try_record_many``)."""
        results = self.try_record_many([event])
        if results is None:
            return None
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]


    @contextmanager
    def _table_transaction(self, limit: int | None = None, *, flat: bool = True) -> Iterator[None]:
        """A transaction of the log's database with the segment's records (up to ``limit``) moved
        into the leaf table first; once it has committed, the segment is emptied if all of them
        moved. The segment's lock is taken inside the database's write lock and held past the
        commit (records appended between the move and the emptying would be lost otherwise); an
        appender holding the segment's lock never waits for the database's, so the two orders
        cannot deadlock."""
        seg = self._segment
        held = False
        moved = 0
        if seg is not None:
            # a lock kept past the loop's appends is let go before waiting for the database's: a
            # process holding the database's while it waits for this one (its drain) must get it
            seg.let_go()
        try:
            with self._transaction() if flat else self.store.transaction():
                if seg is not None:
                    seg.acquire()
                    held = True
                self._catch_up()
                if seg is not None:
                    self._sync_segment()
                    moved = self._move_segment(limit)
                yield
            if seg is not None:
                del self._unmoved[:moved]  # committed: not before
                # a new generation even when the file is already empty: this transaction may have
                # put records into the table directly (a group due a checkpoint), and another
                # worker learns of them only by reloading, which a new generation makes it do
                if not self._unmoved:
                    try:
                        seg.reset()
                    except OSError:  # its records are in the table: a reader skips them by number
                        log.exception("audit: could not empty the segment file")
        finally:
            if held:
                seg.release()  # type: ignore[union-attr]


    def _move_segment(self, limit: int | None) -> int:
        """In the open transaction: insert the segment's records the table does not hold yet (the
        first ``limit`` of them); returns how many of ``_unmoved`` are then in the table. They must
        continue the records held exactly: one numbered at or below the last held (or past the next)
        means the log's numbering went wrong, and is refused, not filtered out."""
        rows = self._unmoved if limit is None else self._unmoved[:limit]
        if not rows:
            return 0
        last = self._leaf_rows.last_seq()
        expected = 0 if last is None else last + 1
        if rows[0][0] != expected:  # an answered record is never dropped (nor a gap left) silently
            raise AuditLogDamaged(
                f"audit log damaged: the segment's record {rows[0][0]} does not follow record {last}, the last "
                "the log holds; the segment file is kept as it is; run `huren audit verify`")
        fresh = rows
        if fresh is self._unmoved and self._segment is not None and self._files is not None:
            # record files take the segment's frames as they are (``_unmoved`` is every frame of the
            # file, in order): one read instead of encoding each record again
            self._leaf_rows.append(fresh, source=self._segment.frames_of(fresh))  # type: ignore[call-arg]
        else:
            self._leaf_rows.append(fresh)
        return len(rows)


    def drain(self) -> None:
        """Move the segment's records into the leaf table, ``DRAIN_BATCH`` a transaction (appends
        wait for one batch at most). The background key indexer calls it each second, and every
        reader of the log before it reads (``leaves``), so the table is the log for them."""
        seg = self._segment
        if seg is None or not seg.pending():
            return
        with self._lock:
            for _batch in range(100_000):
                if not seg.pending():
                    return
                # into record files all at once (a copy of bytes: ~1-2 ms for 10,000 records);
                # into the leaf table DRAIN_BATCH at a time
                batch = None if self._files is not None else DRAIN_BATCH
                with self._table_transaction(batch):
                    pass
                if not self._unmoved:
                    return  # all in the table (and the file emptied, or that failed: logged)
