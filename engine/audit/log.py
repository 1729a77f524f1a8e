"""``AuditLog``: the append-only, Merkle-tree audit log, in its own database file.

Each AuditEvent gets the next sequence number as its id (``audit-<seq>``), is canonicalised with
RFC 8785 (JCS) and becomes leaf ``seq`` of an RFC 9162 Merkle tree. Four collections of the
audit ``Store`` (``engine.audit.store``: ``audit.sqlite3`` next to huren's database, or the same
MongoDB database):

- ``audit_log``: ``{_id, seq, hash, data}`` — ``data`` is the canonical JSON text itself, so
  verification re-hashes the exact bytes that were committed (no re-canonicalisation, which is
  what lets verification run at hashing speed);
- ``audit_nodes``: ``{_id: "level:index", level, index, hash}`` for every completed perfect subtree
  of level >= 1 (about one per record), so inclusion and consistency proofs are O(log n) reads;
- ``audit_checkpoints``: signed checkpoints (``engine.audit.checkpoint``) every
  ``settings.audit_checkpoint_every`` records or ``audit_checkpoint_seconds``, and on demand;
- ``audit_meta``: the log's name (origin).

Why a file of its own: every audited read appends a record, and a commit to huren's main
database would make every reader connection (other threads, other ``--workers``) drop its page
cache for the FHIR data at its next read. An append commits in the audit file, before the
response leaves (or, for ingest, before the message's own commit: an audit record may name an
attempt that then rolled back, never the reverse).

Appends are serialised by a lock within the process and by the unique ``_id`` (``seq_key(seq)``)
across processes: a writer that loses the race gets ``DuplicateKey``, reloads the tree's right
edge and retries, so sequence numbers never have gaps or forks.

When a FHIR repository is attached, the records are also shown as FHIR AuditEvents so residents
can search ``AuditEvent?patient=`` in their compartment: not the records themselves, which name
everyone an interaction touched, but their per-patient views (``engine.audit.view``). A
background thread derives them in batches and stores them by the repository's light path
(``insert_derived``) in the main database, with ``audit_view/progress`` (same transaction) saying
how far it got, so a restart resumes it and several processes never write a view twice;
``flush_index()`` brings it up to date at once (searches that must see the caller's own latest
access call it first). The views lag the log by at most about ``INDEX_DELAY`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from engine.audit import merkle
from engine.audit.canonical import canonical
from engine.audit.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from engine.audit.keys import AuditKeys, log_origin
from engine.audit.legacy import purge_legacy_copies
from engine.audit.view import views_of
from engine.repository.port import DuplicateKey, Store
from engine.settings import Settings

log = logging.getLogger(__name__)

LEAVES, NODES, CHECKPOINTS, META = "audit_log", "audit_nodes", "audit_checkpoints", "audit_meta"
VIEW_PROGRESS = "audit_view"  # in the main database, next to the views it accounts for
INDEX_DELAY = 0.5  # seconds the FHIR view may lag behind the log
INDEX_BATCH = 256  # records per transaction of the main database


def seq_key(seq: int) -> str:
    return f"{seq:012d}"


def event_id(seq: int) -> str:
    return f"audit-{seq}"


@dataclass(frozen=True)
class Appended:
    seq: int
    leaf_hash: bytes
    resource: dict[str, Any]


class AuditLog:
    def __init__(self, store: Store, settings: Settings, keys: AuditKeys,
                 repository: Any | None = None) -> None:
        self.store = store
        self.settings = settings
        self.keys = keys
        self.origin = log_origin(settings)  # replaced by the stored origin below
        self.repository = repository  # FhirRepository: stores the AuditEvent copy for searches
        self.leaves = store.collection(LEAVES)
        self.nodes = store.collection(NODES)
        self.checkpoints = store.collection(CHECKPOINTS)
        self.meta = store.collection(META)
        # no index on ``seq``: ``_id`` is ``seq_key(seq)`` (zero-padded), so the primary key orders,
        # pages and keeps sequence numbers unique; a second (JSON expression) index cost every append
        # ~30-60 µs (measured) for nothing. Databases made before keep their old index, unused.
        self.checkpoints.ensure_index(["seq"], unique=True)
        self.checkpoints.ensure_index(["size"])
        self.origin = self._stored_origin(self.origin)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._indexer: threading.Thread | None = None
        self._index_wanted = threading.Event()
        self._index_lock = threading.Lock()
        self._view_upto = 0  # records below this are known to have their views stored
        self._data_version: int | None = None  # see _catch_up
        self.after_append: list[Callable[[Appended], None]] = []
        self._reload()

    # ------------------------------------------------------------------ state
    def _stored_origin(self, proposed: str) -> str:
        """The log's name is fixed when it starts: checkpoints and exports name it, so a later
        change of ``HUREN_BASE_URL`` must not make the log look like another one."""
        doc = self.meta.get("origin")
        if doc is None:
            try:
                self.meta.insert({"_id": "origin", "origin": proposed})
            except DuplicateKey:
                doc = self.meta.get("origin")
        return str(doc["origin"]) if doc else proposed

    def _reload(self) -> None:
        """Rebuild the in-memory right edge (and checkpoint state) from the database."""
        last = self.leaves.find(sort=[("_id", -1)], limit=1)
        size = last[0]["seq"] + 1 if last else 0
        try:
            hashes = [self.subtree_hash(lvl, idx) for lvl, idx in merkle.perfect_subtrees(0, size)]
        except LookupError as exc:  # appending onto a damaged tree would bury the damage: refuse
            raise RuntimeError(f"audit log damaged ({exc}); run `huren audit verify`") from exc
        self._frontier = merkle.Frontier(size, hashes)
        cps = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        self._last_cp_seq = cps[0]["seq"] if cps else -1
        self._last_cp_size = cps[0]["size"] if cps else 0
        self._last_cp_time = time.monotonic()

    def refresh(self) -> None:
        """Catch up with records and checkpoints other processes appended."""
        with self._lock:
            self._reload()

    @property
    def size(self) -> int:
        return self._frontier.size

    def root(self) -> bytes:
        return self._frontier.root()

    def subtree_hash(self, level: int, index: int) -> bytes:
        doc = self.leaves.get(seq_key(index)) if level == 0 else self.nodes.get(f"{level}:{index}")
        if doc is None:
            raise LookupError(f"audit tree node {level}:{index} is missing")
        return bytes.fromhex(doc["hash"])

    # ------------------------------------------------------------------ writing
    def record(self, event: dict[str, Any]) -> Appended:
        """Append one AuditEvent (without id); raises if it cannot be made durable."""
        result = self.record_many([event])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def record_many(self, events: Sequence[dict[str, Any]]) -> list[Appended | Exception]:
        """Append several AuditEvents in one transaction (group commit): consecutive sequence
        numbers, one commit for all. Returns, per event, its ``Appended`` or the exception that
        kept that one event out (it could not be canonicalised); the others are unaffected.
        A failure of the transaction itself raises and appends none of them, so a caller that
        waits on any of these records learns it was not written and the numbering has no gap."""
        with self._lock:
            for _attempt in range(5):
                try:
                    with self.store.transaction():
                        self._catch_up()
                        results, leaves, nodes, frontier, cp = self._prepare(events)
                        if not leaves:
                            return results
                        # plain inserts, no insert_many: its savepoint copies every page it touches
                        # into the statement journal (measured: a group of 8 reads' records cost
                        # ~2x more through two savepoints); the transaction is all or nothing anyway
                        for doc in leaves:
                            self.leaves.insert(doc)
                        for doc in nodes:
                            self.nodes.insert(doc)
                        if cp is not None:
                            self._store_checkpoint(cp)
                except DuplicateKey:
                    log.info("audit: sequence %d taken by another writer; reloading", self._frontier.size)
                    self._reload()
                    continue
                except BaseException:
                    self._reload()  # a checkpoint counter or node may have been half-applied
                    raise
                self._frontier = frontier
                self._index_wanted.set()
                for appended in results:
                    if isinstance(appended, Appended):
                        for hook in self.after_append:
                            hook(appended)
                return results
            raise RuntimeError("audit: could not obtain a sequence number")

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

    def _prepare(self, events: Sequence[dict[str, Any]]) -> tuple[
            list[Appended | Exception], list[dict[str, Any]], list[dict[str, Any]], merkle.Frontier, Checkpoint | None]:
        """The documents appending ``events`` writes, on a copy of the right edge."""
        frontier = self._frontier.copy()
        results: list[Appended | Exception] = []
        leaves: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        for event in events:
            seq = frontier.size
            resource = {**event, "resourceType": "AuditEvent", "id": event_id(seq)}
            try:
                data = canonical(resource)
            except Exception as exc:  # this record only; the rest of the group goes on
                results.append(exc)
                continue
            leaf = merkle.leaf_hash(data)
            leaves.append({"_id": seq_key(seq), "seq": seq, "hash": leaf.hex(), "data": data.decode()})
            nodes += [{"_id": f"{lvl}:{idx}", "level": lvl, "index": idx, "hash": h.hex()}
                      for lvl, idx, h in frontier.append(leaf)]
            results.append(Appended(seq, leaf, resource))
        # signed before anything is written: a key that cannot sign leaves the database
        # untouched even on a backend without transactions (mongomock, standalone MongoDB)
        cp = (sign_checkpoint(self.keys, self.origin, frontier.size, frontier.root(), self._last_cp_seq + 1)
              if leaves and self._checkpoint_due(self._frontier.size, frontier.size) else None)
        return results, leaves, nodes, frontier, cp

    def try_record_many(self, events: Sequence[dict[str, Any]]) -> list[Appended | Exception] | None:
        """``record_many`` at once when neither this log nor the store is busy; ``None`` otherwise
        (and for stores without a local lock, i.e. MongoDB), and the caller appends from a worker
        thread.

        Why: for the embedded SQLite store an append is ~0.1 ms, less than the hop to a worker
        thread and back (measured: +60 µs per audited FHIR read inline against +500-700 µs through
        the thread pool). Trying the locks without blocking keeps the event loop from ever
        waiting behind a long ingest batch or the FHIR-copy indexer.
        """
        store_lock = getattr(self.store, "lock", None)
        if store_lock is None or not store_lock.acquire(blocking=False):
            return None
        try:
            if not self._lock.acquire(blocking=False):
                return None
            try:
                return self.record_many(events)
            finally:
                self._lock.release()
        finally:
            store_lock.release()

    def record_nowait(self, event: dict[str, Any]) -> Appended | None:
        """``record`` at once when the log and the store are free, else ``None`` (see
        ``try_record_many``)."""
        results = self.try_record_many([event])
        if results is None:
            return None
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]

    def _checkpoint_due(self, old_size: int, size: int) -> bool:
        """Due when the append (of one or a group of records) passed a multiple of ``every``."""
        every = self.settings.audit_checkpoint_every
        if every > 0 and size // every > old_size // every:
            return True
        return time.monotonic() - self._last_cp_time >= self.settings.audit_checkpoint_seconds

    def _write_checkpoint(self, frontier: merkle.Frontier) -> Checkpoint:
        cp = sign_checkpoint(self.keys, self.origin, frontier.size, frontier.root(), self._last_cp_seq + 1)
        return self._store_checkpoint(cp)

    def _store_checkpoint(self, cp: Checkpoint) -> Checkpoint:
        self.checkpoints.insert({"_id": seq_key(cp.seq), **cp.as_json()})
        self._last_cp_seq, self._last_cp_size = cp.seq, cp.size
        self._last_cp_time = time.monotonic()
        return cp

    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign a checkpoint of the current size now (``None`` when nothing new since the last one,
        unless ``force``)."""
        with self._lock:
            for _attempt in range(5):
                if not force and self._frontier.size == self._last_cp_size and self._last_cp_seq >= 0:
                    return None  # nothing new here: no transaction (the timer ticks on an idle log)
                try:
                    with self.store.transaction():
                        self._catch_up()
                        if not force and self._frontier.size == self._last_cp_size and self._last_cp_seq >= 0:
                            return None
                        return self._write_checkpoint(self._frontier)
                except DuplicateKey:  # another process (``--workers``) signed this number first
                    log.info("audit: checkpoint %d taken by another writer; reloading", self._last_cp_seq + 1)
                    self._reload()
                except BaseException:
                    self._reload()
                    raise
            raise RuntimeError("audit: could not obtain a checkpoint number")

    def start(self) -> None:
        """Sign a checkpoint every ``audit_checkpoint_seconds`` while records keep arriving."""
        if self._timer is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(self.settings.audit_checkpoint_seconds):
                try:
                    self.checkpoint()
                except Exception:  # keep the timer alive; the next append retries
                    log.exception("audit: periodic checkpoint failed")

        if self.repository is not None:
            # before anything can search AuditEvents: no earlier version's multi-patient copy survives
            purge_legacy_copies(self, self.repository, VIEW_PROGRESS)
        self._timer = threading.Thread(target=run, name="audit-checkpoints", daemon=True)
        self._timer.start()
        if self.repository is not None:
            # records a process appended but did not show before it died (kill -9 inside the
            # views' lag) are shown now, not only once the next record arrives
            self._index_wanted.set()
            self._indexer = threading.Thread(target=self._index_loop, name="audit-fhir-index", daemon=True)
            self._indexer.start()

    def close(self) -> None:
        self._stop.set()
        self._index_wanted.set()
        for thread in (self._timer, self._indexer):
            if thread is not None:
                thread.join(timeout=5)
        self._timer = self._indexer = None
        if self.keys.can_sign and self.size:
            try:  # sign the tail so a clean shutdown leaves every record covered
                self.checkpoint()
            except Exception:
                log.exception("audit: final checkpoint failed")
        if self.repository is not None:
            try:
                self.flush_index()
            except Exception:
                log.exception("audit: final FHIR index flush failed; it resumes at the next start")

    # ------------------------------------------------------------------ FHIR copies
    def _index_loop(self) -> None:
        while not self._stop.is_set():
            self._index_wanted.wait()
            if self._stop.wait(INDEX_DELAY):  # gather a batch; stop promptly on close
                return
            self._index_wanted.clear()
            try:
                self.flush_index()
            except Exception:
                log.exception("audit: copying AuditEvents to the FHIR repository failed; will retry")
                self._index_wanted.set()

    def flush_index(self) -> int:
        """Derive and store the FHIR views of every record not yet shown; returns how many records."""
        if self.repository is None or self.size <= self._view_upto:
            return 0
        main = self.repository.store
        progress = main.collection(VIEW_PROGRESS)
        copied = 0
        with self._index_lock:
            while True:
                with main.transaction():  # holds the main write lock: the progress read is current
                    state = progress.get("progress")
                    upto = int(state["upto"]) if state else self._legacy_upto()
                    docs = self.leaves.find({"_id": {"$gte": seq_key(upto)}}, sort=[("_id", 1)], limit=INDEX_BATCH)
                    if docs:
                        try:
                            with main.transaction():
                                self.repository.insert_derived(
                                    [v for d in docs for v in views_of(orjson.loads(d["data"]))])
                        except Exception:
                            self._store_views_one_by_one(docs)
                        progress.replace({"_id": "progress", "upto": docs[-1]["seq"] + 1})
                if not docs:
                    self._view_upto = max(self._view_upto, upto)
                    return copied
                copied += len(docs)
                time.sleep(0)  # let a waiting writer take the main store between batches

    def _store_views_one_by_one(self, docs: list[dict[str, Any]]) -> None:
        """After a failed batch: store each record's views alone and skip a record that fails
        (it stays in the signed log; its view is derived data)."""
        for doc in docs:
            try:
                with self.repository.store.transaction():  # type: ignore[union-attr]
                    self.repository.insert_derived(views_of(orjson.loads(doc["data"])))  # type: ignore[union-attr]
            except Exception:
                log.error("audit: record %s cannot be shown as FHIR AuditEvents; skipped (it stays in the "
                          "signed log)", doc["seq"], exc_info=True)

    def _legacy_upto(self) -> int:
        """Where views start on a database whose records were copied whole by an earlier version."""
        doc = self.meta.get("fhir-index")
        return int(doc["upto"]) if doc else 0

    # ------------------------------------------------------------------ reading
    def get(self, seq: int) -> dict[str, Any] | None:
        return self.leaves.get(seq_key(seq))

    def list_checkpoints(self, *, since_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        docs = self.checkpoints.find({"seq": {"$gte": since_seq}}, sort=[("seq", 1)], limit=limit)
        return [parse_checkpoint(d["note"]) for d in docs]

    def latest_checkpoint(self) -> Checkpoint | None:
        docs = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        return parse_checkpoint(docs[0]["note"]) if docs else None

    def inclusion_proof(self, leaf: int, size: int) -> list[bytes]:
        self._check_size(size)
        return merkle.inclusion_proof(leaf, size, self.subtree_hash)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        return merkle.consistency_proof(first, second, self.subtree_hash)

    def root_at(self, size: int) -> bytes:
        self._check_size(size)
        return merkle.range_hash(0, size, self.subtree_hash)

    def _check_size(self, size: int) -> None:
        if not 0 < size <= self.size:
            raise ValueError(f"tree size {size} is outside 1..{self.size}")
