"""The rows of the SQLite FHIR layout (``sqlite_fhir``) as keys: the 64-bit hashes of index
values, the ``(h, q)`` rows of ``ix_hash`` (``RowHasher``: the write path's, ``hash_keys``: the
layout's reading), their packing into ``fhir_resource.hkeys``, the range rows a resource row
records in ``ranges``, and the columns the tables have.

Why a module of its own: the write path (``sqlite_fhir``), the search (``sqlite_search``), the
migration and the tests all read these keys; each must compute them the same way, so they are
written once, below all of them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any

import orjson

from engine.repository.indexing import IndexRows

_RANGE_TABLES = ("ix_date", "ix_string", "ix_quantity")
_RANGE_COLUMNS = {"ix_date": ("hp", "lo", "hi", "rid"), "ix_string": ("hp", "norm", "raw", "rid"),
                  "ix_quantity": ("hp", "value", "system", "code", "rid")}  # each row its primary key
# a range row's values in ``fhir_resource.ranges`` (``[lo, hi]``, ...): the columns between ``hp`` and ``rid``
_RANGE_VALUES = {table: columns[1:-1] for table, columns in _RANGE_COLUMNS.items()}
_COLS = "r.rid, r.type, r.id, r.version, r.updated, r.deleted, r.body, r.writer"
NO_QUALIFIER = 0  # ``q`` of the rows whose value has no qualifier (URIs, system-only)
_SEP = "\x1f"
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


# ``fhir_resource.tu`` (layout 9): a resource type's code in the high bits, its ``updated`` in
# epoch milliseconds in the low ``TU_SHIFT`` (2^44 ms: up to the year 2527)
TU_SHIFT = 44
TU_SPAN = 1 << TU_SHIFT
_TYPE_BITS = 19  # 19 + 44 = 63: a tu is a non-negative SQLite INTEGER


@lru_cache(maxsize=1024)
def type_code(rtype: str) -> int:
    """A resource type's code in ``fhir_resource.tu``: 19 bits of its BLAKE2b hash, the same in
    every process and release (no table of codes to assign under the write lock and to lose with
    a rolled-back transaction). The 146 resource types of R4 have 146 distinct codes (tested,
    ``tests/test_perf41_tu_index``); a type scan checks the row's ``type`` too when another type
    the deployment knows has its code (``SqliteSearch._sole_types``), so a shared code would cost
    a scan of both, never answer one's rows for the other."""
    return h64(f"y{_SEP}{rtype}") & ((1 << _TYPE_BITS) - 1)


def type_span(rtype: str) -> tuple[int, int]:
    """``[lo, hi)`` of ``tu`` holding every row of ``rtype``: a type scan is this range."""
    lo = type_code(rtype) << TU_SHIFT
    return lo, lo + TU_SPAN


def updated_ms(updated: str) -> int:
    """Epoch milliseconds of an ``updated`` instant, clamped to ``[0, TU_SPAN)``: the versions huren
    writes (``VersionClock.now``: ``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC) to their millisecond, so their
    ``tu`` orders as their text did; any other ISO form (a store of an early layout) to its
    millisecond, an instant without an offset read as UTC. ``datetime``'s C parser, not
    ``strptime`` (whose Python runs ~30 k instructions a call)."""
    at = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    ms = (at - _EPOCH) // _MILLISECOND
    return 0 if ms < 0 else ms if ms < TU_SPAN else TU_SPAN - 1


_MILLISECOND = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_BASES: dict[str, int] = {}  # a type -> its code << TU_SHIFT
_MS: dict[str, int] = {}  # an ``updated`` -> ``updated_ms`` (a write group's versions share one instant)


def updated_key(rtype: str, updated: str) -> int:
    """``fhir_resource.tu`` of a version: ``(type_code << TU_SHIFT) | updated_ms``. Why one
    integer where layout 8 indexed ``(type, updated)``: that index's ~45-byte text key, compared
    field by field, was a quarter of a resource row's insert (perf40: 9.9 k instructions of 42 k
    a row); one integer does the same three jobs -- a type scan (``type_span``), ``_lastUpdated``
    within a type (a range of it), ``_sort=_lastUpdated`` within a type (its order). Two dict
    reads on the put's path: the instant is parsed once a write group, whose versions share it."""
    base = _BASES.get(rtype)
    if base is None:
        if len(_BASES) >= 1024:
            _BASES.clear()
        base = _BASES[rtype] = type_code(rtype) << TU_SHIFT
    ms = _MS.get(updated)
    if ms is None:
        if len(_MS) >= 4096:
            _MS.clear()
        ms = _MS[updated] = updated_ms(updated)
    return base | ms


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
# (``patient`` = ``target`` of type Patient: the compartment) stays hashed. A report's ``result``
# (layout 7, twenty-eighth round): indexed since the twenty-seventh round for the result labels,
# it named twelve new Observation ids a lab message, 12 of the message's ~26 equality values new
# to the store, each a random ``ix_hash`` page at scale; its results are in the same put.
BY_TARGET: Mapping[str, frozenset[str]] = {"Provenance": frozenset({"target"}),
                                           "DiagnosticReport": frozenset({"result"})}
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
