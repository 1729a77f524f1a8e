"""``AuditLog``: the append-only, Merkle-tree audit log, in its own database file.

Each record gets the next sequence number as its id (``audit-<seq>``), is canonicalised with
RFC 8785 (JCS) and becomes leaf ``seq`` of an RFC 9162 Merkle tree. A record is a complete
AuditEvent (format 1: ingest's) or an HTTP interaction's compact facts (format 2,
``engine.audit.record``), whose AuditEvent is derived when read. Collections of the audit
``Store`` (``engine.audit.store``: ``audit.sqlite3`` next to huren's database, or the same MongoDB
database):

- ``audit_log``: ``{_id, seq, hash, data, nodes}`` (on SQLite rows of the table ``audit_leaves``
  keyed by ``seq``, shown to readers as these documents: ``engine.audit.leaves``) — ``data`` is the
  canonical JSON text itself, so
  verification re-hashes the exact bytes that were committed (no re-canonicalisation, which is
  what lets verification run at hashing speed); ``nodes`` the hashes of the perfect subtrees of
  level >= 1 this leaf completed (about one per record: ``stored_nodes``), so inclusion and
  consistency proofs are O(log n) reads;
- ``audit_nodes``: ``{_id: "level:index", level, index, hash}``, where logs appended before the
  nodes moved into their leaves keep them (read, no longer written);
- ``audit_keys``: the narrow search keys of the derived views (``engine.audit.derived``);
- ``audit_checkpoints``: signed checkpoints (``engine.audit.checkpoint``) every
  ``settings.audit_checkpoint_every`` records or ``audit_checkpoint_seconds``, and on demand; a
  checkpoint signed over records this process found rather than appended (a tail left unsigned by
  a process that stopped) says so (``recovered``);
- ``audit_meta``: the log's name (origin), and the **seal** (``SEAL``): a checkpoint of the whole
  log signed each ``audit_seal_seconds`` (1 s) in place of the last, so the records no signature
  covers are one second's at most without a numbered checkpoint (~0.45 KB, ~90 µs to verify) a
  second: ``seal``; while a stopped writer's unsigned tail awaits its ``recovered`` checkpoint,
  its first record and its end (``FOUND``: ``_note_found``).

Why a file of its own: every audited read appends a record, and a commit to huren's main
database would make every reader connection (other threads, other ``--workers``) drop its page
cache for the FHIR data at its next read. On SQLite a group of records is first one ``write()``
to the segment file beside it (``engine.audit.segment``: what a SQLite commit under
``synchronous=NORMAL`` promises, for a fraction of its cost), moved into the leaf table in large
batches by ``drain`` (the background key indexer, every checkpoint, and every reader through
``leaves`` before it reads); on MongoDB a group is one insert. Either happens before the response
leaves (or, for ingest, before the message's own commit: an audit record may name an attempt that
then rolled back, never the reverse).

Appends are serialised by a lock within the process and, across processes, by the segment's
``flock`` (under which each first takes in the others' records) or by the unique key (``seq``;
``_id`` = ``seq_key(seq)`` in a document collection): a writer that loses that race gets
``DuplicateKey``, reloads the tree's right edge and retries, so sequence numbers never have gaps or
forks.

Residents search ``AuditEvent?patient=`` in their compartment: not the records themselves, which
name everyone an interaction touched, but their per-patient views (``engine.audit.view``), derived
on read from the records (``engine.audit.derived``). An append stores only the record with its tree
nodes; a few narrow keys (``audit_keys``: the patients it names, its requesting agents) follow
(``index_keys``, which every search of the views calls first), so a view exists the moment its
record is written and nothing is written to the main database per read.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from engine.audit import merkle
from engine.audit.appends import DRAIN_BATCH, Appended, Appends, _canonical, event_id
from engine.audit.derived import KEYS
from engine.audit.found import FOUND, FoundTail, spans
from engine.audit.key_index import KEY_BATCH, KEY_MARK, KEYED, KeyIndexing
from engine.audit.keys import AuditKeys, log_origin
from engine.audit.lease import COLLECTION as LEASES
from engine.audit.lease import Lease
from engine.audit.leaves import Leaf, LeafTable, appender, open_leaves, seq_key
from engine.audit.legacy import purge_legacy_copies
from engine.audit.loading import AuditLogDamaged, Loading
from engine.audit.record import event_of
from engine.audit.record_files import FileEntry, RecordFiles
from engine.audit.segment import Segment, segment_path
from engine.audit.signing import Signing
from engine.audit.writers import Writers, WritersLock
from engine.repository.port import Collection, DuplicateKey, Store
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

# (names other modules and tests import from here, as before the log was split)
__all__ = ["DRAIN_BATCH", "FOUND", "KEY_BATCH", "KEY_MARK", "KEYED", "Appended", "AuditLog", "AuditLogDamaged",
           "_canonical", "event_id", "node_owner", "seq_key", "spans"]

log = logging.getLogger(__name__)

NODES, CHECKPOINTS, META = "audit_nodes", "audit_checkpoints", "audit_meta"
VIEW_PROGRESS = "audit_view"  # in the main database: the startup purge's marker
KEY_SECONDS = 1.0  # how often the background thread keys the records appended since
CLOSE_WAIT_SECONDS = 60.0  # how long close() waits for the background thread's tick to end
CHECKPOINT_LOG_SECONDS = 60.0  # a checkpoint thread that keeps failing logs its error this often


def _weak_prover(log: AuditLog) -> Callable[[FileEntry, Sequence[Leaf]], bool]:
    """``log._signed_file`` without a reference from its record files back to the log."""
    ref = weakref.WeakMethod(log._signed_file)

    def prove(entry: FileEntry, rows: Sequence[Leaf]) -> bool:
        method = ref()
        return method(entry, rows) if method is not None else False

    return prove


def writers_lock(store: Store, segment: bool) -> WritersLock | None:
    """The writers' lock of a log on ``store``: the ``flock`` beside a SQLite file with a segment,
    a lease on MongoDB (a store whose collections have a ``raw`` pymongo collection), else none
    (an in-memory database: one process)."""
    if isinstance(store, SqliteStore):
        return Writers(store.path) if segment else None
    raw = getattr(store.collection(LEASES), "raw", None)
    return Lease(raw) if raw is not None else None


def node_owner(level: int, index: int) -> int:
    """The leaf whose append completes tree node ``(level, index)``: its subtree's last."""
    return ((index + 1) << level) - 1


class AuditLog(FoundTail, Appends, Signing, KeyIndexing, Loading):
    """The log: its state, its load and background thread, and the reads of the tree. Its parts, one
    module each, share this state: the load and its damage checks (``engine.audit.loading``),
    appends and the segment's drain (``engine.audit.appends``), checkpoints and the seal
    (``engine.audit.signing``), found records (``engine.audit.found``), search keys
    (``engine.audit.key_index``)."""

    def __init__(self, store: Store, settings: Settings, keys: AuditKeys,
                 repository: Any | None = None, *, segment: bool = True, writer: bool = True) -> None:
        """``segment=False`` leaves the segment file alone (``huren audit verify`` of the stored
        records when the segment is damaged): such a log reads what was stored and must not append.
        ``writer=False``: a reader that neither appends nor signs (``huren audit verify``): it holds
        no share of the writers' lock (``engine.audit.writers``), so a server starting beside it
        still finds a stopped writer's tail; it must not sign."""
        self.store = store
        self.settings = settings
        self.keys = keys
        self.origin = log_origin(settings)  # replaced by the stored origin below
        self.repository = repository  # FhirRepository: purged of earlier versions' stored copies at start
        self._leaves = open_leaves(store)  # on SQLite a table keyed by seq (engine.audit.leaves)
        self._leaf_rows = appender(self._leaves)
        self._files: RecordFiles | None = getattr(self._leaves, "files", None)  # storage layout 3's files
        if self._files is not None:  # a damaged file is taken back only as the signed tree states it
            self._files.prover = _weak_prover(self)  # (no cycle: the log is freed when let go, its files closed)
        # on a SQLite file, groups of records are written to a segment file first (engine.audit.segment)
        self._lock = threading.RLock()
        self._segment = (Segment(segment_path(store.path), self._lock) if segment and isinstance(self._leaves, LeafTable)
                         and isinstance(store, SqliteStore) and str(store.path) != ":memory:" else None)
        # the segment's records not yet in the table, in order, as this process knows them (its own
        # appends and what ``sync`` took in from others): the drain inserts these, no file read back
        self._unmoved: list[Leaf] = []
        self._held = 0  # records the index stated it holds at the last reload (``_load_table``)
        self._damage: str | None = None  # why appends are refused (``AuditLogDamaged``), if they are
        self._damage_recheck = 0.0  # monotonic time after which a damaged log looks again (a repair)
        self._notes_look = 0.0  # monotonic time after which a healthy log looks at the damage notes again
        # the records this process took as it found them rather than appended them, not yet under a
        # checkpoint (a damaged file's records past it taken back by ``_signed_file``; the tail a
        # reader found at load), as (first, end) spans, in order, apart: the next checkpoint this
        # process signs says so (``recovered``), one span a checkpoint (``_sign``)
        self._unproven: list[tuple[int, int]] = []
        self._seal_size = 0  # the size of the last seal this process signed or saw (``seal``)
        self.key_index = store.collection(KEYS)
        self.nodes = store.collection(NODES)
        self.checkpoints = store.collection(CHECKPOINTS)
        self.meta = store.collection(META)
        # no index on ``seq``: ``_id`` is ``seq_key(seq)`` (zero-padded), so the primary key orders,
        # pages and keeps sequence numbers unique; a second (JSON expression) index cost every append
        # ~30-60 µs (measured) for nothing. Databases made before keep their old index, unused.
        self.checkpoints.ensure_index(["seq"], unique=True)
        self.checkpoints.ensure_index(["size"])
        self.origin = self._stored_origin(self.origin)
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None  # checkpoints and search keys (``start``)
        self._data_version: int | None = None  # see _catch_up
        self.after_append: list[Callable[[Appended], None]] = []
        self._appended_keys: dict[int, tuple[Sequence[str], str | None]] = {}  # see index_keys
        # the processes that may append hold ``<file>.writers`` shared (engine.audit.writers), or on
        # MongoDB a lease each (engine.audit.lease): an unsigned tail is found only when this
        # process opened the log with no live writer
        self._writers: WritersLock | None = None
        try:  # (a damaged segment, a lock call that fails): no file is left open behind the error
            self._writers = writers_lock(store, self._segment is not None) if writer else None
            alone = self._writers.join() if self._writers is not None else True
            self._reload()
            # records no signature covers, written before this process opened the log, by none alive
            end = max(self._frontier.size, self._held,  # (a damaged log: what its index and segment hold,
                      self._unmoved[-1][0] + 1 if self._unmoved else 0)  # past what reads whole)
            if end > self._signed_size and self._writers is not None:
                # (MongoDB: the others' leases renew, or lapse; then the decide step, under the
                # opening lock, until ``share``; SQLite: the kernel's answer at ``join``)
                alone = self._writers.settle()
            if alone and end > self._signed_size:
                # noted in the database even while the log is damaged (``_signed_size`` may then be an
                # older checkpoint's: the newest statement failed), so the mark outlives this process;
                # every signature takes off what the newest valid statement then covers
                # (``_found_range``), so records a writer signed validly are never stamped found
                if self._writers is not None:
                    self._note_found(self._signed_size, end)  # (writers' lock exclusive)
                else:  # (readers that never sign: this process's own, dropped with it)
                    self._found(self._signed_size, end)
            if self._writers is not None:
                self._writers.share()
        except BaseException:
            self._close_files()
            raise

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

    @property
    def leaves(self) -> LeafTable | Collection:
        """The records, for their readers (verification, export, proofs, the derived views, tools):
        the segment's records are moved into the table first, so a reader sees every record
        appended so far, by any process."""
        self.drain()
        return self._leaves

    @property
    def size(self) -> int:
        return self._frontier.size

    def root(self) -> bytes:
        return self._frontier.root()

    def subtree_hash(self, level: int, index: int) -> bytes:
        """The hash of perfect subtree ``(level, index)``: a leaf's own, or a node kept with the leaf
        that completed it (the subtree's last, ``node_owner``), or for a log appended before
        nodes were kept with their leaves, in ``audit_nodes``."""
        if level == 0:
            doc = self._leaves.get(seq_key(index))
            if doc is None:
                raise LookupError(f"audit tree node {level}:{index} is missing")
            return bytes.fromhex(doc["hash"])
        doc = self._leaves.get(seq_key(node_owner(level, index)))
        held = doc.get("nodes") if doc is not None else None
        if isinstance(held, list) and len(held) >= level:
            return bytes.fromhex(held[level - 1])
        doc = self.nodes.get(f"{level}:{index}")
        if doc is None:
            raise LookupError(f"audit tree node {level}:{index} is missing")
        return bytes.fromhex(doc["hash"])

    def stored_nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes of tree nodes ``(level >= 1, index)``; a node not stored is left out.

        Each node is kept in the document of the leaf whose append completed it (``nodes``: the
        hex hashes of levels 1, 2, ... that leaf completed): one document per record instead of
        one for the record and one for its node, which made every appended group write two more
        B-trees (four pages of ~13) in the audit commit. Logs appended before keep theirs in
        ``audit_nodes``, read when a leaf holds none."""
        out: dict[tuple[int, int], bytes] = {}
        owners: dict[str, list[tuple[int, int]]] = {}
        for level, index in wanted:
            owners.setdefault(seq_key(node_owner(level, index)), []).append((level, index))
        ids = list(owners)
        leaves = self.leaves  # (the segment drained first)
        for start in range(0, len(ids), 500):
            for doc in leaves.find({"_id": {"$in": ids[start:start + 500]}}):
                held = doc.get("nodes")
                if not isinstance(held, list):
                    continue
                for level, index in owners.get(doc["_id"], ()):
                    try:
                        out[(level, index)] = bytes.fromhex(held[level - 1])
                    except (IndexError, TypeError, ValueError):
                        continue
        rest = [f"{level}:{index}" for level, index in wanted if (level, index) not in out]
        for start in range(0, len(rest), 500):
            for d in self.nodes.find({"_id": {"$in": rest[start:start + 500]}}):
                try:
                    out[(int(d["level"]), int(d["index"]))] = bytes.fromhex(d["hash"])
                except (KeyError, TypeError, ValueError):
                    continue
        return out

    def start(self) -> None:
        """While records keep arriving, sign the seal every ``audit_seal_seconds``
        (``HUREN_AUDIT_SEAL_SECONDS``, 1 s; 0: no seal) and a numbered checkpoint every
        ``audit_checkpoint_seconds`` (``HUREN_AUDIT_CHECKPOINT_SECONDS``, 60 s), so the records no
        signature covers are a second's worth at most (or ``audit_checkpoint_every``); first make
        a data directory of an earlier version ready for the derived views, and sign the tail a
        stopped process left unsigned, marked as found (``recovered``).

        Why each second: a record past the latest signature can be altered with its leaf hash,
        the tree nodes and the CRCs recomputed, and nothing can tell (``huren audit verify``
        neither). A seal costs one Ed25519 signature, the root (~log2 n hashes) and one row
        replaced, in the transaction that moves the segment's records into the record files,
        which the key indexer would otherwise run in that second: ~0.25 ms a second (measured at
        200 records a second), nothing per record."""
        if self._timer is not None:
            return
        self._stop.clear()
        period = max(self.settings.audit_checkpoint_seconds, 0.01)
        seal_period = self._seal_period() or None

        def run() -> None:
            """One thread, each tick: the checkpoint when its period is up (its transaction moves
            the segment's records into the record files), then the search keys, which then find
            nothing left to move: one drain a second, not one for each."""
            failed_at = -CHECKPOINT_LOG_SECONDS
            now = time.monotonic()
            next_cp, next_keys = now + period, now + KEY_SECONDS
            next_seal = now + seal_period if seal_period else float("inf")
            while not self._stop.wait(max(0.0, min(next_cp, next_keys, next_seal) - time.monotonic())):
                now = time.monotonic()
                if self._store_closed():
                    return
                if now >= next_cp or now >= next_seal:
                    numbered = now >= next_cp
                    if numbered:
                        next_cp = now + period
                    if seal_period:
                        next_seal = now + seal_period
                    try:
                        self.checkpoint() if numbered else self.seal()
                    except Exception:  # keep the thread alive; the appends' backstop refuses if it stays so
                        if self._store_closed():
                            return
                        if now - failed_at >= CHECKPOINT_LOG_SECONDS:
                            failed_at = now
                            log.exception("audit: periodic checkpoint failed (logged once a minute while it fails)")
                if now >= next_keys:
                    next_keys = now + KEY_SECONDS
                    # a lock kept by an event loop that has stopped (its timer never fires) is let go
                    # here at the latest
                    self.let_go_segment(blocking=True)
                    try:
                        self.index_keys()
                    except Exception:  # a search catches up itself; the next round retries
                        if self._store_closed():
                            return
                        log.exception("audit: indexing the records' search keys failed")

        # before anything can search AuditEvents: every record has its keys, and no copy an
        # earlier version stored survives (not at construction: `huren audit verify` writes nothing)
        self._key_earlier_records()
        self._mark_keyed()
        if self.repository is not None:
            purge_legacy_copies(self, self.repository, VIEW_PROGRESS)
        self._sign_found_tail()
        self._timer = threading.Thread(target=run, name="audit-background", daemon=True)
        self._timer.start()

    def _store_closed(self) -> bool:
        """The store was closed under the background thread -- the Engine dropped without ``close``
        (a process ending, a test standing in for a crash): the thread stops as at a crash, the tail
        left for the next start to sign as found (``recovered``), instead of failing on the closed
        connection once a minute (seen at a suite's end: "Cannot operate on a closed database")."""
        if getattr(self.store, "closed", False):
            log.info("audit: the store was closed under the background thread; it stops")
            return True
        return False

    def close(self) -> None:
        self._stop.set()
        if self._timer is not None:  # a tick under way (a drain of a large segment, the keys) may take
            self._timer.join(timeout=CLOSE_WAIT_SECONDS)  # a while: wait it out, not sign beside it
            if self._timer.is_alive():
                log.warning("audit: the background thread is still busy after %.0f s; closing beside it",
                            CLOSE_WAIT_SECONDS)
        self._timer = None
        self.let_go_segment(blocking=True)
        if self.keys.can_sign and self.size:
            try:  # sign the tail so a clean shutdown leaves every record covered
                self.checkpoint()
            except Exception:
                log.exception("audit: final checkpoint failed")
        try:  # and every record in the table: a clean shutdown leaves the segment file empty
            self.drain()
        except Exception:
            log.exception("audit: moving the segment's records into the table failed")
        self._close_files()

    def _close_files(self) -> None:
        """The segment file and the writers' lock file: one descriptor each per open log, left
        open by ``close`` before (one ``audit.segment`` descriptor per open/close cycle)."""
        if self._segment is not None:
            self._segment.close()
        if self._writers is not None:  # no longer a live writer (a later opener may find a tail)
            self._writers.close()

    def get(self, seq: int) -> dict[str, Any] | None:
        return self.leaves.get(seq_key(seq))

    def events(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The AuditEvents records ``since``… state, in order (derived from the stored records,
        whatever their format: ``engine.audit.record``)."""
        docs = self.leaves.find({"_id": {"$gte": seq_key(since)}}, sort=[("_id", 1)], limit=limit)
        return [event_of(doc["data"]) for doc in docs]

    def inclusion_proof(self, leaf: int, size: int) -> list[bytes]:
        self._check_size(size)
        self.drain()  # proofs read the table
        return merkle.inclusion_proof(leaf, size, self.subtree_hash)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        self.drain()
        return merkle.consistency_proof(first, second, self.subtree_hash)

    def root_at(self, size: int) -> bytes:
        self._check_size(size)
        self.drain()
        return self._root_of(size)

    def _check_size(self, size: int) -> None:
        if not 0 < size <= self.size:
            raise ValueError(f"tree size {size} is outside 1..{self.size}")
