"""FHIR storage on SQLite: current versions, superseded versions, and narrow index tables.

Tables (storage layout 6, ``PRAGMA user_version``; created at start, idempotently):

* ``fhir_resource(rid, type, id, version, updated, deleted, body, sortkeys, hkeys, ranges)`` —
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
  read both forms, ``_by_target``). A store of layout 5 (all hashed) is read as it is.
* ``ix_date``, ``ix_string``, ``ix_quantity`` — the range-searched kinds, one B-tree each keyed
  for lookup, ``(hp, value..., rid)`` (``hp`` = hash of type and parameter): a row is one entry
  (layout 4 clustered them on ``rid`` with a lookup index beside, two or three entries a row).
  ``ix_date`` keeps a second index on ``(hp, hi)``, because a date prefix bounds either end of
  the stored range (``le`` the start, ``ge`` the end: ``query.date_bounds``) and each must be a
  range scan, not an OR over both. A correlated check of a range clause reads the resource
  row's own ``ranges`` (``json_each``, no probe), and deletes go by the rows ``ranges`` names.

``_lastUpdated`` is answered from ``fhir_resource.updated`` (index ``(type, updated)``), not
from index rows. 64-bit hashes of distinct keys collide with probability ~n²/2⁶⁵: negligible at
the sizes one node holds (HAPI FHIR relies on the same).

A query starts from its most selective clause (``query.selectivity``), forced with
``CROSS JOIN`` so the planner cannot choose a full scan without statistics, and checks the other
clauses with ``EXISTS`` probes on ``ix_hash`` (``(h, rid)``: one primary-key probe) or on the
resource row's ``ranges``.

A data directory written by an earlier layout (1: wide ``ix_*`` rows, every version in
``fhir_history``; 2: three hash rows per token; 3 and 4: range rows clustered on ``rid``, no
``ranges``; 3 also ``hkeys`` of ``h`` alone) is converted when the repository binds to the
store: the index is rebuilt from the stored bodies and the history copies of current versions
are dropped, in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson

from engine import fhirjson
from engine.repository.indexing import IndexRows, normalise
from engine.repository.port import StoredResource
from engine.repository.query import (
    Clause,
    Cond,
    DateCond,
    ExistsCond,
    IdCond,
    QuantityCond,
    Query,
    RefCond,
    StringCond,
    TokenCond,
    UriCond,
    date_bounds,
    selectivity,
    widen,
)

if TYPE_CHECKING:
    from engine.repository.indexing import Indexer
    from engine.repository.searchparams import SearchParams
    from engine.repository.sqlite_store import SqliteStore

log = logging.getLogger("huren.repository")

LAYOUT = 6  # PRAGMA user_version of the layout below
REBUILT_BEFORE = 5  # layouts before this one have their index rebuilt when the repository binds

SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_resource (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, hkeys BLOB, ranges TEXT,
    idh INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS fhir_resource_key ON fhir_resource (idh);
CREATE INDEX IF NOT EXISTS fhir_resource_updated ON fhir_resource (type, updated);
CREATE TABLE IF NOT EXISTS fhir_history (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL, body BLOB);
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
INDEXED_BY = "indexed-by"  # fhir_meta key: the signature of the search parameter list the index follows

# the index tables of layouts 1 and 2, dropped by the migration (their rows are rebuilt)
_LEGACY = ("DROP INDEX IF EXISTS fhir_resource_type", "DROP TABLE IF EXISTS ix_token", "DROP TABLE IF EXISTS ix_ref",
           "DROP TABLE IF EXISTS ix_hash",
           "DROP TABLE IF EXISTS ix_date", "DROP TABLE IF EXISTS ix_string", "DROP TABLE IF EXISTS ix_quantity",
           "DROP TABLE IF EXISTS ix_uri", "DROP TABLE IF EXISTS ix_comp")
_RANGE_TABLES = ("ix_date", "ix_string", "ix_quantity")
_RANGE_COLUMNS = {"ix_date": ("hp", "lo", "hi", "rid"), "ix_string": ("hp", "norm", "raw", "rid"),
                  "ix_quantity": ("hp", "value", "system", "code", "rid")}  # each row its primary key
# a range row's values in ``fhir_resource.ranges`` (``[lo, hi]``, ...): the columns between ``hp`` and ``rid``
_RANGE_VALUES = {table: columns[1:-1] for table, columns in _RANGE_COLUMNS.items()}
_COLS = "r.rid, r.type, r.id, r.version, r.updated, r.deleted, r.body"
_HIST = "NULL, type, id, version, updated, deleted, body"
NO_QUALIFIER = 0  # ``q`` of the rows whose value has no qualifier (URIs, system-only)
_SEP = "\x1f"
_COMPOUND = 400  # terms of one compound SELECT (SQLite's limit is 500)


def _any(alts: Sequence[str]) -> str:
    """``alts`` joined by OR, nested in groups of ``_COMPOUND``: SQLite parses a flat OR as a tree
    as deep as its terms and refuses one deeper than 1,000 ("Expression tree is too large"), which
    a chained clause over ~1,000 matches made (one alternative each)."""
    if len(alts) <= _COMPOUND:
        return "(" + " OR ".join(alts) + ")"
    return _any([_any(alts[at : at + _COMPOUND]) for at in range(0, len(alts), _COMPOUND)])
UNINDEXED = frozenset({"_id", "_lastUpdated"})  # answered from fhir_resource columns
_NO_FOLDS: Mapping[str, tuple[str, ...]] = {}
_NONE: Mapping[str, tuple[str, str]] = {}


class LayoutError(RuntimeError):
    """The database was written by a layout this code cannot read."""


def h64(key: str) -> int:
    """A stable signed 64-bit hash (BLAKE2b): SQLite's INTEGER, the same in every process.

    Not cached itself: the functions below cache by their arguments (no key string built on a
    hit), and a message's new ids (results, orders, specimens) would only churn a cache here.
    """
    return _INT64(_blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest())[0]


_blake2b = hashlib.blake2b
_INT64 = struct.Struct("<q").unpack  # the digest read as a little-endian signed integer
_STARTED: dict[str, Any] = {}  # a key's prefix -> the BLAKE2b state after it (copied, never updated)


def h64_after(prefix: str, value: str) -> int:
    """``h64(prefix + value)``: the hash of a key made of a constant prefix (kind, type and
    parameter) and a value, the state after the prefix computed once and copied (BLAKE2b is
    streamed, and UTF-8 of a concatenation is the concatenation of the UTF-8s). A new value
    (a message's new ids) costs a copy and one update instead of a hasher built from the whole
    key: ~0.2 us less a value."""
    state = _STARTED.get(prefix)
    if state is None:
        if len(_STARTED) >= 4096:  # (types x parameters: a few hundred)
            _STARTED.clear()
        state = _STARTED[prefix] = _blake2b(prefix.encode("utf-8", "surrogatepass"), digest_size=8)
    h = state.copy()
    h.update(value.encode("utf-8", "surrogatepass"))
    return _INT64(h.digest())[0]


@lru_cache(maxsize=1 << 14)
def id_hash(rtype: str, id_: str) -> int:
    """``fhir_resource.idh``, the key a resource is found by: one 64-bit integer instead of the
    ``(type, id)`` text (~50 bytes of random UUID a row), so the unique index on it is a third
    as many pages, which a commit dirties one per new resource once it outgrows the page cache.
    Lookups check ``type`` and ``id`` on the row too: a collision finds nothing, never another.
    The index is not UNIQUE on purpose: two resources whose keys collide (64 bits: about 1 in 40
    over a billion resources) are both stored and both found; a UNIQUE index would refuse the
    second one forever. One row per (type, id) is kept by the write path, which decides insert or
    update from the current versions it read under the writer's lock.
    Cached: a write group's puts insert the ids its reads of the current versions just hashed."""
    return h64_after(f"i{_SEP}{rtype}{_SEP}", id_)


def token_hash(rtype: str, param: str, code: str) -> int:
    return h64_after(f"t{_SEP}{rtype}{_SEP}{param}{_SEP}", code)


@lru_cache(maxsize=4096)
def qualifier_hash(qualifier: str) -> int:
    """``q`` of a token's system or a reference's target type ("" for none: ``|code``, a URL)."""
    return h64(f"q{_SEP}{qualifier}")


def system_hash(rtype: str, param: str, system: str) -> int:
    """The row of a coded value's system alone (``system|``), for the parameters that enable it."""
    return h64_after(f"s{_SEP}{rtype}{_SEP}{param}{_SEP}", system)


def ref_hash(rtype: str, param: str, target: str) -> int:
    return h64_after(f"r{_SEP}{rtype}{_SEP}{param}{_SEP}", target)


def uri_hash(rtype: str, param: str, uri: str) -> int:
    return h64_after(f"u{_SEP}{rtype}{_SEP}{param}{_SEP}", uri)


@lru_cache(maxsize=4096)
def param_hash(rtype: str, param: str) -> int:
    return h64(f"p{_SEP}{rtype}{_SEP}{param}")


@lru_cache(maxsize=1 << 16)
def _token_key(rtype: str, param: str, system: str, code: str) -> tuple[int, int]:
    """Cached: a feed's tokens repeat (its codes, categories, statuses)."""
    return token_hash(rtype, param, code), qualifier_hash(system)


@lru_cache(maxsize=1 << 16)
def _ref_key(rtype: str, param: str, target_type: str, target: str) -> tuple[int, int]:
    """Cached: a message's resources point at the same Patient, order and specimen many times."""
    return ref_hash(rtype, param, target), qualifier_hash(target_type)


# Reference parameters whose rows are keyed by the target's ``rid`` when the target is stored
# (layout 6): a Provenance names every resource of its message, ~16 new ids a lab message, and
# hashed they landed on ~16 random ``ix_hash`` pages each (half of the index's pages a large
# store's commit wrote); keyed ``base + rid`` they are appended, the batch's rows on a page or two
# (README, eleventh round). A target type that a narrowed parameter reads under this one
# (``patient`` = ``target`` of type Patient: the compartment) stays hashed.
BY_TARGET: Mapping[str, frozenset[str]] = {"Provenance": frozenset({"target"})}
_RID_BITS = 40  # rids below 2**40: a parameter's rows keyed by target rid are ``base + rid``


@lru_cache(maxsize=256)
def target_key(rtype: str, param: str) -> tuple[int, int]:
    """``(base, mark)`` of a by-target parameter's rows: ``(base + target rid, rid, mark)``.
    ``mark`` is the rows' ``q`` (no token system or target type hashes to it: 64 bits, as every
    key here), so no hashed condition finds them and they are told apart in ``hkeys``; ``base``
    has its low 40 bits clear, so a parameter's rows are one range ordered by the target's rid."""
    return h64(f"b{_SEP}{rtype}{_SEP}{param}") & ~((1 << _RID_BITS) - 1), h64(f"m{_SEP}{rtype}{_SEP}{param}")


TargetSpec = tuple[int, int, frozenset[str]]  # (base, mark, target types left hashed)
TargetRids = Mapping[tuple[str, str], int]  # (type, id) -> rid of the stored (or being stored) resource


def target_specs(rtype: str, narrowed: Mapping[str, tuple[str, str]]) -> dict[str, TargetSpec]:
    """The by-target parameters of ``rtype``: parameter -> (base, mark, target types kept hashed)."""
    out: dict[str, TargetSpec] = {}
    for param in BY_TARGET.get(rtype, ()):
        kept = frozenset(t for base, t in narrowed.values() if base == param)
        out[param] = (*target_key(rtype, param), kept)
    return out


def hash_keys(rtype: str, rows: IndexRows, narrowed: Mapping[str, tuple[str, str]] = _NONE,
              rids: TargetRids | None = None) -> set[tuple[int, int]]:
    """The ``ix_hash`` rows ``(h, q)`` of one resource: one per token, reference and URI, and one
    per system of the parameters enabled for ``system|`` searches (compartments are read from the
    reference rows: ``SqliteFhirBackend._compartment``). A reference of a ``narrowed`` parameter
    (``patient``) to its type is the wider parameter's (``subject``) row already, so it is not
    written twice (``query.widen`` reads it there). A by-target parameter's reference to a
    resource ``rids`` names is ``(base + its rid, mark)`` (``target_specs``). The reading of the
    layout that ``RowHasher`` (the write path) is held to."""
    keys: set[tuple[int, int]] = set()
    add = keys.add
    specs = target_specs(rtype, narrowed) if rids is not None else {}
    for p, s, c in rows.tokens:
        add(_token_key(rtype, p, s, c))
    for p, rt, target in rows.refs:
        if narrowed and p in narrowed and narrowed[p][1] == rt:
            continue
        spec = specs.get(p)
        if spec is not None and rt not in spec[2] and rids is not None and (rt, target) in rids:
            add((spec[0] + rids[(rt, target)], spec[1]))
            continue
        add(_ref_key(rtype, p, rt, target))
    for p, uri in rows.uris:
        add((uri_hash(rtype, p, uri), NO_QUALIFIER))
    for p, system in rows.systems:
        add((system_hash(rtype, p, system), NO_QUALIFIER))
    return keys


class RowHasher:
    """``hash_keys`` for one resource type, remembering the key of each index row it hashed.

    A feed repeats most of its rows (its codes, statuses, categories; the message's patient,
    specimen and order named by every result), so most rows are one dict lookup by the row
    tuple the indexer made, where ``hash_keys`` builds a cache key per row. The narrowed
    references are remembered as "no row" the same way.
    """

    __slots__ = ("rtype", "narrowed", "_tokens", "_refs", "hp", "by_target")
    LIMIT = 1 << 15  # rows remembered per kind and type; a new message's new ids would churn more

    def __init__(self, rtype: str, narrowed: Mapping[str, tuple[str, str]]) -> None:
        self.rtype, self.narrowed = rtype, narrowed
        self._tokens: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._refs: dict[tuple[str, str, str], tuple[int, int] | None] = {}
        self.hp = _ParamHashes(rtype)  # parameter -> ``hp`` of the range tables' rows
        self.by_target = target_specs(rtype, narrowed)

    def keys(self, rows: IndexRows, rids: TargetRids | None = None) -> dict[tuple[int, int], None]:
        """The distinct ``(h, q)`` of ``rows``, in the order of first appearance; a by-target
        parameter's reference to a resource ``rids`` names keyed by its rid (never remembered:
        the row's key is the store's, not the row's)."""
        keys: dict[tuple[int, int], None] = {}
        rtype = self.rtype
        cache = self._tokens
        get = cache.get
        for row in rows.tokens:
            key = get(row)
            if key is None:  # hashed here, not through _token_key's cache: this one is the cache
                p, system, code = row
                key = token_hash(rtype, p, code), qualifier_hash(system)
                if len(cache) >= self.LIMIT:
                    cache.clear()
                cache[row] = key
            keys[key] = None
        refs = self._refs
        get_ref = refs.get
        by_target = self.by_target if rids else None
        for row in rows.refs:
            if by_target:
                spec = by_target.get(row[0])
                if spec is not None and row[1] not in spec[2]:
                    trid = rids.get((row[1], row[2])) if rids else None
                    if trid is not None:
                        keys[(spec[0] + trid, spec[1])] = None
                        continue
            key = get_ref(row, False)
            if key is False:
                p, rt, target = row
                narrowed = self.narrowed.get(p)
                key = None if narrowed is not None and narrowed[1] == rt else (
                    ref_hash(rtype, p, target), qualifier_hash(rt))
                if len(refs) >= self.LIMIT:
                    refs.clear()
                refs[row] = key
            if key is not None:
                keys[key] = None
        for p, uri in rows.uris:
            keys[(uri_hash(rtype, p, uri), NO_QUALIFIER)] = None
        for p, system in rows.systems:
            keys[(system_hash(rtype, p, system), NO_QUALIFIER)] = None
        return keys


class _ParamHashes(dict[str, int]):
    """``param_hash`` of one type's parameters by a plain dict lookup (a range row each)."""

    def __init__(self, rtype: str) -> None:
        super().__init__()
        self.rtype = rtype

    def __missing__(self, param: str) -> int:
        value = self[param] = param_hash(self.rtype, param)
        return value


@lru_cache(maxsize=256)
def _packer(n: int) -> struct.Struct:
    return struct.Struct(f"<{n}q")


PAIRS = b"\x01"  # last byte of an ``hkeys`` of layout 4: (h, q) pairs; layout 3 packed h alone (8 bytes each)
_flat = chain.from_iterable


def _pack(keys: Collection[tuple[int, int]]) -> bytes:
    """The ``(h, q)`` of a resource's rows, so that a new version deletes and inserts only the
    rows that differ (most of an update's rows are the version before's: its code, subject,
    dates), and a deletion deletes exactly its rows by primary key."""
    return _packer(2 * len(keys)).pack(*_flat(keys)) + PAIRS


def _pairs(blob: bytes | None) -> list[tuple[int, int]]:
    """The ``(h, q)`` rows an ``hkeys`` records, in the order ``_pack`` wrote them (stores of
    layouts before 5 are converted when the repository binds, so every ``hkeys`` read here is of
    pairs)."""
    if not blob:
        return []
    flat = _packer((len(blob) - 1) // 8).unpack(blob[:-1])
    return list(zip(flat[::2], flat[1::2], strict=True))


def _unpack(blob: bytes | None) -> set[tuple[int, int]]:
    """``_pairs`` as a set: what a new version or a deletion compares and deletes by."""
    return set(_pairs(blob))


# ``fhir_resource.ranges``: ``[dates, strings, quantities]``, each a list of the resource's rows of
# that table as the indexer gives them, ``[param, values...]`` (``IndexRows`` dumped as it is)
_RANGE_AT = {"ix_date": 0, "ix_string": 1, "ix_quantity": 2}


def _stored_ranges(rid: int, hp: Mapping[str, int], ranges: str | bytes | None) -> dict[str, set[tuple[Any, ...]]]:
    """The range rows a resource's ``ranges`` records, per table: ``(hp, values..., rid)``, the
    rows' primary keys, so a new version or a deletion removes exactly them."""
    out: dict[str, set[tuple[Any, ...]]] = {table: set() for table in _RANGE_TABLES}
    if not ranges:
        return out
    doc = orjson.loads(ranges)
    for table, at in _RANGE_AT.items():
        out[table].update((hp[param], *values, rid) for param, *values in doc[at])
    return out


# -- _lastUpdated on fhir_resource.updated ("YYYY-MM-DDTHH:MM:SS.mmmZ", one millisecond wide) --------
_MIN_MS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def _ms_floor(seconds: float) -> int:
    return round(seconds * 1_000_000) // 1000


def _ms_ceil(seconds: float) -> int:
    return -(-round(seconds * 1_000_000) // 1000)


def _instant(ms: int) -> str:
    """``updated`` text of the instant ``ms``; beyond years 1000..9999 a bound below/above all."""
    if ms < -30610224000000:  # before 1000-01-01: strftime would not pad the year
        return ""
    if ms > _MAX_MS:
        return "~"
    sec, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)) + f"{milli:03d}Z"


def _updated_sql(cond: DateCond, col: str) -> tuple[str, list[Any]]:
    """A ``_lastUpdated`` comparison on the text column ``col`` (its stored range is [T, T+1 ms))."""
    lo_c, hi_f = _ms_ceil(cond.lo), _ms_floor(cond.hi)
    if cond.prefix == "eq":
        return f"{col} >= ? AND {col} <= ?", [_instant(lo_c), _instant(hi_f - 1)]
    bound, op = {
        "gt": (hi_f, ">="), "sa": (_ms_ceil(cond.hi), ">="), "ge": (min(lo_c, hi_f), ">="),
        "lt": (lo_c, "<"), "eb": (_ms_floor(cond.lo), "<"), "le": (max(lo_c, hi_f), "<"),
    }[cond.prefix]
    return f"{col} {op} ?", [_instant(bound)]


def _json_key(param: str) -> str:
    safe = param.replace('"', "").replace("'", "")
    return f"'$.\"{safe}\"'"


class SqliteFhirBackend:
    unindexed = UNINDEXED

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._params: SearchParams | None = None
        self._hashers: dict[str, RowHasher] = {}
        # (type, id) -> rid of the resources this writer put in the store's current transaction
        # (``store.generation``): a Provenance is put after its targets, in the same transaction
        self._given: dict[tuple[str, str], int] = {}
        self._given_in = -1
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
                if version != LAYOUT:  # a new store, or one of layout 5 (its rows are all hashed:
                    conn.execute(f"PRAGMA user_version = {LAYOUT}")  # read as they are, no rebuild)

    # -- binding to the repository (search parameters; migration of an older layout) ----------
    def bind(self, params: SearchParams, indexer: Indexer) -> None:
        """Called by the repository with the indexer that rebuilds the index of a data directory
        written by an earlier layout, and the parameters whose narrowed references it keeps once."""
        self._params = params
        self._hashers.clear()  # they hold the narrowed references of the parameters bound before
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
                updates.append((fhirjson.dumps(rows.sort).decode(), _pack(keys), ranges, rid))
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
            conn.execute("INSERT INTO fhir_resource (rid, type, id, version, updated, deleted, body, idh) "
                         "SELECT rid, type, id, version, updated, deleted, body, huren_id_hash(type, id) "
                         "FROM fhir_resource_before")
            conn.execute("DROP TABLE fhir_resource_before")
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

    def _check_layout(self) -> None:
        if self.legacy:
            raise LayoutError(f"{self.store.path}: FHIR storage of an earlier layout; it is migrated when the "
                              "repository opens it (FhirRepository binds the backend)")

    # -- reads ----------------------------------------------------------------------------------
    @staticmethod
    def _rec(row: Sequence[Any]) -> StoredResource:
        rid, rtype, id_, version, updated, deleted, body = row
        return StoredResource(rtype, id_, version, updated, bool(deleted), body, key=rid)

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        rows = self.store.query(f"SELECT {_COLS} FROM fhir_resource r WHERE r.idh = ? AND r.type = ? AND r.id = ?",
                                (id_hash(rtype, rid), rtype, rid))
        return self._rec(rows[0]) if rows else None

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        """One statement for the keys of every type (a message's resources are of some seven
        types: one ``IN`` list per type was seven statements): the keys are a ``VALUES`` table
        joined to the ``idh`` index, one probe each."""
        out: dict[tuple[str, str], StoredResource] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self.store.query(
                f"SELECT {_COLS} FROM (VALUES {','.join(['(?, ?, ?)'] * len(chunk))}) k "
                "CROSS JOIN fhir_resource r ON r.idh = k.column1 AND r.type = k.column2 AND r.id = k.column3",
                [v for rtype, id_ in chunk for v in (id_hash(rtype, id_), rtype, id_)])
            for row in rows:
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
                marks = ", ".join("?" * len(values[0]))
                conn.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", values)

    def put_many(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> None:
        """Store new versions with one ``executemany`` per table (the group-commit path of ingest).

        New rows get their ``rid`` from ``max(rid) + 1`` onwards: safe because the caller holds the
        one write transaction (and the store lock) for the whole call. A replaced current row is
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
            next_rid = (conn.execute("SELECT max(rid) FROM fhir_resource").fetchone()[0] or 0) + 1
            given = self._given_rids()  # read once: the put adds each rid it gives (below)
            rids = self._target_rids(items, next_rid, given)
            inserts, updates = [], []
            replaced: dict[int, tuple[str, dict[str, list[tuple[Any, ...]]], Collection[tuple[int, int]]]] = {}
            tables = self._empty_tables()
            # a first version's rows go straight into the tables' lists (the ingest path: ~17
            # resources a message, so what is done per resource is written out here once)
            add_hash, add_date = tables["ix_hash"].append, tables["ix_date"].append
            add_string, add_quantity = tables["ix_string"].append, tables["ix_quantity"].append
            add_insert = inserts.append
            hashers, dumps, dumps_ranges = self._hashers, fhirjson.dumps, orjson.dumps
            for rec, rows, previous in items:
                rtype = rec.type
                if previous is not None and previous.key is not None:
                    rid = previous.key
                    target = self._empty_tables()
                    if rows is not None:
                        sortkeys: str | None = dumps(rows.sort).decode()
                        keys: Collection[tuple[int, int]] = self._hasher(rtype).keys(rows, rids)
                        ranges = self._collect(target, rid, rtype, rows)
                    else:
                        sortkeys, keys, ranges = None, (), None
                    replaced[rid] = (rtype, target, keys)
                    given[(rtype, rec.id)] = rid
                    updates.append((rec.version, rec.updated, int(rec.deleted), rec.body, sortkeys, _pack(keys),
                                    ranges, rid))
                    rec.key = rid
                    continue
                rid = next_rid
                next_rid += 1
                if rows is None:
                    sortkeys, blob, ranges = None, PAIRS, None
                else:
                    hasher = hashers.get(rtype) or self._hasher(rtype)
                    sortkeys = dumps(rows.sort).decode()
                    keys = hasher.keys(rows, rids)
                    if keys:
                        blob = _packer(2 * len(keys)).pack(*_flat(keys)) + PAIRS
                        for h, q in keys:
                            add_hash((h, rid, q))
                    else:
                        blob = PAIRS
                    dates, strings, quantities = rows.dates, rows.strings, rows.quantities
                    if dates or strings or quantities:  # as _collect
                        hp = hasher.hp
                        for p, lo, hi in dates:
                            add_date((hp[p], lo, hi, rid))
                        for p, n, raw in strings:
                            add_string((hp[p], n, raw, rid))
                        for p, v, system, code in quantities:
                            add_quantity((hp[p], v, system, code, rid))
                        ranges = dumps_ranges((dates, strings, quantities)).decode()
                    else:
                        ranges = None
                add_insert((rid, rtype, rec.id, rec.version, rec.updated, int(rec.deleted), rec.body,
                            sortkeys, blob, ranges, id_hash(rtype, rec.id)))
                given[(rtype, rec.id)] = rid
                rec.key = rid
            if replaced:
                self._replace_rows(replaced, tables)
                gone = [(rid,) for rid in replaced]
                conn.executemany("INSERT INTO fhir_history (type, id, version, updated, deleted, body) "
                                 "SELECT type, id, version, updated, deleted, body FROM fhir_resource WHERE rid = ?",
                                 gone)
                conn.executemany("UPDATE fhir_resource SET version = ?, updated = ?, deleted = ?, body = ?, "
                                 "sortkeys = ?, hkeys = ?, ranges = ? WHERE rid = ?", updates)
            if inserts:
                conn.executemany("INSERT INTO fhir_resource (rid, type, id, version, updated, deleted, body, sortkeys, "
                                 "hkeys, ranges, idh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserts)
            self._insert_rows(tables)

    def _target_rids(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]],
                     next_rid: int, given: dict[tuple[str, str], int]) -> TargetRids | None:
        """The rids of the resources the put's by-target references name (``BY_TARGET``): those of
        the put itself (the rids ``put_many`` gives them, in its order), those the transaction's
        earlier puts gave or found (remembered until the transaction ends or anything in it is
        rolled back: a rid given in a rolled-back block may be given again to another resource),
        and the stored ones (one statement for the rest). None when the put has no by-target
        parameter. ``given``: ``_given_rids()``, which this fills (the same dict ``put_many``
        adds to: reading it twice could clear it in between, past its bound)."""
        rids = given  # the transaction's puts before this one (put_many adds each)
        for rec, _rows, _prev in items:
            if rec.type in BY_TARGET:
                break
        else:
            return None
        for rec, _rows, previous in items:  # this put's own, a target after the resource naming it
            if previous is not None and previous.key is not None:
                rids[(rec.type, rec.id)] = previous.key
            else:
                rids[(rec.type, rec.id)] = next_rid
                next_rid += 1
        wanted: dict[tuple[str, str], None] = {}
        for rec, rows, _prev in items:
            if rows is None or rec.type not in BY_TARGET:
                continue
            specs = self._hasher(rec.type).by_target
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
        out: dict[tuple[str, str], int] = {}
        conn = self.store.conn
        for start in range(0, len(keys), 300):
            chunk = keys[start : start + 300]
            for found_type, found_id, rid in conn.execute(
                    f"SELECT r.type, r.id, r.rid FROM (VALUES {','.join(['(?, ?, ?)'] * len(chunk))}) k "
                    "CROSS JOIN fhir_resource r ON r.idh = k.column1 AND r.type = k.column2 AND r.id = k.column3",
                    [v for rtype, id_ in chunk for v in (id_hash(rtype, id_), rtype, id_)]):
                out[(found_type, found_id)] = rid
        return out

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

    # -- queries --------------------------------------------------------------------------------
    def _search_params(self) -> SearchParams:
        if self._params is None:  # bound by the repository; a bare backend reads the shipped list
            from engine.repository.searchparams import load

            self._params = load()
        return self._params

    def _narrowed(self, rtype: str | None) -> Mapping[str, tuple[str, str]]:
        return self._search_params().narrowed(rtype) if rtype else _NONE

    def _folded(self, rtype: str | None) -> Mapping[str, tuple[str, ...]]:
        return self._search_params().folded(rtype) if rtype else _NO_FOLDS

    def _hasher(self, rtype: str) -> RowHasher:
        hasher = self._hashers.get(rtype)
        if hasher is None:
            if len(self._hashers) >= 512:
                self._hashers.clear()
            hasher = self._hashers[rtype] = RowHasher(rtype, self._narrowed(rtype))
        return hasher

    def _compartment(self, q: Query, correlated: bool) -> tuple[list[str], list[Any]]:
        """The parts of "in one of these Patients' compartments" (to be ORed): the reference rows
        ``Patient/<id>`` of the type's compartment parameters (a narrowed one, ``patient``, read
        under its wider parameter), and the Patients themselves. Each part is a subquery of
        ``rid``, or (``correlated``) a condition on the resource row ``r``."""
        params = self._search_params()
        assert q.compartment is not None
        pids = sorted(q.compartment)
        types = [q.type] if q.type else (list(q.types) if q.types is not None else [*params.compartment, "Patient"])
        hashes: list[int] = []
        for rtype in dict.fromkeys(types):
            narrowed = params.narrowed(rtype)
            for p in params.compartment_params(rtype):
                base, target = narrowed.get(p, (p, ""))
                param = base if target == "Patient" else p
                hashes.extend(ref_hash(rtype, param, pid) for pid in pids)
        parts: list[str] = []
        values: list[Any] = []
        if hashes:
            marks = ",".join("?" * len(hashes))
            parts.append(f"EXISTS (SELECT 1 FROM ix_hash c WHERE c.h IN ({marks}) AND c.q = ? AND c.rid = r.rid)"
                         if correlated else f"SELECT rid FROM ix_hash WHERE h IN ({marks}) AND q = ?")
            values += [*hashes, qualifier_hash("Patient")]
        if "Patient" in types:
            marks = ",".join("?" * len(pids))
            parts.append(f"(r.type = 'Patient' AND r.id IN ({marks}))" if correlated
                         else f"SELECT rid FROM fhir_resource WHERE idh IN ({marks}) AND type = 'Patient' AND id IN ({marks})")
            values += pids if correlated else [*(id_hash("Patient", pid) for pid in pids), *pids]
        return parts, values

    @staticmethod
    def _key(cond: TokenCond | RefCond | UriCond, rtype: str | None) -> tuple[int, int | None]:
        """``(h, q)`` of an equality condition; ``q`` None when any qualifier matches (a code in
        any system, a bare id of any target type)."""
        if rtype is None:
            raise ValueError(f"{cond} needs a resource type")
        if isinstance(cond, TokenCond):
            if cond.code is None:  # system|: rows only where enabled (the parser refuses it elsewhere)
                return system_hash(rtype, cond.param, cond.system or ""), None
            return (token_hash(rtype, cond.param, cond.code),
                    None if cond.system is None else qualifier_hash(cond.system))
        if isinstance(cond, RefCond):
            return (ref_hash(rtype, cond.param, cond.rid),
                    None if cond.rtype is None else qualifier_hash(cond.rtype))
        return uri_hash(rtype, cond.param, cond.uri), None

    def _cond(self, cond: Cond, a: str, rtype: str | None, stored: bool = False) -> tuple[str, str, list[Any]]:
        """(table, WHERE over alias ``a``, parameters); table ``fhir_resource`` for the conditions
        answered from the resource row itself. ``stored``: a range condition over the rows the
        resource row records (``a`` an element of ``json_each(r.ranges, '$[<table>]')``, its
        parameter and values by position), for a correlated check: the range tables are keyed
        for lookup."""
        if isinstance(cond, (TokenCond, RefCond, UriCond)):
            h, q = self._key(cond, rtype)
            if q is None:
                return "ix_hash", f"{a}.h = ?", [h]
            return "ix_hash", f"{a}.h = ? AND {a}.q = ?", [h, q]
        if isinstance(cond, ExistsCond):
            if cond.param in UNINDEXED:
                return "fhir_resource", "1", []
            return "fhir_resource", f"json_type({a}.sortkeys, {_json_key(cond.param)}) IS NOT NULL", []
        if isinstance(cond, DateCond) and cond.param == "_lastUpdated":
            sql, params = _updated_sql(cond, f"{a}.updated")
            return "fhir_resource", sql, params
        if rtype is None:
            raise ValueError(f"{cond} needs a resource type")
        if isinstance(cond, DateCond):
            table = "ix_date"
        elif isinstance(cond, StringCond):
            table = "ix_string"
        elif isinstance(cond, QuantityCond):
            table = "ix_quantity"
        else:
            raise TypeError(cond)
        # a string parameter with parts (``StringCond.parts``): its rows or theirs, one scan
        names = cond.params if isinstance(cond, StringCond) else (cond.param,)
        test = "= ?" if len(names) == 1 else f"IN ({','.join('?' * len(names))})"
        if stored:
            col = {c: f"({a}.value ->> {i})" for i, c in enumerate(_RANGE_VALUES[table], start=1)}
            sql, params = f"({a}.value ->> 0) {test}", list(names)
        else:
            col = {c: f"{a}.{c}" for c in _RANGE_VALUES[table]}
            sql, params = f"{a}.hp {test}", [param_hash(rtype, name) for name in names]
        if isinstance(cond, DateCond):
            bounds = date_bounds(cond)
            sql += "".join(f" AND {col[c]} {op} ?" for c, op, _v in bounds)
            return table, sql, [*params, *(v for _c, _o, v in bounds)]
        if isinstance(cond, StringCond):
            if cond.mode == "exact":
                return table, f"{sql} AND {col['norm']} = ? AND {col['raw']} = ?", [
                    *params, normalise(cond.value), cond.value]
            if cond.mode == "contains":
                return table, f"{sql} AND instr({col['norm']}, ?) > 0", [*params, cond.value]
            return table, f"{sql} AND {col['norm']} >= ? AND {col['norm']} < ?", [
                *params, cond.value, cond.value + "\U0010ffff"]
        value = col["value"]
        expr = {
            "eq": (f"{value} >= ? AND {value} < ?", [cond.lo, cond.hi]),
            "gt": (f"{value} > ?", [cond.lo]), "sa": (f"{value} > ?", [cond.lo]),
            "lt": (f"{value} < ?", [cond.lo]), "eb": (f"{value} < ?", [cond.lo]),
            "ge": (f"{value} >= ?", [cond.lo]), "le": (f"{value} <= ?", [cond.lo]),
        }[cond.prefix]
        sql, params = f"{sql} AND {expr[0]}", [*params, *expr[1]]
        if cond.system is not None:
            sql += f" AND {col['system']} = ?"
            params.append(cond.system)
        if cond.code is not None:
            sql += f" AND {col['code']} = ?"
            params.append(cond.code)
        return table, sql, params

    def _target_conds(self, cond: Cond, rtype: str | None) -> str | None:
        """The by-target parameter (``BY_TARGET``) whose rows keyed by the target's rid may hold
        ``cond``'s reference, or None (not such a parameter, a URL, a type left hashed)."""
        if (rtype is None or not isinstance(cond, RefCond) or cond.param not in BY_TARGET.get(rtype, ())
                or cond.rtype == "" or cond.rtype in self._hasher(rtype).by_target[cond.param][2]):
            return None
        return cond.param

    def _by_target(self, param: str, conds: Sequence[RefCond], rtype: str, a: str) -> tuple[str, list[Any]] | None:
        """The rows of the by-target parameter ``param`` of ``rtype`` that reference any of
        ``conds`` keyed by the target's rid (WHERE over the ``ix_hash`` alias ``a``), or None when
        there can be none. The targets' rids are read in the same statement: a ``(type, id)`` is
        one ``idh`` probe, a bare id one per type the store holds. Rows written while their
        target was not stored are hashed, so a search reads both (``_cond`` the hashed ones)."""
        base, mark, kept = self._hasher(rtype).by_target[param]
        types: list[str] | None = None
        triples: list[Any] = []
        for cond in conds:
            if cond.rtype is not None:
                triples += [id_hash(cond.rtype, cond.rid), cond.rtype, cond.rid]
                continue
            if types is None:
                types = [t for t in self._stored_types() if t not in kept]
            for t in types:
                triples += [id_hash(t, cond.rid), t, cond.rid]
        if not triples:
            return None
        values = ",".join(["(?, ?, ?)"] * (len(triples) // 3))
        return (f"{a}.h IN (SELECT ? + t.rid FROM (VALUES {values}) k CROSS JOIN fhir_resource t "
                f"ON t.idh = k.column1 AND t.type = k.column2 AND t.id = k.column3) AND {a}.q = ?",
                [base, *triples, mark])

    def _stored_types(self) -> list[str]:
        """The resource types the store holds, by a skip scan of the ``(type, updated)`` index (a
        probe per type, not a scan of the rows)."""
        return [t for (t,) in self.store.query(
            "WITH RECURSIVE s(t) AS (SELECT min(type) FROM fhir_resource UNION ALL "
            "SELECT (SELECT min(type) FROM fhir_resource WHERE type > s.t) FROM s WHERE s.t IS NOT NULL) "
            "SELECT t FROM s WHERE t IS NOT NULL")]

    def _driver(self, clause: Clause, rtype: str | None) -> tuple[str, list[Any]]:
        """A subquery yielding the distinct ``rid``s matching one (positive) clause."""
        parts, params = [], []
        targets: dict[str, list[RefCond]] = {}
        for cond in widen(clause, self._narrowed(rtype), self._folded(rtype)):
            param = self._target_conds(cond, rtype)
            if param is not None:
                targets.setdefault(param, []).append(cond)  # type: ignore[arg-type]
            if isinstance(cond, IdCond):
                marks = ",".join("?" * len(cond.ids))
                sql = f"SELECT rid FROM fhir_resource WHERE id IN ({marks})"
                p: list[Any] = list(cond.ids)
                if rtype:
                    sql += f" AND type = ? AND idh IN ({marks})"
                    p += [rtype, *(id_hash(rtype, i) for i in cond.ids)]
            else:
                table, where, p = self._cond(cond, "x", rtype)
                sql = f"SELECT x.rid FROM {table} x WHERE "
                if table == "fhir_resource" and rtype:
                    sql += "x.type = ? AND "
                    p = [rtype, *p]
                sql += where
            parts.append(sql)
            params.extend(p)
        for param, conds in targets.items():
            by_target = self._by_target(param, conds, rtype, "x")  # type: ignore[arg-type]
            if by_target is not None:
                parts.append(f"SELECT x.rid FROM ix_hash x WHERE {by_target[0]}")
                params.extend(by_target[1])
        if len(parts) == 1:
            return "SELECT DISTINCT rid FROM (" + parts[0] + ")", params
        if len(parts) <= _COMPOUND:
            return " UNION ".join(parts), params
        # SQLite refuses a compound SELECT of more than 500 terms ("too many terms"): a chain or a
        # _revinclude over up to 1,000 matches is one alternative each, so they are nested
        return " UNION ".join(f"SELECT rid FROM ({' UNION '.join(parts[at : at + _COMPOUND])})"
                              for at in range(0, len(parts), _COMPOUND)), params

    def _filter(self, clause: Clause, rtype: str | None) -> tuple[str, list[Any]]:
        alts, params = [], []
        targets: dict[str, list[RefCond]] = {}
        for cond in widen(clause, self._narrowed(rtype), self._folded(rtype)):
            param = self._target_conds(cond, rtype)
            if param is not None:
                targets.setdefault(param, []).append(cond)  # type: ignore[arg-type]
            if isinstance(cond, IdCond):
                alts.append(f"r.id IN ({','.join('?' * len(cond.ids))})")
                params.extend(cond.ids)
                continue
            ranged = isinstance(cond, (DateCond, StringCond, QuantityCond)) and not _on_resource(cond)
            table, where, p = self._cond(cond, "r" if _on_resource(cond) else "x", rtype, stored=ranged)
            if table == "fhir_resource":
                alts.append(f"({where})")
            elif ranged:  # the resource row's own rows: no probe of a table keyed for lookup
                alts.append(f"EXISTS (SELECT 1 FROM json_each(r.ranges, '$[{_RANGE_AT[table]}]') x WHERE {where})")
            else:
                alts.append(f"EXISTS (SELECT 1 FROM {table} x WHERE x.rid = r.rid AND {where})")
            params.extend(p)
        for param, conds in targets.items():
            by_target = self._by_target(param, conds, rtype, "x")  # type: ignore[arg-type]
            if by_target is not None:
                alts.append(f"EXISTS (SELECT 1 FROM ix_hash x WHERE x.rid = r.rid AND {by_target[0]})")
                params.extend(by_target[1])
        sql = _any(alts) if alts else "0"
        return ("NOT " + sql if clause.negate else sql), params

    def _sql(self, q: Query, select: str) -> tuple[str, list[Any]]:
        self._check_layout()
        clauses = list(q.clauses)
        if any(not c.alternatives and not c.negate for c in clauses):
            return f"SELECT {select} FROM fhir_resource r WHERE 0", []
        positive = sorted((c for c in clauses if not c.negate), key=selectivity)
        params: list[Any] = []
        where = ["r.deleted = 0"]
        if positive:
            driver, dp = self._driver(positive[0], q.type)
            clauses.remove(positive[0])
            source = f"({driver}) d CROSS JOIN fhir_resource r ON r.rid = d.rid"
            params.extend(dp)
        elif q.compartment is not None:
            parts, values = self._compartment(q, correlated=False)
            if not parts:
                return f"SELECT {select} FROM fhir_resource r WHERE 0", []
            source = f"({' UNION '.join(parts)}) d CROSS JOIN fhir_resource r ON r.rid = d.rid"
            params.extend(values)
        else:
            source = "fhir_resource r"
        if q.type:
            where.append("r.type = ?")
            params.append(q.type)
        elif q.types is not None:
            where.append(f"r.type IN ({','.join('?' * len(q.types))})")
            params.extend(q.types)
        if q.compartment is not None and positive:  # (without a clause the compartment drove the query)
            parts, values = self._compartment(q, correlated=True)
            where.append("(" + " OR ".join(parts) + ")" if parts else "0")
            params.extend(values)
        for clause in clauses:
            sql, p = self._filter(clause, q.type)
            where.append(sql)
            params.extend(p)
        return f"SELECT {select} FROM {source} WHERE {' AND '.join(where)}", params

    def search(self, query: Query) -> list[StoredResource]:
        sql, params = self._sql(query, _COLS)
        order = [_sort_sql(p, d) for p, d in query.sort] + ["r.rid"]
        sql += " ORDER BY " + ", ".join(order)
        if query.limit is not None or query.offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if query.limit is None else query.limit, query.offset]
        return [self._rec(r) for r in self.store.query(sql, params)]

    def count(self, query: Query) -> int:
        sql, params = self._sql(query, "1")
        return int(self.store.query(f"SELECT count(*) FROM ({sql})", params)[0][0])


def _on_resource(cond: Cond) -> bool:
    """Answered from the ``fhir_resource`` row itself (no index table)."""
    return isinstance(cond, ExistsCond) or isinstance(cond, DateCond) and cond.param == "_lastUpdated"


def _sort_sql(param: str, desc: bool) -> str:
    direction = "DESC" if desc else "ASC"
    if param == "_id":
        return f"r.id {direction}"
    if param == "_lastUpdated":
        return f"r.updated {direction}"
    return f"json_extract(r.sortkeys, {_json_key(param)}) {direction}"
