"""FHIR storage on SQLite: current versions, superseded versions, and narrow index tables.

Tables (storage layout 9, ``PRAGMA user_version``; created at start, idempotently):

* ``fhir_resource(rid, type, id, version, updated, deleted, body, sortkeys, hkeys, ranges, idh, writer, tu)`` —
  the current version of each resource, ``body`` the exact JSON bytes; ``sortkeys`` the first
  value of each parameter (JSON) for ``_sort`` and ``:missing``; ``hkeys`` the ``(h, q)`` of the
  resource's ``ix_hash`` rows (packed int64 pairs and a marker byte) and ``ranges`` its date,
  string and quantity rows (JSON), so that a new version deletes exactly the rows it no longer
  has and inserts only those it adds, by primary key, without a second B-tree keyed by ``rid``.
* ``fhir_history(type, id, version, ...)`` — the superseded versions only: a first version is
  written once (vread and ``_history`` read the current row for the current version), and the
  current row is copied here when a later version replaces it.
* ``ix_hash(h, rid, q)`` — equality indexes as one row per indexed value in one B-tree (``WITHOUT
  ROWID`` primary key ``(h, rid, q)``), hashed the way HAPI FHIR's JPA server hashes its token
  rows (``HASH_VALUE``, ``HASH_SYS_AND_VALUE``): ``h`` is a 64-bit hash of (type, parameter,
  value) and ``q`` one of the value's qualifier — a token's system, a reference's target type —
  so ``code=718-7`` is one range scan on ``h``, ``code=http://loinc.org|718-7`` the same range
  narrowed by ``q``, and a correlated check one primary-key probe. One row per token where the
  earlier layout wrote three (``system|code``, ``*|code``, ``system|*``): a ``system|`` search
  (any code of a system) is answered only for the token parameters the deployment's list
  enables it for, which get one more row per coded value (``q`` 0). References (a bare id is
  any target type) and URIs are rows of the same table. Patient compartment membership has no
  rows of its own: it is a reference row of one of the type's compartment parameters to
  ``Patient/<id>`` (``subject``, ``performer``, ...), or the Patient itself. Layout 6: the rows of
  a ``BY_TARGET`` parameter (a Provenance's ``target``) naming a resource already stored, or
  written in the same transaction, are ``(base + the target's rid, rid, mark)`` instead of
  hashed: appended, where hashed they landed on a random page each (``target_key``; searches
  read both forms, ``_by_target``). A store of layout 5 (all hashed) is read as it is. Layout 7:
  a DiagnosticReport's ``result`` rows too (``BY_TARGET``); a store of layout 6 (its report rows
  hashed) is read as it is, and a huren of layout 6 refuses a store of layout 7 (it would not
  find the reports by their keyed rows). Layout 8: the ``writer`` column of ``fhir_resource`` and
  ``fhir_history`` (``StoredResource.writer``), named by every statement that writes a version; a
  store of layout 5 to 7 gets the column in place, and a huren of layout 7 refuses a store of
  layout 8 (its UPDATE does not name the column, so a client's version would keep the feed's mark).
  Layout 9: ``tu``, one integer -- the type's code (19 bits of a hash) above the version's
  ``updated`` in milliseconds (``sqlite_rows.updated_key``) -- indexed (``fhir_resource_tu``) in
  place of the text index ``(type, updated)``: a type scan is a range of it, ``_lastUpdated`` and
  ``_sort=_lastUpdated`` within a type a range and its order; a store of layout 5 to 8 gets the
  column, its values and the index in one transaction when it opens (``_add_tu``), and a huren of
  layout 8 refuses a store of layout 9 (its writes would leave ``tu`` empty: rows no type scan finds).
* ``ix_date``, ``ix_string``, ``ix_quantity`` — the range-searched kinds, one B-tree each keyed
  for lookup, ``(hp, value..., rid)`` (``hp`` = hash of type and parameter): a row is one entry
  (layout 4 clustered them on ``rid`` with a lookup index beside, two or three entries a row).
  ``ix_date`` keeps a second index on ``(hp, hi)``, because a date prefix bounds either end of
  the stored range (``le`` the start, ``ge`` the end: ``query.date_bounds``) and each must be a
  range scan, not an OR over both. A correlated check of a range clause reads the resource
  row's own ``ranges`` (``json_each``, no probe), and deletes go by the rows ``ranges`` names.

``_lastUpdated`` is answered from ``fhir_resource.tu`` within a type (``updated`` across types),
not from index rows. 64-bit hashes of distinct keys collide with probability ~n²/2⁶⁵: negligible at
the sizes one node holds (HAPI FHIR relies on the same).

Where the parts are: this module holds the layout (schema, migrations, the search parameter
list the index follows) and the reads and writes of versions; ``sqlite_rows`` the rows as keys
(the hashes, ``RowHasher``, ``hkeys`` packing, the recorded range rows), which the writes, the
searches and the migration share; ``sqlite_search`` the queries (``SqliteSearch``, this
backend's base).

A data directory written by an earlier layout (1: wide ``ix_*`` rows, every version in
``fhir_history``; 2: three hash rows per token; 3 and 4: range rows clustered on ``rid``, no
``ranges``; 3 also ``hkeys`` of ``h`` alone) is converted when the repository binds to the
store: the index is rebuilt from the stored bodies and the history copies of current versions
are dropped, in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from engine import fhirjson
from engine.repository.port import StoredResource
from engine.repository.sqlite_rows import (
    _COLS,
    _RANGE_COLUMNS,
    _RANGE_TABLES,
    BY_TARGET,
    PAIRS,
    UNINDEXED,
    LayoutError,
    RowHasher,
    TargetRids,
    _flat,
    _pack,
    _packer,
    _pairs,
    _ref_key,
    _stored_ranges,
    _unpack,
    hash_keys,
    id_hash,
    updated_key,
)
from engine.repository.sqlite_search import SqliteSearch

if TYPE_CHECKING:
    from engine.repository.indexing import Indexer, IndexRows
    from engine.repository.searchparams import SearchParams
    from engine.repository.sqlite_store import SqliteStore

log = logging.getLogger("huren.repository")

LAYOUT = 9  # PRAGMA user_version of the layout below
# the longest a process opening the store waits for another's layout upgrade (``_upgrade``): ~3 us of CPU a
# row plus the index build, a few million rows under load some minutes; one that waits longer gives up loudly
UPGRADE_WAIT = 1800
REBUILT_BEFORE = 5  # layouts before this one have their index rebuilt when the repository binds

SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_resource (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, hkeys BLOB, ranges TEXT,
    idh INTEGER NOT NULL, writer TEXT, tu INTEGER);
CREATE INDEX IF NOT EXISTS fhir_resource_key ON fhir_resource (idh);
CREATE TABLE IF NOT EXISTS fhir_history (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL, body BLOB, writer TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS fhir_history_version ON fhir_history (type, id, version);
CREATE TABLE IF NOT EXISTS ix_hash (h INTEGER NOT NULL, rid INTEGER NOT NULL, q INTEGER NOT NULL,
    PRIMARY KEY (h, rid, q)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ix_date (hp INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (hp, lo, hi, rid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_date_end ON ix_date (hp, hi);
CREATE TABLE IF NOT EXISTS ix_string (hp INTEGER NOT NULL, norm TEXT NOT NULL, raw TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (hp, norm, raw, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ix_quantity (hp INTEGER NOT NULL, value REAL NOT NULL, system TEXT NOT NULL,
    code TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (hp, value, system, code, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fhir_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# An older release checks the layout only when it opens the store: one still running beside this
# one reads the rows this one writes the new way as absent (a report's ``result`` keyed by rid,
# layout 7) and writes versions without their writer (layout 8: its UPDATE leaves the row's previous
# mark), so every process of it must be stopped first (README, "Storage layout"; storefix28).
_MOVED = ("%s: FHIR storage layout %d moved to layout %d; every process of an older huren (layout %d) "
          "must be stopped before this one opens the store: one still running misses what this one writes")
INDEXED_BY = "indexed-by"  # fhir_meta key: the signature of the search parameter list the index follows

# the index tables of layouts 1 and 2, dropped by the migration (their rows are rebuilt)
_LEGACY = ("DROP INDEX IF EXISTS fhir_resource_type", "DROP TABLE IF EXISTS ix_token", "DROP TABLE IF EXISTS ix_ref",
           "DROP TABLE IF EXISTS ix_hash",
           "DROP TABLE IF EXISTS ix_date", "DROP TABLE IF EXISTS ix_string", "DROP TABLE IF EXISTS ix_quantity",
           "DROP TABLE IF EXISTS ix_uri", "DROP TABLE IF EXISTS ix_comp")
_HIST = "NULL, type, id, version, updated, deleted, body, writer"


def _sort_keys(sort: Mapping[str, Any]) -> str:
    """``fhir_resource.sortkeys``: the first value of each parameter as JSON text. The indexer's
    values are plain ``str`` and ``float`` (``Indexer``'s methods and the plans: token codes,
    references, normalised strings, URIs; dates and quantities as ``float``), which orjson writes
    as ``fhirjson.dumps`` does, so it is called directly (a Python call and a ``try`` fewer a
    resource); anything else (never seen: a value of another type) goes through ``fhirjson``."""
    try:
        return orjson.dumps(sort).decode()
    except TypeError:
        return fhirjson.dumps(sort).decode()


# Rows a multi-row ``INSERT`` statement of ``insert_many`` takes, largest first: a put's rows go in
# statements of these sizes, the rest (fewer than the smallest but one) one a row
_ROWS_AT_ONCE = (64, 16, 4)
_INSERTS: dict[tuple[str, int, int], str] = {}  # (head, columns, rows) -> its statement


def _statement(head: str, width: int, size: int) -> str:
    """``head VALUES (?, ...), ...``: ``size`` rows of ``width`` values (made once a process)."""
    sql = _INSERTS.get((head, width, size))
    if sql is None:
        one = "(" + ", ".join("?" * width) + ")"
        sql = _INSERTS[(head, width, size)] = f"{head} VALUES {', '.join([one] * size)}"
    return sql


def insert_many(conn: Any, head: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``head VALUES (?, ...), (?, ...) ...`` for ``rows`` (each of the same width, the order
    kept): ``insert_flat`` of their values one after the other.

    Why not one ``executemany`` of single rows: the sqlite3 module steps a statement once per row,
    and each step releases and retakes the GIL and SQLite's connection mutex and resets the
    statement; callgrind counts ~2 k instructions a row of that around SQLite's own ~6 k of B-tree
    work (a 12-OBX message writes ~180 index and resource rows in one put). A statement of 64 rows
    pays it once. The rows, their order and the conflict rule are the statement's (``INSERT OR
    IGNORE`` ignores a duplicate row of a multi-row statement as it does one of its own), so what
    is stored is the same; an error aborts the statement and the caller's transaction as before."""
    insert_flat(conn, head, len(rows[0]), list(_flat(rows)))


def insert_flat(conn: Any, head: str, width: int, values: list[Any]) -> None:
    """``insert_many`` of rows given as one flat list (``width`` values a row, row after row): as
    few statements of ``_ROWS_AT_ONCE`` rows as fit, each run by one ``executemany`` over the
    slices of its size, and one ``executemany`` of single rows for the rest.

    Why flat: the put's first versions write their rows here as they make them (``put_many``), so
    no tuple is made per row and no pass flattens them again; a statement's parameters are then a
    slice of the list (callgrind, perf39: ``chain``'s flattening alone was ~0.1 M instructions of a
    12-OBX message's put; with the blobs bound as ``bytearray``, the message 13.90 -> 13.79 M)."""
    n, left = divmod(len(values), width)
    if left:  # (a short row would drop the tail and shift every later row's columns: rv39h LOW)
        raise ValueError(f"insert_flat: {len(values)} values are not rows of {width}")
    start = 0
    for size in _ROWS_AT_ONCE:
        whole = (n - start) // size * size
        if whole:
            step = size * width
            conn.executemany(_statement(head, width, size),
                             [values[at : at + step] for at in range(start * width, (start + whole) * width, step)])
            start += whole
    if start < n:
        conn.executemany(_statement(head, width, 1),
                         [values[at : at + width] for at in range(start * width, n * width, width)])


# Fewer keys than this are read by a ``VALUES`` list of their own count; more by one JSON array
# (``keyed_rows``)
KEYS_LISTED = 16


def keyed_rows(run: Callable[[str, Sequence[Any]], Iterable[Any]], columns: str,
               keys: Sequence[tuple[str, str]], type_at: int) -> Iterator[Any]:
    """The current rows of ``keys`` (each a ``(type, id)``; an absent one finds none), read by
    ``run(sql, params)`` as ``SELECT columns`` over ``fhir_resource r`` -- ``columns`` name the
    row's ``r.type`` at ``type_at`` and its ``r.id`` next -- for the reads by key, ``current_many``
    and ``_stored_rids``.

    Fewer than ``KEYS_LISTED`` keys are a ``VALUES`` table of as many ``(idh, type, id)`` rows
    joined to the ``idh`` index, so ``type`` and ``id`` are checked in the probe: one statement
    text per count, fifteen in all, each compiled once a connection (the sqlite3 module keeps 128
    by their text) -- what a FHIR write's checks, an ``_include`` and a lone message read.
    More keys are one statement for any count: their ``idh`` hashes as one JSON array joined
    through ``json_each(?)``, and a row whose ``(type, id)`` is not among the keys (a 64-bit
    collision with another stored resource) is dropped here, never answered for a key.

    Why: a statement of as many ``VALUES`` rows as keys, for every count, made an ingest batch
    whose key count had not come lately (batches are as long as the queue, ~19 keys a message)
    compile one anew, ~7.7 k instructions a key under callgrind (perf40); slices of five fixed sizes
    (perf40's cut) made small counts several statements, 3 keys 71 -> 131 k instructions (rv40j
    LOW 1). Callgrind, instructions a read of 600 stored Patients, compiled either way, one
    statement of as many rows / five sizes / this (fortieth round, pfix40): 3 keys 71 / 131 / 76 k,
    10 keys 172 / 260 / 177 k, 19 keys 313 / 401 / 322 k, 50 keys 782 / 924 / 773 k, 570 keys
    8.95 / 9.20 / 8.76 M. JSON below 16 keys costs ~13-18 k a read more than the list (parsing the
    array, a table-valued function's cursor); a ``VALUES`` list above it more than the JSON, and
    its compiling on a miss."""
    if len(keys) < KEYS_LISTED:
        return iter(run(f"SELECT {columns} FROM (VALUES {','.join(['(?, ?, ?)'] * len(keys))}) k "
                        "CROSS JOIN fhir_resource r ON r.idh = k.column1 AND r.type = k.column2 AND r.id = k.column3",
                        [v for rtype, id_ in keys for v in (id_hash(rtype, id_), rtype, id_)]))
    wanted = set(keys)
    rows = run(f"SELECT {columns} FROM json_each(?) k CROSS JOIN fhir_resource r ON r.idh = k.value",
               [orjson.dumps([id_hash(rtype, id_) for rtype, id_ in wanted]).decode()])
    return (row for row in rows if (row[type_at], row[type_at + 1]) in wanted)


_INSERT_RESOURCE = ("INSERT INTO fhir_resource (rid, type, id, version, updated, deleted, body, sortkeys, hkeys, "
                    "ranges, idh, writer, tu)")
_INSERT_OR_IGNORE = {table: f"INSERT OR IGNORE INTO {table}" for table in ("ix_hash", *_RANGE_TABLES)}
_WIDTH = {"ix_hash": 3, **{table: len(columns) for table, columns in _RANGE_COLUMNS.items()}}


def _add_writer(conn: Any) -> None:
    """The ``writer`` column (``StoredResource.writer``, writer30) added to a store of an earlier
    layout (5 to 7, or 7 as written before writer30): a nullable column, added in place (no row
    rewritten); its rows read None, "not known". It comes with layout 8 (writer31): a huren of
    layout 7 opened a store with the column as its own, and its UPDATE of a current row, which does
    not name the column, left the previous version's mark on the new version -- a client's version
    read as the feed's (rvwriter30). Marks a writer30 huren wrote at layout 7 are kept: the upgrade
    cannot tell the rows an older release updated since, and only a release run against the rule
    that all stop before an upgrade made any."""
    for table in ("fhir_resource", "fhir_history"):
        if not any(row[1] == "writer" for row in conn.execute(f"PRAGMA table_info({table})")):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN writer TEXT")


def _add_tu(conn: Any) -> None:
    """Layout 9's ``tu`` column and its index (``sqlite_rows.updated_key``) in place of layout 8's
    ``(type, updated)`` index, inside the caller's transaction: the column added (nullable, no row
    rewritten by the ``ALTER``), every row without it given its key from its own ``type`` and
    ``updated``, the old index dropped, the new one built. Idempotent -- a second process
    opening the same store after the first did it finds nothing left to do -- and run for a new
    store too (its index made here). Why a transaction: a crash between the column and its
    values must not leave rows a type scan of ``tu`` would not find."""
    if not any(row[1] == "tu" for row in conn.execute("PRAGMA table_info(fhir_resource)")):
        conn.execute("ALTER TABLE fhir_resource ADD COLUMN tu INTEGER")
    conn.create_function("huren_tu", 2, updated_key, deterministic=True)
    conn.execute("UPDATE fhir_resource SET tu = huren_tu(type, updated) WHERE tu IS NULL")
    conn.execute("DROP INDEX IF EXISTS fhir_resource_updated")
    conn.execute("CREATE INDEX IF NOT EXISTS fhir_resource_tu ON fhir_resource (tu)")


class SqliteFhirBackend(SqliteSearch):
    """The layout, its migrations, the reads and writes of versions (the queries: ``SqliteSearch``)."""

    unindexed = UNINDEXED

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._params: SearchParams | None = None
        self._hashers: dict[str, RowHasher] = {}
        # (type, id) -> rid of the resources this writer put in the store's current transaction
        # (``store.generation``): a Provenance is put after its targets, in the same transaction
        self._given: dict[tuple[str, str], int] = {}
        self._given_in = -1
        self._next_rid, self._next_rid_in = 0, -1  # ``_first_rid``: counted on within one transaction
        self._compiled = threading.local()
        with store.lock:
            conn = store.conn
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            old = conn.execute("SELECT 1 FROM sqlite_master WHERE name IN ('ix_token', 'ix_hash')").fetchone() is not None
            if version > LAYOUT:
                raise LayoutError(f"{store.path}: FHIR storage layout {version} was written by a newer huren "
                                  f"(this one reads layout {LAYOUT}); refusing to open it")
            self.legacy = version < REBUILT_BEFORE and old
            if not self.legacy:
                conn.executescript(SCHEMA)
                _add_writer(conn)
        if not self.legacy and version != LAYOUT:  # a new store, or one of layout 5 to 8 (their rows of a
            # by-target parameter hashed: read as they are; the writer column added above; tu below)
            self._upgrade()
        if not self.legacy:
            self._repair_tu()

    def _upgrade(self) -> None:
        """Layout 9 (``_add_tu``) given to a new store or one of layout 5 to 8, in one transaction.
        Another process (a second ``--workers`` process, the audit drain) may be upgrading the same
        file: its transaction holds the write lock longer than the 10 s busy timeout on a store of a
        few million rows, so "database is locked" is waited out up to ``UPGRADE_WAIT`` (logged once)
        -- a process must not die of that at start (``sqlite_store._pragma_when_free``, rv41h MED 1).
        ``user_version`` is read again inside the transaction: what another process finished is
        not done (nor logged) twice."""
        store = self.store
        deadline = time.monotonic() + UPGRADE_WAIT
        waited = False
        while True:
            try:
                with store.transaction(), store.lock:
                    conn = store.conn
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version > LAYOUT:
                        raise LayoutError(f"{store.path}: FHIR storage layout {version} was written by a newer huren "
                                          f"(this one reads layout {LAYOUT}); refusing to open it")
                    if version == LAYOUT:  # (another process did it meanwhile)
                        return
                    if version:
                        log.warning("%s: giving every resource row of the FHIR store its layout-9 key (tu) and index "
                                    "(one transaction; measured ~3 us of CPU a row, 100,000 rows 0.3 s: a large store "
                                    "takes a while)", store.path)
                    _add_tu(conn)
                    conn.execute(f"PRAGMA user_version = {LAYOUT}")
                break
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
                if not waited:
                    log.warning("%s: another process holds the store's write lock (upgrading it?); waiting up to "
                                "%d s before the FHIR store's layout is checked again", store.path, UPGRADE_WAIT)
                    waited = True
        if version:  # not a new store: an older release's process still on it goes wrong
            log.warning(_MOVED, store.path, version, LAYOUT, version)

    def _repair_tu(self) -> None:
        """Give their ``tu`` to rows a layout-8 process still running after the upgrade wrote (its
        INSERT names no ``tu``, so the column stays NULL and the row is out of every type scan, count,
        ``_lastUpdated`` and ``_sort`` -- found by id only). Run at every open, after the upgrade: a
        rolling restart of workers is how the rule "stop every older process first" gets broken, and
        the loss would be silent and permanent. When no row lacks it (the rule kept) this is one probe
        of the ``tu`` index with no write lock taken; a repair is logged, for it means an older
        process was still writing."""
        store = self.store
        with store.lock:
            if store.conn.execute("SELECT 1 FROM fhir_resource WHERE tu IS NULL LIMIT 1").fetchone() is None:
                return
        with store.transaction(), store.lock:
            conn = store.conn
            conn.create_function("huren_tu", 2, updated_key, deterministic=True)
            mended = conn.execute("UPDATE fhir_resource SET tu = huren_tu(type, updated) WHERE tu IS NULL").rowcount
        if mended:
            log.warning("%s: %d resource rows had no layout-9 key (tu) -- written by an older huren (layout 8) "
                        "process still running after the upgrade; keys given (stop every older process)",
                        store.path, mended)

    # -- binding to the repository (search parameters; migration of an older layout) ----------
    def bind(self, params: SearchParams, indexer: Indexer) -> None:
        """Called by the repository with the indexer that rebuilds the index of a data directory
        written by an earlier layout, and the parameters whose narrowed references it keeps once."""
        self._params = params
        self._hashers.clear()  # they hold the narrowed references of the parameters bound before
        self._compiled = threading.local()  # (a query compiled under the parameters bound before)
        if self.legacy:
            self._migrate(indexer)
        else:
            self._follow(params, indexer)

    def _follow(self, params: SearchParams, indexer: Indexer) -> None:
        """Rebuild the index when the store was indexed under another search parameter list
        (``SearchParams.signature``): a parameter enabled since must find what was stored before,
        and one left out since must stop costing rows. A store without a recorded signature (a
        new one, or one written before signatures were kept, whose list was the one it is opened
        with or the shipped one, a superset of today's) is taken as following this list."""
        store = self.store
        with store.lock:
            found = store.conn.execute("SELECT value FROM fhir_meta WHERE key = ?", (INDEXED_BY,)).fetchone()
        if found is not None and found[0] == params.signature:
            return
        with store.transaction(), store.lock:
            conn = store.conn
            found = conn.execute("SELECT value FROM fhir_meta WHERE key = ?", (INDEXED_BY,)).fetchone()
            if found is not None and found[0] != params.signature:  # (another process may have done it)
                log.warning("%s: the search parameter list changed; rebuilding the FHIR search index from the "
                            "stored resources (one transaction, a large store takes a while)", store.path)
                conn.execute("DELETE FROM ix_hash")
                for table in _RANGE_TABLES:
                    conn.execute(f"DELETE FROM {table}")  # noqa: S608 - our table names
                done = self._reindex(indexer)
                log.warning("%s: FHIR search index rebuilt for %d resources", store.path, done)
            conn.execute("INSERT OR REPLACE INTO fhir_meta (key, value) VALUES (?, ?)", (INDEXED_BY, params.signature))

    def _reindex(self, indexer: Indexer) -> int:
        """Index rows, sort keys and row keys of every current resource, from its stored body (the
        index tables empty; inside the caller's transaction)."""
        conn = self.store.conn
        last = done = 0
        while True:
            batch = conn.execute("SELECT rid, type, body FROM fhir_resource WHERE rid > ? AND deleted = 0 "
                                 "ORDER BY rid LIMIT 500", (last,)).fetchall()
            if not batch:
                return done
            last = batch[-1][0]
            updates: list[tuple[Any, ...]] = []
            tables = self._empty_tables()
            indexed = [(rid, rtype, indexer.rows(fhirjson.loads(body))) for rid, rtype, body in batch]
            rids = self._stored_rids([(rt, target) for _rid, rtype, rows in indexed if rtype in BY_TARGET
                                      for p, rt, target in rows.refs if rt and p in BY_TARGET[rtype]])
            for rid, rtype, rows in indexed:
                keys = hash_keys(rtype, rows, self._narrowed(rtype), rids)
                tables["ix_hash"] += [(h, rid, q) for h, q in keys]
                ranges = self._collect(tables, rid, rtype, rows)
                updates.append((_sort_keys(rows.sort), _pack(keys), ranges, rid))
            conn.executemany("UPDATE fhir_resource SET sortkeys = ?, hkeys = ?, ranges = ? WHERE rid = ?", updates)
            self._insert_rows(tables)
            done += len(batch)

    def _migrate(self, indexer: Indexer) -> None:
        store = self.store
        log.warning("%s: migrating the FHIR storage to layout %d (index rebuilt from the stored resources; "
                    "one transaction, a large store takes a while)", store.path, LAYOUT)
        with store.transaction(), store.lock:
            conn = store.conn
            if conn.execute("PRAGMA user_version").fetchone()[0] == LAYOUT:
                self.legacy = False  # another process (a second worker) migrated it meanwhile
                return
            conn.create_function("huren_id_hash", 2, id_hash, deterministic=True)
            # the resource rows are copied into the table of this layout (a UNIQUE (type, id) cannot
            # be dropped from a table in place); their sort keys, row keys and ranges are rebuilt
            conn.execute("ALTER TABLE fhir_resource RENAME TO fhir_resource_before")
            conn.execute("DROP INDEX IF EXISTS fhir_resource_updated")
            for sql in _LEGACY:
                conn.execute(sql)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            _add_writer(conn)
            conn.execute("INSERT INTO fhir_resource (rid, type, id, version, updated, deleted, body, idh) "
                         "SELECT rid, type, id, version, updated, deleted, body, huren_id_hash(type, id) "
                         "FROM fhir_resource_before")
            conn.execute("DROP TABLE fhir_resource_before")
            _add_tu(conn)
            # history keeps the superseded versions only: the current one is the fhir_resource row
            conn.execute("DELETE FROM fhir_history WHERE EXISTS (SELECT 1 FROM fhir_resource r WHERE "
                         "r.idh = huren_id_hash(fhir_history.type, fhir_history.id) AND r.type = fhir_history.type "
                         "AND r.id = fhir_history.id AND r.version = fhir_history.version)")
            self._reindex(indexer)
            conn.execute("INSERT OR REPLACE INTO fhir_meta (key, value) VALUES (?, ?)",
                         (INDEXED_BY, self._search_params().signature))
            conn.execute(f"PRAGMA user_version = {LAYOUT}")
        self.legacy = False
        log.warning("%s: FHIR storage migrated to layout %d", store.path, LAYOUT)

    @staticmethod
    def claim_condition(rtype: str, condition: str, rid: str, again: Any) -> None:
        """Nothing to claim (``FhirBackend.claim_condition``): a conditional create searches and
        inserts in one transaction begun ``IMMEDIATE``, which holds the file's one write lock, so a
        second create's search waits for the first one's insert."""
        return None

    # -- reads ----------------------------------------------------------------------------------

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        rows = self.store.query(f"SELECT {_COLS} FROM fhir_resource r WHERE r.idh = ? AND r.type = ? AND r.id = ?",
                                (id_hash(rtype, rid), rtype, rid))
        return self._rec(rows[0]) if rows else None

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        """One statement for the keys of every type (a message's resources are of some seven
        types: one ``IN`` list per type was seven statements): the keys joined to the ``idh``
        index, one probe each (``keyed_rows``)."""
        out: dict[tuple[str, str], StoredResource] = {}
        if keys:
            for row in keyed_rows(self.store.query, _COLS, list(dict.fromkeys(keys)), 1):
                rec = self._rec(row)
                out[(rec.type, rec.id)] = rec
        return out

    def version(self, rtype: str, rid: str, version: int) -> StoredResource | None:
        rows = self.store.query(
            f"SELECT {_HIST} FROM fhir_resource WHERE idh = ? AND type = ? AND id = ? AND version = ? UNION ALL "
            f"SELECT {_HIST} FROM fhir_history WHERE type = ? AND id = ? AND version = ?",
            (id_hash(rtype, rid), rtype, rid, version, rtype, rid, version))
        return self._rec(rows[0]) if rows else None

    def history(self, rtype: str, rid: str) -> list[StoredResource]:
        rows = self.store.query(
            f"SELECT {_HIST} FROM fhir_resource WHERE idh = ? AND type = ? AND id = ? UNION ALL "
            f"SELECT {_HIST} FROM fhir_history WHERE type = ? AND id = ? ORDER BY version DESC",
            (id_hash(rtype, rid), rtype, rid, rtype, rid))
        return [self._rec(r) for r in rows]

    def deleted_keys(self) -> list[tuple[str, str]]:
        """Every record whose current version is a deletion (one scan; ``scoped.DeletedLabels``
        fills its ledger from them once, for a store written before it)."""
        return [(t, i) for t, i in self.store.query("SELECT type, id FROM fhir_resource WHERE deleted = 1")]

    # -- writes ---------------------------------------------------------------------------------
    def put(self, rec: StoredResource, rows: IndexRows | None, previous: StoredResource | None) -> None:
        self.put_many([(rec, rows, previous)])

    @staticmethod
    def _empty_tables() -> dict[str, list[tuple[Any, ...]]]:
        return {"ix_hash": [], "ix_date": [], "ix_string": [], "ix_quantity": []}

    def _collect(self, tables: dict[str, list[tuple[Any, ...]]], rid: int, rtype: str,
                 rows: IndexRows) -> str | None:
        """Add the resource's range rows to ``tables`` and return its ``ranges``: the same rows as
        JSON (``[[["date", lo, hi], ...], [["name", norm, raw], ...], [["value-quantity", value,
        system, code], ...]]``), which a search's correlated check reads from the resource row
        (the range tables are keyed for lookup, ``hp`` first, not by ``rid``), and which names
        the rows a new version or a deletion removes. One ``orjson.dumps`` of the indexer's lists."""
        if not (rows.dates or rows.strings or rows.quantities):
            return None
        hp = self._hasher(rtype).hp
        if rows.dates:
            tables["ix_date"] += [(hp[p], lo, hi, rid) for p, lo, hi in rows.dates]
        if rows.strings:
            tables["ix_string"] += [(hp[p], n, raw, rid) for p, n, raw in rows.strings]
        if rows.quantities:  # (finite: FHIR JSON refuses a number no double holds)
            tables["ix_quantity"] += [(hp[p], v, s, c, rid) for p, v, s, c in rows.quantities]
        return orjson.dumps((rows.dates, rows.strings, rows.quantities)).decode()

    def _insert_rows(self, tables: dict[str, list[tuple[Any, ...]]]) -> None:
        conn = self.store.conn
        for table, values in tables.items():
            if values:
                insert_many(conn, _INSERT_OR_IGNORE[table], values)

    def put_many(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> None:
        """Store new versions with one ``executemany`` per table (the group-commit path of ingest).

        New rows get their ``rid`` from ``max(rid) + 1`` onwards (read once a transaction:
        ``_first_rid``): safe because the caller holds the one write transaction (and the store
        lock) for the whole call. A replaced current row is
        first copied to ``fhir_history``; of its index rows only those the new version does not
        have are deleted, and only the new version's rows it did not have are inserted
        (``_replace_rows``): a new version mostly keeps its code, subject, dates and identifiers.
        """
        self._check_layout()
        store = self.store
        if not store.in_transaction:
            with store.transaction():
                self.put_many(items)
            return
        with store.lock:
            conn = store.conn
            next_rid = self._first_rid(conn)
            # read once (``_target_rids`` adds each rid the put gives, and returns the same dict)
            rids = self._target_rids(items, next_rid, self._given_rids())
            updates: list[tuple[Any, ...]] = []
            replaced: dict[int, tuple[str, dict[str, list[tuple[Any, ...]]], Collection[tuple[int, int]]]] = {}
            tables = self._empty_tables()  # the rows replaced versions add (``_replace_rows``)
            # a first version's rows go straight into flat lists, row after row, as ``insert_flat``
            # takes them (the ingest path: ~17 resources a message, so what is done per resource is
            # written out here once); its blobs (body, hkeys) as ``bytearray``: the sqlite3 module
            # binds a str, int, float or bytearray as it is, but asks its adapter registry and the
            # object's ``__adapt__``/``__conform__`` first for anything else, ``bytes`` too
            # (CPython's ``_need_adapt``: ~3 k instructions a value under callgrind, against a
            # copy of ~1.4 KB); the same BLOB is stored, and read back as ``bytes``
            inserts: list[Any] = []
            hash_rows: list[Any] = []
            date_rows: list[Any] = []
            string_rows: list[Any] = []
            quantity_rows: list[Any] = []
            hashers, dumps, dumps_json = self._hashers, _sort_keys, orjson.dumps
            for rec, rows, previous in items:
                rtype = rec.type
                if previous is not None and previous.key is not None:
                    rid = previous.key
                    target = self._empty_tables()
                    if rows is not None:
                        sortkeys: str | None = dumps(rows.sort)
                        keys: Collection[tuple[int, int]] = self._hasher(rtype).keys(rows, rids)
                        ranges = self._collect(target, rid, rtype, rows)
                    else:
                        sortkeys, keys, ranges = None, (), None
                    replaced[rid] = (rtype, target, keys)  # (its rid in ``given``: ``_target_rids``)
                    body = rec.body  # (bound as ``bytearray``, as a first version's: see below)
                    updates.append((rec.version, rec.updated, int(rec.deleted),
                                    bytearray(body) if type(body) is bytes else body, sortkeys,
                                    bytearray(_pack(keys)), ranges, rec.writer, updated_key(rtype, rec.updated), rid))
                    rec.key = rid
                    continue
                rid = next_rid
                next_rid += 1
                if rows is None:
                    sortkeys, blob, ranges = None, PAIRS, None
                else:
                    hasher = hashers.get(rtype) or self._hasher(rtype)
                    try:  # ``_sort_keys`` written out (a call fewer a resource: ~17 a lab message)
                        sortkeys = dumps_json(rows.sort).decode()
                    except TypeError:
                        sortkeys = dumps(rows.sort)
                    keys = hasher.keys(rows, rids)
                    if keys:
                        blob = bytearray(_packer(2 * len(keys)).pack(*_flat(keys)))
                        blob += PAIRS
                        for h, q in keys:
                            hash_rows += (h, rid, q)
                    else:
                        blob = PAIRS
                    dates, strings, quantities = rows.dates, rows.strings, rows.quantities
                    if dates or strings or quantities:  # as _collect
                        hp = hasher.hp
                        for p, lo, hi in dates:
                            date_rows += (hp[p], lo, hi, rid)
                        for p, n, raw in strings:
                            string_rows += (hp[p], n, raw, rid)
                        for p, v, system, code in quantities:
                            quantity_rows += (hp[p], v, system, code, rid)
                        ranges = dumps_json((dates, strings, quantities)).decode()
                    else:
                        ranges = None
                body = rec.body
                updated = rec.updated
                inserts += (rid, rtype, rec.id, rec.version, updated, int(rec.deleted),
                            bytearray(body) if type(body) is bytes else body, sortkeys, blob, ranges,
                            id_hash(rtype, rec.id), rec.writer, updated_key(rtype, updated))
                rec.key = rid  # (``_target_rids`` gave it this very rid already)
            self._next_rid = next_rid  # (before the statements: a rid given is never given again)
            if replaced:
                self._replace_rows(replaced, tables)
                gone = [(rid,) for rid in replaced]
                conn.executemany("INSERT INTO fhir_history (type, id, version, updated, deleted, body, writer) "
                                 "SELECT type, id, version, updated, deleted, body, writer FROM fhir_resource "
                                 "WHERE rid = ?",
                                 gone)
                conn.executemany("UPDATE fhir_resource SET version = ?, updated = ?, deleted = ?, body = ?, "
                                 "sortkeys = ?, hkeys = ?, ranges = ?, writer = ?, tu = ? WHERE rid = ?", updates)
            if inserts:
                insert_flat(conn, _INSERT_RESOURCE, 13, inserts)
            for table, flat in (("ix_hash", hash_rows), ("ix_date", date_rows), ("ix_string", string_rows),
                                ("ix_quantity", quantity_rows)):
                added = tables[table]
                if added:  # (after the first versions' rows, as when they shared one list)
                    flat += _flat(added)
                if flat:
                    insert_flat(conn, _INSERT_OR_IGNORE[table], _WIDTH[table], flat)

    def _first_rid(self, conn: Any) -> int:
        """The rid the put's first new resource gets: ``max(rid) + 1`` read once per transaction
        (``store.generation``, which changes at every BEGIN and every rollback), then counted on by
        the puts of that transaction: no other connection writes while it holds the write lock,
        and what this one writes to ``fhir_resource`` otherwise (an expunge) only deletes, so a rid
        counted on is never one stored. The statement was ~20-40 us a put on this machine."""
        if self._next_rid_in != self.store.generation:
            self._next_rid = (conn.execute("SELECT max(rid) FROM fhir_resource").fetchone()[0] or 0) + 1
            self._next_rid_in = self.store.generation
        return self._next_rid

    def _target_rids(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]],
                     next_rid: int, given: dict[tuple[str, str], int]) -> TargetRids:
        """The rids of the resources the put's by-target references name (``BY_TARGET``): those of
        the put itself (the rids ``put_many`` gives them, in its order), those the transaction's
        earlier puts gave or found (remembered until the transaction ends or anything in it is
        rolled back: a rid given in a rolled-back block may be given again to another resource),
        and the stored ones (one statement for the rest). ``given``: ``_given_rids()``, which this
        fills with the rid of every resource of the put and returns (the same dict ``put_many``
        reads: reading it twice could clear it in between, past its bound).

        One pass over the put gives each resource its rid and picks the resources of a by-target
        type; their references are checked after it, once every rid of the put is known (a target
        may come after the resource naming it). Why one pass: a lab message's put (17 resources)
        was walked three times here -- to find a by-target type, to give the rids, to pick the
        references -- ~107 k instructions a message under callgrind with the batch's Provenance
        put (ing44); ``put_many`` then gave the rids of a put without one a second time."""
        rids = given  # the transaction's puts before this one (and this one, below)
        naming: list[tuple[str, IndexRows]] = []
        for rec, rows, previous in items:  # this put's own, a target after the resource naming it
            rtype = rec.type
            if previous is not None and previous.key is not None:
                rids[(rtype, rec.id)] = previous.key
            else:
                rids[(rtype, rec.id)] = next_rid
                next_rid += 1
            if rows is not None and rtype in BY_TARGET:
                naming.append((rtype, rows))
        wanted: dict[tuple[str, str], None] = {}
        for rtype, rows in naming:
            specs = self._hasher(rtype).by_target
            for p, rt, target in rows.refs:
                spec = specs.get(p)
                if spec is not None and rt and rt not in spec[2] and (rt, target) not in rids:
                    wanted[(rt, target)] = None
        if wanted:
            rids.update(self._stored_rids(list(wanted)))
        return rids

    def _given_rids(self) -> dict[tuple[str, str], int]:
        """(type, id) -> rid of what this writer put in the store's current transaction (since
        anything in it was last rolled back: ``store.generation``)."""
        if self._given_in != self.store.generation or len(self._given) > 1 << 16:
            self._given, self._given_in = {}, self.store.generation
        return self._given

    def _stored_rids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The rids of the stored resources among ``keys`` (deleted ones too: a rid is a resource's
        for good, unless it is expunged, which re-keys the rows naming it: ``_unkey_targets``)."""
        if not keys:
            return {}
        return {(found_type, found_id): rid
                for found_type, found_id, rid in keyed_rows(self.store.conn.execute, "r.type, r.id, r.rid", keys, 0)}

    def _replace_rows(self, replaced: Mapping[int, tuple[str, dict[str, list[tuple[Any, ...]]],
                                                         Collection[tuple[int, int]]]],
                      tables: dict[str, list[tuple[Any, ...]]]) -> None:
        """The index rows of replaced resources (``rid`` -> type, new range rows, new ``(h, q)``):
        the rows of the version before that the new one lacks are deleted by primary key, and the
        new version's rows it lacked are added to ``tables`` (inserted with the new resources').
        What the version before had is what its resource row records: ``hkeys`` for ``ix_hash``,
        ``ranges`` for the range tables (read before the row is overwritten)."""
        conn = self.store.conn
        rids = list(replaced)
        stale = self._empty_tables()
        for start in range(0, len(rids), 500):
            chunk = rids[start : start + 500]
            for rid, blob, ranges in conn.execute(
                    f"SELECT rid, hkeys, ranges FROM fhir_resource WHERE rid IN ({','.join('?' * len(chunk))})",
                    chunk):
                rtype, fresh, keys = replaced[rid]
                old = _unpack(blob)
                stale["ix_hash"] += [(h, rid, q) for h, q in old if (h, q) not in keys]
                tables["ix_hash"] += [(h, rid, q) for h, q in keys if (h, q) not in old]
                before = _stored_ranges(rid, self._hasher(rtype).hp, ranges)
                for table in _RANGE_TABLES:
                    new = fresh[table]
                    if before[table]:
                        gone = before[table].difference(new)
                        stale[table] += gone
                        tables[table] += [row for row in new if row not in before[table]]
                    else:
                        tables[table] += new
        self._delete_rows(stale)

    def _delete_rows(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        """Delete index rows by their whole primary key."""
        conn = self.store.conn
        for table, rows in tables.items():
            if rows:
                columns = ("h", "rid", "q") if table == "ix_hash" else _RANGE_COLUMNS[table]
                cols = " AND ".join(f"{c} = ?" for c in columns)
                conn.executemany(f"DELETE FROM {table} WHERE {cols}", rows)  # noqa: S608 - our table names

    def expunge(self, rtype: str, ids: Sequence[str]) -> int:
        """See ``FhirBackend.expunge``: the rows ``put_many`` writes for these ids, all gone."""
        self._check_layout()
        with self.store.transaction(), self.store.lock:
            conn = self.store.conn
            hp = self._hasher(rtype).hp
            found = 0
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                select = (f"SELECT rid, hkeys, ranges, id FROM fhir_resource WHERE idh IN ({marks}) AND "
                          f"type = ? AND id IN ({marks})")
                args = [*(id_hash(rtype, i) for i in chunk), rtype, *chunk]
                rows = conn.execute(select, args).fetchall()
                found += len(rows)
                self._unkey_targets(rtype, [(rid, id_) for rid, _b, _r, id_ in rows])
                # unkeying rewrote the rows (and hkeys) of whatever names these resources, and those
                # may be among them (a Provenance expunged with one it names): the rows to delete
                # are the ones stored now, else a rewritten row outlived its resource and matched
                # whatever was given its rid next
                rows = conn.execute(select, args).fetchall()
                self._given_in = -1  # the rids it remembered may be given again
                gone = self._empty_tables()
                for rid, blob, ranges, _id in rows:
                    gone["ix_hash"] += [(h, rid, q) for h, q in _unpack(blob)]
                    for table, stored in _stored_ranges(rid, hp, ranges).items():
                        gone[table] += stored
                self._delete_rows(gone)
                conn.executemany("DELETE FROM fhir_resource WHERE rid = ?", [(rid,) for rid, _b, _r, _i in rows])
                conn.execute(f"DELETE FROM fhir_history WHERE type = ? AND id IN ({marks})", [rtype, *chunk])
            return found

    def _unkey_targets(self, rtype: str, targets: Sequence[tuple[int, str]]) -> None:
        """Rows keyed by the rid of resources about to be expunged (``(rid, id)`` of type ``rtype``)
        become hashed rows again, in the referencing resource's ``hkeys`` too: the rid may be
        given to another resource later, and the reference still names the type and id."""
        conn = self.store.conn
        for ptype in BY_TARGET:
            for param, (base, mark, kept) in self._hasher(ptype).by_target.items():
                if rtype in kept:
                    continue
                for trid, id_ in targets:
                    old, new = (base + trid, mark), _ref_key(ptype, param, rtype, id_)
                    for (rid,) in conn.execute("SELECT rid FROM ix_hash WHERE h = ? AND q = ?", old).fetchall():
                        blob = conn.execute("SELECT hkeys FROM fhir_resource WHERE rid = ?", (rid,)).fetchone()[0]
                        keys = dict.fromkeys(new if pair == old else pair for pair in _pairs(blob))
                        conn.execute("UPDATE fhir_resource SET hkeys = ? WHERE rid = ?", (_pack(keys), rid))
                        conn.execute("DELETE FROM ix_hash WHERE h = ? AND rid = ? AND q = ?", (old[0], rid, old[1]))
                        conn.execute("INSERT OR IGNORE INTO ix_hash VALUES (?, ?, ?)", (new[0], rid, new[1]))
