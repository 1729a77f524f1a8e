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

import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, NamedTuple

import orjson

from engine.audit import merkle
from engine.audit.canonical import canonical
from engine.audit.checkpoint import (
    SEAL,
    Checkpoint,
    CheckpointError,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from engine.audit.derived import (
    KEYS,
    DaySpans,
    day_key_docs,
    facts_keys,
    group_key_docs,
    key_docs,
    stored_keys,
)
from engine.audit.keys import AuditKeys, log_origin
from engine.audit.lease import COLLECTION as LEASES
from engine.audit.lease import Lease
from engine.audit.leaves import Leaf, LeafTable, appender, open_leaves, seq_key
from engine.audit.legacy import purge_legacy_copies
from engine.audit.record import Facts, Sealed, event_of, recorded_of
from engine.audit.record_files import FileEntry, RecordFiles
from engine.audit.segment import Segment, encode, segment_path
from engine.audit.writers import Writers, WritersLock
from engine.repository.port import Collection, DuplicateKey, Store
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

log = logging.getLogger(__name__)
_sha256 = hashlib.sha256
_tuple_new = tuple.__new__

NODES, CHECKPOINTS, META = "audit_nodes", "audit_checkpoints", "audit_meta"
VIEW_PROGRESS = "audit_view"  # in the main database: the startup purge's marker
KEYED = "keys"  # audit_meta: every record has its keys (records of earlier versions were given theirs)
DAY_KEYED = "day-keys"  # audit_meta: records appended before day keys existed were given theirs
KEY_BATCH = 1000  # records per transaction when records are given their keys
KEY_MARK = "keyed-to"  # audit_meta: records 0 .. size-1 have their search keys (index_keys)
# audit_meta: the first record and the end of a tail a process found unsigned when it opened the
# (undamaged) log with no live writer (a killed writer's): the next signature over it, by any process,
# is preceded by a checkpoint over exactly those records marked ``recovered``, which removes this in
# its own transaction (``_note_found``, ``_sign``)
FOUND = "found-from"
KEY_SECONDS = 1.0  # how often the background thread keys the records appended since
KEYS_NOTED = 200_000  # at most this many appended records' keys kept for index_keys
DAMAGE_RECHECK_SECONDS = 1.0  # a damaged log reloads this often when asked to append (a repair is seen)
DRAIN_BATCH = 2000  # segment records moved into the leaf table per transaction (appends wait ~2-4 ms)
# while the checkpoint thread runs, an append signs a checkpoint itself (on the caller's thread:
# the event loop for reads) only when none was signed for this many periods: the thread fell behind
# or cannot sign (a key that cannot sign then refuses the append, so no request is answered unaudited)
APPEND_BACKSTOP_PERIODS = 10
CLOSE_WAIT_SECONDS = 60.0  # how long close() waits for the background thread's tick to end
CHECKPOINT_LOG_SECONDS = 60.0  # a checkpoint thread that keeps failing logs its error this often


class _Busy(Exception):
    """A lock ``try_record_many`` would have had to wait for."""


class _Found(Exception):
    """A seal would have carried ``recovered``: a numbered checkpoint is signed instead."""


class AuditLogDamaged(RuntimeError):
    """What the log can read disagrees with what its index states it holds (a record file damaged
    or missing), or the segment's records do not follow the records held: no record is appended
    (the read is refused, never answered unaudited) and no checkpoint signed until the damage is
    dealt with; ``huren audit verify`` names the first unreadable record."""


def _canonical(event: dict[str, Any], resource: dict[str, Any]) -> bytes:
    """RFC 8785 form of the record: orjson directly for an event ``build_event`` vouched for
    (``BuiltEvent.jcs_safe``: the record adds only ASCII names and strings), else ``canonical``."""
    if getattr(event, "jcs_safe", False):
        try:
            return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a string orjson refuses (a lone surrogate): canonical decides
            pass
    return canonical(resource)


def _weak_prover(log: AuditLog) -> Callable[[FileEntry, Sequence[Leaf]], bool]:
    """``log._signed_file`` without a reference from its record files back to the log."""
    ref = weakref.WeakMethod(log._signed_file)

    def prove(entry: FileEntry, rows: Sequence[Leaf]) -> bool:
        method = ref()
        return method(entry, rows) if method is not None else False

    return prove


def spans(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(first, end)`` ranges of records in order, those that overlap or touch made one."""
    out: list[tuple[int, int]] = []
    for first, end in sorted(ranges):
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((first, end))
    return out


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


class AuditLog:
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
            if not alone and end > self._signed_size and self._writers is not None:
                alone = self._writers.settle()  # (MongoDB: the others' leases renew, or lapse)
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

    # ------------------------------------------------------------------ state
    def _note_found(self, first: int, end: int) -> None:
        """Record in the log's own database that records ``first..end-1`` were found unsigned, while this
        process holds the writers' lock exclusive (no live writer: they are a stopped one's). ``end``
        (the log's size then) bounds the mark: records a live peer appends after it are its own, and
        the ``recovered`` checkpoint is signed over exactly ``end`` records (``_sign``).

        Why in the database and not in this process: the finder signed them, marked, only at its
        ``start()``; a second writer opening the log meanwhile is not alone (the finder holds the
        lock shared by then), so it found nothing, and its seal signed the tail unmarked, after
        which the finder saw a valid signature over it and dropped its mark; a finder killed or
        unable to sign before its start left the mark to nobody. Now every signature (``_sign``,
        inside its transaction) reads this and says ``recovered`` when it covers the tail, and the
        checkpoint that does removes it in the same transaction: the first signature over the
        tail is marked, whichever process signs it, and no later one is. Holding the lock exclusive
        until the finder signed would close the window too, but a finder that cannot sign (a damaged
        log, no private key) would stall every other writer's start."""
        with self.store.transaction():
            held = self.meta.get(FOUND)
            if held is not None:  # an earlier finder's tail nobody signed (that finder stopped too):
                first = min(first, int(held["first"]))  # one range over both dead writers' records
                end = max(end, int(held.get("end", end)))
            self.meta.replace({"_id": FOUND, "first": first, "end": end})

    def _found_tail(self, size: int) -> tuple[int, int | None] | None:
        """The found tail (``_note_found``) a signature of ``size`` records covers: its first record
        and its end (``None``: noted by an earlier release, which kept no end)."""
        held = self.meta.get(FOUND)
        if held is None or int(held["first"]) >= size:
            return None
        return int(held["first"]), (min(int(held["end"]), size) if "end" in held else None)

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

    def _reload(self) -> None:
        """Rebuild the in-memory right edge (and checkpoint state) from the database and the
        segment file."""
        if self._segment is None:
            self._load_table()
            return
        self._segment.forget()  # the next sync returns every frame, and reloads the table first
        with self._segment.locked():
            self._sync_segment()

    def _load_table(self) -> None:
        """The right edge from the newest readable record, checked against what the index states
        the log holds (``last_seq``: the record files' index and the table's key): when a record
        file is damaged, reading stops at the damage, and a right edge built from there would number
        new records over ones already answered. Then the log is marked damaged (``_damage``) instead:
        appends and checkpoints are refused, readers and ``huren audit verify`` still work."""
        last = self._leaves.find(sort=[("_id", -1)], limit=1)
        size = last[0]["seq"] + 1 if last else 0
        held = self._leaf_rows.last_seq()
        self._held = held + 1 if held is not None else 0
        self._damage = None
        if self._held != size:
            files = self._files
            first = files.first_unreadable() if files is not None else None
            first = size if first is None else min(first, size)
            self._damage = (f"audit log damaged: its index holds records 0..{self._held - 1} but record {first} "
                            f"onward cannot be read (the newest readable is {size - 1}); no record is appended "
                            "until it is dealt with; run `huren audit verify`, then `huren audit repair --from "
                            "<a backup of the data directory>`")
            log.error("audit: %s", self._damage)
        try:
            hashes = [self.subtree_hash(lvl, idx) for lvl, idx in merkle.perfect_subtrees(0, size)]
        except LookupError as exc:  # appending onto a damaged tree would bury the damage: refuse
            raise RuntimeError(f"audit log damaged ({exc}); run `huren audit verify`") from exc
        self._frontier = merkle.Frontier(size, hashes)
        cps = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        self._last_cp_seq = cps[0]["seq"] if cps else -1
        self._last_cp_size = cps[0]["size"] if cps else 0
        self._last_cp_time = time.monotonic()
        self._signed_size = self._check_signed(size)

    def _check_signed(self, size: int) -> int:
        """How many records the newest signed statement (numbered checkpoint or seal) covers, once
        its signature and its root over the tree as stored are checked (a signature check and
        ~log2 n node reads, at each load). A stored tree that does not make the signed root (records
        and tree nodes altered and made again) or stops short of it marks the log damaged: nothing
        is signed over it and no record appended, as for a damaged file (``huren audit verify``
        names the records). So does a newest statement that cannot be read or whose signature
        fails: it was signed (or forged) over records nobody may now sign again as found; the
        newest numbered checkpoint that verifies is then still checked against the tree."""
        if not self.keys.public:
            return 0
        unreadable = self._damage is not None  # (a record file: the tree cannot be read whole)
        try:
            signed = self.latest_checkpoint()
            why_bad = None if signed is None or verify_checkpoint(signed, self.keys) else (
                f"the signature of the latest signed statement (size {signed.size}, {signed.time}) does not verify")
        except CheckpointError as exc:
            signed, why_bad = None, f"the latest signed statement cannot be read ({exc})"
        if why_bad is not None:
            self._damage = self._damage or (
                f"audit log damaged: {why_bad}; no record is appended and nothing signed until it is dealt with; "
                "run `huren audit verify`, then `huren audit repair --from <a backup of the data directory>`")
            log.error("audit: %s", self._damage)
            signed = self._newest_verifying_checkpoint()
        if signed is None:
            return 0
        why = None if unreadable else self._tree_mismatch(signed, size)
        if why is not None:
            message = (f"audit log damaged: the latest signature (size {signed.size}, {signed.time}) does not "
                       f"match the log as stored ({why}); no record is appended and nothing signed until it is "
                       "dealt with; run `huren audit verify`, then `huren audit repair --from <a backup of the "
                       "data directory>`")
            self._damage = message if self._damage is None else f"{self._damage}; {message}"
            log.error("audit: %s", message)
        return signed.size

    def _tree_mismatch(self, signed: Checkpoint, size: int) -> str | None:
        """Why the stored tree does not make ``signed``'s root (``None``: it does)."""
        if signed.size > size:
            return f"it holds {size} records"
        try:
            if self._root_of(signed.size) == signed.root:
                return None
        except LookupError as exc:
            return str(exc)
        return "the records and tree nodes stored make another root"

    def _root_of(self, size: int, records: tuple[int, Sequence[bytes]] | None = None) -> bytes:
        """The root of the tree's first ``size`` records from what is stored (~log2 n node reads);
        with ``records`` = (first, their bytes), records ``first``.. hashed from those bytes in place
        of their stored leaf hashes and of every stored node above them (a damaged file's rescan,
        ``_signed_file``: a forger recomputes the leaf hashes and nodes a file keeps with its CRCs).
        The one walk for the load's check, a peer's signature, a rescanned file and ``root_at``.
        Raises ``LookupError`` when a node it needs is unreadable."""
        if records is None:
            return merkle.range_hash(0, size, self.subtree_hash)
        first, data = records
        stop = first + len(data)
        leaves = [merkle.leaf_hash(d) for d in data]

        def subtree(level: int, index: int) -> bytes:
            lo = index << level
            hi = lo + (1 << level)
            if hi <= first or lo >= stop:  # wholly outside these records: as stored
                return self.subtree_hash(level, index)
            if level == 0:
                return leaves[lo - first]
            return merkle.node_hash(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1))

        return merkle.range_hash(0, size, subtree)

    def _newest_verifying_checkpoint(self) -> Checkpoint | None:
        """After the newest statement failed: the newest numbered checkpoint whose signature holds."""
        for doc in self.checkpoints.find(sort=[("seq", -1)]):
            try:
                cp = parse_checkpoint(doc["note"])
            except (CheckpointError, KeyError):
                continue
            if verify_checkpoint(cp, self.keys):
                return cp
        return None

    def _sync_segment(self) -> None:
        """Under the segment's lock: take in the records other processes appended to it since this
        one last looked (their leaves onto the right edge); after another process's drain, reload
        the right edge from the table first."""
        reset, rows = self._segment.sync()  # type: ignore[union-attr]
        if reset:
            self._load_table()
            self._unmoved = []
        if not rows:
            return
        frontier = self._frontier
        # records below the floor were moved by a drain that crashed before emptying the file (the
        # index holds them: checked, never assumed, so an answered record is not dropped for
        # another under its number); on a damaged log the right edge is not the index's, so the rest are
        # kept for the drain (answered records: never dropped) but not added to the tree
        floor = frontier.size if self._damage is None else self._held
        below = [row for row in rows if row[0] < floor]
        if below:  # (after a reload only: rare) held already, so held as they are here
            lo, hi = below[0][0], below[-1][0]
            held = {d["seq"]: d.get("hash") for d in self._leaves.find({"seq": {"$gte": lo, "$lte": hi}})}
            for seq, leaf, _data, _nodes in below:
                if held.get(seq) != leaf.hex():
                    raise AuditLogDamaged(
                        f"audit log damaged: the segment's record {seq} is not the record {seq} the log holds "
                        f"({'unreadable' if seq not in held else 'another'}); the segment file is kept as it "
                        "is; run `huren audit verify`")
        for row in rows:
            seq = row[0]
            if seq < floor:
                continue
            if self._damage is None:
                if seq != frontier.size:
                    raise RuntimeError(f"audit log damaged (the segment's record {seq} follows record "
                                       f"{frontier.size - 1}); run `huren audit verify`")
                frontier.push(row[1])
            self._unmoved.append(row)

    def _rolled_back(self) -> None:
        """The store's block that held an append was rolled back (MongoDB: its transaction aborted,
        or its writes undone, ``MongoStore.on_rollback``): the records are gone, so the right edge is
        reloaded from what is stored, and their noted keys forgotten; advanced past them, the next
        record would leave a hole that verification reports as deleted records."""
        with self._lock:
            self._reload()
            size = self._frontier.size
            for seq in [s for s in self._appended_keys if s >= size]:
                del self._appended_keys[seq]

    def refresh(self) -> None:
        """Catch up with records and checkpoints other processes appended."""
        with self._lock:
            self._reload()

    def held_count(self) -> int:
        """How many records the log's index states it holds (its last sequence number + 1, after
        the segment's records moved in): what verification expects to read."""
        self.drain()
        last = self._leaf_rows.last_seq()
        return last + 1 if last is not None else 0

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

    def _signed_file(self, entry: FileEntry, rows: Sequence[Leaf]) -> bool:
        """Whether a record file found damaged and now whole (``rows[i]`` is record ``entry.first +
        i``) holds the records the latest signed checkpoint states: the tree's root over its size
        recomputed from these records' own bytes (not the leaf hashes the file keeps: a forger
        recomputes those with the CRCs) and the stored nodes of the other files, against the
        signed root. Only a damaged file's rescan pays this (a few dozen node reads and one
        signature check); records past the checkpoint are bound by no signature yet (``huren audit
        verify`` cannot tell them either): they are taken as found, and the next checkpoint this
        process signs says so (``recovered``). Raises ``LookupError`` when a node it needs is unreadable."""
        cp = self.latest_checkpoint()
        first, stop = entry.first, entry.first + len(rows)
        if cp is None:
            self._found(first, stop)  # nothing signed yet: nothing to prove against (verification says the same)
            return True
        if not verify_checkpoint(cp, self.keys):
            return False
        if cp.size <= first:
            self._found(first, stop)
            return True
        if cp.size > stop and stop <= entry.last:  # (cannot be: the rows were checked whole)
            return False
        if self._root_of(cp.size, (first, [row[2] for row in rows])) != cp.root:
            return False
        self._found(cp.size, stop)
        return True

    def _found(self, first: int, stop: int) -> None:
        """Records ``first..stop-1`` of a damaged file were taken back unproven (no checkpoint covers
        them): the next checkpoint says they were signed as found. Kept apart from a span it does
        not touch: the records between were appended, not found."""
        if first < stop:
            self._unproven = spans([*self._unproven, (first, stop)])

    @property
    def _unproven_from(self) -> int | None:
        """The first record this process took as found and no checkpoint covers yet, if any."""
        return self._unproven[0][0] if self._unproven else None

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

    # ------------------------------------------------------------------ writing
    def record(self, event: dict[str, Any]) -> Appended:
        """Append one AuditEvent (without id); raises if it cannot be made durable."""
        result = self.record_many([event])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def record_many(self, events: Sequence[dict[str, Any]]) -> list[Appended | Exception]:
        """Append several AuditEvents as one group: consecutive sequence numbers, one ``write()``
        to the segment file (or, on MongoDB and when a checkpoint is due, one transaction).
        Returns, per event, its ``Appended`` or the exception that kept that one event out (it
        could not be canonicalised); the others are unaffected. A failure of the write itself
        raises and appends none of them, so a caller that waits on any of these records learns it
        was not written and the numbering has no gap."""
        with self._lock:
            return self._record_many(events, blocking=True)

    def _record_many(self, events: Sequence[dict[str, Any]], *, blocking: bool,
                     keep: bool = False) -> list[Appended | Exception]:
        """``record_many`` under the log's lock; without ``blocking`` raises ``_Busy`` rather than
        wait for the segment's or the database's lock; ``keep``: see ``try_record_many``."""
        for _attempt in range(5):
            try:
                results, frontier = self._append(events, blocking, keep)
            except DuplicateKey:
                log.info("audit: sequence %d taken by another writer; reloading", self._frontier.size)
                self._reload()
                continue
            except _Busy:
                raise
            except BaseException:
                self._reload()  # a checkpoint counter or node may have been half-applied
                raise
            self._frontier = frontier
            if (on_rollback := getattr(self.store, "on_rollback", None)) is not None:
                on_rollback(self._rolled_back)  # (MongoDB: the append may yet be undone with its block)
            self._note_keys(events, results)
            for hook in self.after_append:  # (none by default: no walk of the group for nothing)
                for appended in results:
                    if isinstance(appended, Appended):
                        hook(appended)
            return results
        raise RuntimeError("audit: could not obtain a sequence number")

    def _append(self, events: Sequence[dict[str, Any]], blocking: bool, keep: bool = False) -> tuple[
            list[Appended | Exception], merkle.Frontier]:
        """Write the group: to the segment file, in one ``write()`` under its lock, when there is
        one and no checkpoint is due; else in a transaction of the database with the checkpoint
        (the segment's records moved in first, so a checkpoint's records are in the table with
        it). Returns the results and the right edge after them (the caller adopts it)."""
        seg = self._segment
        if seg is not None:
            if not seg.acquire(blocking):
                raise _Busy
            try:
                self._sync_segment()  # another worker's records first: the numbering continues theirs
                results, rows, frontier = self._prepare(events)
                if not rows or not self._checkpoint_due(self._frontier.size, frontier.size):
                    if rows:
                        seg.append(encode(rows))
                        self._unmoved.extend(rows)
                    if keep:
                        seg.keep()
                    return results, frontier
            finally:
                seg.release()
        store_lock = getattr(self.store, "lock", None)
        if not blocking and (store_lock is None or not store_lock.acquire(blocking=False)):
            raise _Busy  # (MongoDB has no local lock: its appends always go to a worker thread)
        try:
            with self._table_transaction():
                results, rows, frontier = self._prepare(events)
                if rows:
                    # signed before anything is written: a key that cannot sign leaves the database
                    # untouched even on a backend without transactions (mongomock, standalone MongoDB)
                    cps = self._sign(frontier) if self._checkpoint_due(self._frontier.size, frontier.size) else []
                    self._leaf_rows.append(rows)
                    for cp in cps:
                        self._store_checkpoint(cp)
            if rows:
                self._signed_through(cps)
            return results, frontier
        finally:
            if not blocking:
                store_lock.release()  # type: ignore[union-attr]

    def _note_keys(self, events: Sequence[Any], results: Sequence[Appended | Exception]) -> None:
        """Keep the search keys of the compact records just committed for ``index_keys``, taken
        from their facts (``record_keys`` of what the record states, without reading it back).
        Bounded: past ``KEYS_NOTED`` records waiting (no indexer running), ``index_keys`` reads
        the rest back as it does another process's records."""
        noted = self._appended_keys
        if len(noted) >= KEYS_NOTED:
            return
        for event, appended in zip(events, results, strict=True):
            if type(appended) is Appended:
                kind = type(event)
                if kind is Sealed:  # its keys made at the request, once per requestor
                    noted[appended.seq] = (event.keys, event.recorded)
                elif kind is Facts:
                    noted[appended.seq] = (facts_keys(event), event.recorded)

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

    def _prepare(self, events: Sequence[dict[str, Any]]) -> tuple[
            list[Appended | Exception], list[Leaf], merkle.Frontier]:
        """The rows appending ``events`` writes (each leaf with the tree nodes it completes), on a
        copy of the right edge. Refused on a damaged log (``AuditLogDamaged``)."""
        self._refuse_if_damaged()
        frontier = self._frontier.copy()
        push = frontier.push
        sha = _sha256
        results: list[Appended | Exception] = []
        rows: list[Leaf] = []
        made = _tuple_new  # ``Appended(...)`` without its Python-level ``__new__`` (one per audited request)
        for event in events:
            seq = frontier.size
            kind = type(event)
            if kind is Sealed:  # a request's record, its bytes but the number made (Sealed.data)
                data = b'%s,"id":"audit-%d"%s' % (event.head, seq, event.tail)
            else:
                try:
                    if kind is Facts:  # an HTTP interaction's compact record (engine.audit.record)
                        data = event.data(seq)
                    else:  # a complete AuditEvent (format 1)
                        data = _canonical(event, {**event, "resourceType": "AuditEvent", "id": event_id(seq)})
                except Exception as exc:  # this record only; the rest of the group goes on
                    results.append(exc)
                    continue
            leaf = sha(b"\x00" + data).digest()  # merkle.leaf_hash
            rows.append((seq, leaf, data, push(leaf)))  # with the nodes it completes, level 1 up
            results.append(made(Appended, (seq, leaf, data)))
        return results, rows, frontier

    def try_record_many(self, events: Sequence[dict[str, Any]], *,
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
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._record_many(events, blocking=False, keep=keep)
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

    def record_nowait(self, event: dict[str, Any]) -> Appended | None:
        """``record`` at once when the log and the store are free, else ``None`` (see
        ``try_record_many``)."""
        results = self.try_record_many([event])
        if results is None:
            return None
        if isinstance(results[0], BaseException):
            raise results[0]
        return results[0]

    # ------------------------------------------------------------------ the segment's records into the table
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

    def _checkpoint_due(self, old_size: int, size: int) -> bool:
        """Due when the append (of one or a group of records) passed a multiple of ``every``."""
        every = self.settings.audit_checkpoint_every
        if every > 0 and size // every > old_size // every:
            return True
        period = self.settings.audit_checkpoint_seconds
        if self._timer is not None:  # the background thread signs each period: here only as a backstop
            period = APPEND_BACKSTOP_PERIODS * min(period, self._seal_period() or period)
        return time.monotonic() - self._last_cp_time >= period

    def _seal_period(self) -> float:
        return max(self.settings.audit_seal_seconds, 0.0)

    def _refuse_if_damaged(self) -> None:
        """Raise ``AuditLogDamaged`` when the log found records it holds but cannot read: at its
        load (``_load_table``) or in any read since (a record file's scan)."""
        files = self._files
        now = time.monotonic()
        if self._damage is None and (files is None or files.first_unreadable() is None):
            if files is None or now < self._notes_look:
                return  # (the usual case: one look per group)
            self._notes_look = now + DAMAGE_RECHECK_SECONDS  # another process may have found a file
            if not files.take_notes():  # damaged that this one scanned healthy: one stat a second
                return  # damaged: look again once a second (a repair), then refuse if it still is
        if now >= self._damage_recheck:  # ``huren audit repair`` may have put the records back:
            self._damage_recheck = now + DAMAGE_RECHECK_SECONDS
            if files is not None:  # each damaged file scanned again if another is in its place (even
                files.recheck()  # one whose rewrite a killed repair never counted, or not the newest)
            self._reload()  # the index, the files' scans (a repair counts its rewrite) and the right edge
        if self._damage is not None:
            raise AuditLogDamaged(self._damage)
        first = files.first_unreadable() if files is not None else None
        if first is not None:
            raise AuditLogDamaged(f"audit log damaged: record {first}, which its index holds, cannot be read "
                                  "(a record file is damaged or missing); no record is appended until it is "
                                  "dealt with; run `huren audit verify`, then `huren audit repair --from <a backup of "
                                  "the data directory>`")

    def _write_checkpoint(self, frontier: merkle.Frontier) -> list[Checkpoint]:
        self._refuse_if_damaged()  # a checkpoint of a right edge that is not the log's would sign a lie
        return [self._store_checkpoint(cp) for cp in self._sign(frontier)]

    def _sign(self, frontier: merkle.Frontier, *, seal: bool = False) -> list[Checkpoint]:
        """The next checkpoint of ``frontier`` (``seal``: the seal, which carries no number, a ``seal``
        line: numbering it as the next checkpoint would sign one number over two roots), preceded,
        when records were found rather than appended (a stopped writer's tail, ``_note_found``, or a
        damaged file's records taken back, ``_found``) and no valid signature covers them yet, by a
        checkpoint over exactly the records up to the found ones' end, marked ``recovered <first>``.

        Why a checkpoint of its own and not a ``recovered first..last`` line: ``recovered N`` has
        always meant records N..size-1, and releases that read it (or reject lines they do not know)
        keep reading it right; a checkpoint of the current size would stamp the records a live peer
        appended after the tail was found as found too. Its number is its own (the one after the
        newest), its root the stored tree's over those records (``_root_of``, ~log2 n node reads,
        only when a peer appended past the tail)."""
        seq, signed = self._last_cp_seq + 1, self._last_cp_size
        out: list[Checkpoint] = []
        mark: int | None = None  # the first found record the requested signature must mark
        for first, end in self._found_range(frontier.size):  # (in the signing transaction: one signer at a time)
            first = first if mark is None else mark
            if end >= frontier.size:  # the span reaches the log's end: the requested signature carries it
                mark = first
            elif end > signed:  # records were appended past the span: it gets a checkpoint of its own
                out.append(sign_checkpoint(self.keys, self.origin, end, self._root_of(end), seq, recovered=first))
                seq, signed, mark = seq + 1, end, None
            else:  # (a numbered checkpoint past the span that does not verify: damage; mark wide, never narrow)
                log.error("audit: records %d..%d were found unsigned but checkpoint %d (size %d) covers them "
                          "without verifying; marking from %d with the next signature", first, end - 1,
                          self._last_cp_seq, self._last_cp_size, first)
                mark = first
        out.append(sign_checkpoint(self.keys, self.origin, frontier.size, frontier.root(), seq,
                                   recovered=mark, seal=seal and not out))
        return out

    def _found_range(self, size: int) -> list[tuple[int, int]]:
        """The records a signature of ``size`` must mark found, as (first, end) spans in order, apart:
        the stopped writer's tail noted in the database (``_note_found``) and this process's own
        (``_found``), each less what a valid stored signature already covers, which vouches for them
        as appended: a mark over them would accuse a live writer. Spans that do not touch stay
        apart (the records between were appended, not found: one span over both marked them too).
        (A found-from noted over a damaged log by an earlier release is dropped here, and deleted
        in the signing transaction.) Costs one read of ``audit_meta``; the stored signature is read
        and checked only while some records are found (rare)."""
        noted = self._found_tail(size)
        if noted is None and not self._unproven:
            return []
        vouched = self._vouched_size()
        held: tuple[int, int] | None = None
        if noted is not None:  # (one an earlier release noted, with no end, goes once a signature covers
            first, end = noted  # any of it: it may have been noted over a damaged open, as above)
            if vouched >= (end if end is not None else first + 1):
                self.meta.delete(FOUND)
            else:
                held = (first, end if end is not None else size)
        self._unproven = [r for r in self._unproven if r[1] > vouched]
        found = [(max(first, vouched), min(end, size))
                 for first, end in spans([*self._unproven, *([held] if held is not None else [])])]
        return [(first, end) for first, end in found if first < end]

    def _vouched_size(self) -> int:
        """How many records the newest stored statement validly signs (its signature and its root
        over the tree as stored, at its own size: this process may know fewer); 0 when it fails."""
        try:
            newest = self.latest_checkpoint()
        except CheckpointError:
            return 0
        if newest is None or not self.keys.public or not verify_checkpoint(newest, self.keys):
            return 0
        return newest.size if self._tree_mismatch(newest, newest.size) is None else 0

    def _signed_through(self, cps: Sequence[Checkpoint]) -> None:
        """After the commit of ``cps``: the records they cover are this process's to vouch for now."""
        for cp in cps:
            self._unproven = [r for r in self._unproven if r[1] > cp.size]
            if cp.recovered is not None:
                log.warning("audit: records %d..%d were past the latest signed checkpoint when the log was opened "
                            "(the process that appended them stopped before signing them): signed now as found, "
                            "checkpoint %d marks them 'recovered'; nothing proves they are what was appended",
                            cp.recovered, cp.size - 1, cp.seq)

    def _store_checkpoint(self, cp: Checkpoint) -> Checkpoint:
        """Insert ``cp`` in the open transaction; one marked ``recovered`` over the whole found tail
        (``_note_found``) deletes its record with it: no later signature marks it again."""
        self.checkpoints.insert({"_id": seq_key(cp.seq), **cp.as_json()})
        if cp.recovered is not None:
            held = self._found_tail(cp.size)
            if held is not None and (held[1] is None or held[1] <= cp.size):
                self.meta.delete(FOUND)
        self._last_cp_seq, self._last_cp_size = cp.seq, cp.size
        self._last_cp_time = time.monotonic()
        return cp

    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign a checkpoint of the current size now (``None`` when nothing new since the last one,
        unless ``force``)."""
        with self._lock:
            for _attempt in range(5):
                if not force and self._frontier.size == self._last_cp_size and self._last_cp_seq >= 0:
                    self._last_cp_time = time.monotonic()  # all signed as of now (the append's backstop)
                    return None  # nothing new here: no transaction (the timer ticks on an idle log)
                try:
                    cps: list[Checkpoint] = []
                    with self._table_transaction(flat=False):
                        if force or self._frontier.size != self._last_cp_size or self._last_cp_seq < 0:
                            cps = self._write_checkpoint(self._frontier)
                    self._signed_through(cps)
                    if not cps:
                        self._last_cp_time = time.monotonic()
                    return cps[-1] if cps else None
                except DuplicateKey:  # another process (``--workers``) signed this number first
                    log.info("audit: checkpoint %d taken by another writer; reloading", self._last_cp_seq + 1)
                    self._reload()
                except BaseException:
                    self._reload()
                    raise
            raise RuntimeError("audit: could not obtain a checkpoint number")

    def seal(self) -> Checkpoint | None:
        """Sign the whole log as it stands in the seal (``audit_meta/seal``), replacing the last
        one: a checkpoint's signed text with a ``seal`` line in place of ``seq`` (no number: one
        numbered as the next checkpoint, as before, signed that number over two roots), not kept
        once a later one signs more. ``None`` when nothing is new since the last seal
        or checkpoint. Records this process found rather than appended get a numbered checkpoint
        instead (``recovered`` must stay on record, not be overwritten a second later).

        Why not a numbered checkpoint each second: each is kept forever (~0.45 KB, and ~90 µs of
        every later verification): 86,400 a busy day, more than the records themselves on a quiet
        log. A seal proves as much as the newest of them would (a later seal covers every record
        an earlier one did, the tree being append-only), and deleting it or putting an older one
        back is no worse than deleting the newest numbered checkpoints: the records past what is
        left signed are reported as unsigned (``huren audit verify``)."""
        if self._unproven:
            return self.checkpoint()
        with self._lock:
            size = self._frontier.size
            if size == self._last_cp_size or size == self._seal_size:
                self._last_cp_time = time.monotonic()  # all signed as of now (the append's backstop)
                return None
            try:
                with self._table_transaction(flat=False):
                    size = self._frontier.size
                    held = self.meta.get(SEAL)
                    if size == self._last_cp_size or (held is not None and int(held.get("size", 0)) >= size):
                        self._seal_size = size  # (another process sealed this much meanwhile)
                        cp = None
                    else:
                        self._refuse_if_damaged()
                        cps = self._sign(self._frontier, seal=True)
                        if len(cps) > 1 or cps[0].recovered is not None:  # (found records: a numbered
                            raise _Found  # checkpoint keeps them on record: ``checkpoint``)
                        cp = cps[0]
                        self.meta.replace({"_id": SEAL, "size": cp.size, "note": cp.text})
            except _Found:
                return self.checkpoint()
            except BaseException:
                self._reload()
                raise
            if cp is not None:
                self._seal_size = cp.size
            self._last_cp_time = time.monotonic()
            return cp

    def latest_seal(self) -> Checkpoint | None:
        """The seal as stored (its signature is the reader's to check), if any."""
        doc = self.meta.get(SEAL)
        return parse_checkpoint(doc["note"]) if doc is not None else None

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
                if now >= next_cp or now >= next_seal:
                    numbered = now >= next_cp
                    if numbered:
                        next_cp = now + period
                    if seal_period:
                        next_seal = now + seal_period
                    try:
                        self.checkpoint() if numbered else self.seal()
                    except Exception:  # keep the thread alive; the appends' backstop refuses if it stays so
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

    def _sign_found_tail(self) -> None:
        """At start: sign the records a process that stopped (``kill -9``, a power cut) appended
        after its last checkpoint, marked as found (``recovered``), and say so in the log. What this
        proves: they are unchanged from now on, bound to every later record. What it cannot: that
        they are what was appended; they lay on disk under no signature until now."""
        if not self.keys.can_sign or (not self._unproven and self._found_tail(self._frontier.size) is None):
            return  # (a tail found by another process is signed here too, if none signed it yet)
        try:
            self.checkpoint()  # (``_signed_through`` says so in the log)
        except Exception:  # the checkpoint thread and the appends' backstop try again
            log.exception("audit: signing the records found past the latest checkpoint failed")

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

    # ------------------------------------------------------------------ search keys
    def index_keys(self) -> None:
        """Give the records appended since the last call their search keys (``audit_keys``).

        Keys are not written by the append: they are derived from the records, so writing them in
        each group's commit (four of its ~10 pages: the keys' table and three places in its index)
        made every audited read pay for an index only searches use. A background thread calls this
        every ``KEY_SECONDS``, and every search of the views calls it first, so a view is found
        the moment its record commits. The records keyed so far are ``audit_meta/keyed-to``,
        advanced in the same transaction as the keys (a crash leaves both or neither), and the
        transaction holds the audit file's write lock, so two processes never key the same
        records. ``KEY_BATCH`` records per transaction keep appends waiting ~1-2 ms at most.

        The keys of the compact records this process appended were noted at the append, from the
        facts in hand (``_appended_keys``): only records another process appended (``--workers``)
        or an earlier run left are read back and parsed (reading and parsing every record again
        cost ~11 µs a record, a quarter of an audited read's audit).
        """
        self.drain()
        rows = self._leaf_rows
        while True:
            last = rows.last_seq()
            mark = self.meta.get(KEY_MARK)
            done = int(mark["size"]) if mark is not None else 0
            if last is None or last < done:
                self._forget_keyed(done)
                return
            with self.store.transaction():
                mark = self.meta.get(KEY_MARK)  # another process may have keyed them meanwhile
                done = int(mark["size"]) if mark is not None else 0
                last = rows.last_seq()
                if last is None or last < done:
                    return
                end = min(last + 1, done + KEY_BATCH)
                noted = self._forget_keyed(done)
                known = [noted.get(seq) for seq in range(done, end)]
                read = {} if all(known) else dict(rows.records(done, end - done))
                grouped: dict[str, list[int]] = {}
                dated = DaySpans()
                for seq, keyed in enumerate(known, done):
                    if keyed is not None:
                        keys, recorded = keyed
                    elif seq in read:
                        keys, recorded = stored_keys(read[seq])
                    else:  # a record missing from the log (verification names it): nothing to key
                        continue
                    for key in keys:
                        grouped.setdefault(key, []).append(seq)
                    dated.add(seq, recorded)
                for key_doc in group_key_docs(grouped) + dated.docs():
                    self.key_index.replace(key_doc)  # a rerun after a crash on MongoDB writes the same
                self.meta.replace({"_id": KEY_MARK, "size": end})
            for seq in range(done, end):
                noted.pop(seq, None)
            if end - done < KEY_BATCH:
                return

    def _forget_keyed(self, done: int) -> dict[int, tuple[Sequence[str], str | None]]:
        """Let go of the notes of records keyed already (by another process: ``--workers``)."""
        noted = self._appended_keys  # the event loop's thread adds to it meanwhile:
        if noted and min(noted) < done:  # (min, list: single C calls, no iteration the GIL splits)
            for seq in [s for s in list(noted) if s < done]:
                noted.pop(seq, None)
        return noted

    def _mark_keyed(self) -> None:
        """At start: the records appended so far have their keys (earlier versions wrote them at
        append, and ``_key_earlier_records`` gave the oldest theirs), so ``index_keys`` starts after
        them. Set once, by the first process of this version to start, before it appends."""
        if self.meta.get(KEY_MARK) is not None:
            return
        with self.store.transaction():
            last = self._leaves.find(sort=[("_id", -1)], limit=1)
            with suppress(DuplicateKey):
                self.meta.insert({"_id": KEY_MARK, "size": int(last[0]["seq"]) + 1 if last else 0})

    # ------------------------------------------------------------------ keys of earlier records
    def _key_earlier_records(self) -> None:
        """Give the records an earlier version appended (without keys) their ``audit_keys``, once:
        the derived views find a patient's records by them. Upserts, so several workers starting
        at once do no harm; the marker says it is done."""
        keyed, day_keyed = self.meta.get(KEYED) is not None, self.meta.get(DAY_KEYED) is not None
        if keyed and day_keyed:
            return
        done = 0
        while True:
            with self.store.transaction():
                docs = self._leaves.find({"_id": {"$gte": seq_key(done)}}, sort=[("_id", 1)], limit=KEY_BATCH)
                for doc in docs:
                    seq, key_of = int(doc["seq"]), doc["_id"]
                    for key in [] if keyed else key_docs(key_of, event_of(doc["data"])):
                        self.key_index.replace(key)
                    # one day key per record; one a running worker wrote for its group is left as it is
                    for key in [] if day_keyed else day_key_docs([(seq, key_of, recorded_of(doc["data"]))]):
                        if self.key_index.get(key["_id"]) is None:
                            self.key_index.replace(key)
                if len(docs) < KEY_BATCH:
                    self.meta.replace({"_id": KEYED, "done": True})
                    self.meta.replace({"_id": DAY_KEYED, "done": True})
                    return
            done = docs[-1]["seq"] + 1

    # ------------------------------------------------------------------ reading
    def get(self, seq: int) -> dict[str, Any] | None:
        return self.leaves.get(seq_key(seq))

    def events(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The AuditEvents records ``since``… state, in order (derived from the stored records,
        whatever their format: ``engine.audit.record``)."""
        docs = self.leaves.find({"_id": {"$gte": seq_key(since)}}, sort=[("_id", 1)], limit=limit)
        return [event_of(doc["data"]) for doc in docs]

    def list_checkpoints(self, *, since_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        docs = self.checkpoints.find({"seq": {"$gte": since_seq}}, sort=[("seq", 1)], limit=limit)
        return [parse_checkpoint(d["note"]) for d in docs]

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest signed statement of the log: the latest numbered checkpoint, or the seal
        when it signs more records (``seal``). Its signature is the reader's to check."""
        docs = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        cp = parse_checkpoint(docs[0]["note"]) if docs else None
        seal = self.latest_seal()
        return seal if seal is not None and (cp is None or seal.size > cp.size) else cp

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
