"""Search on the SQLite FHIR layout (``sqlite_fhir``): a parsed ``Query`` compiled into one
SELECT over ``fhir_resource`` and the index tables, and the reads of the resource rows it finds.

A query starts from its most selective clause (``query.selectivity``), forced with ``CROSS
JOIN`` so the planner cannot choose a full scan without statistics, and checks the other
clauses with ``EXISTS`` probes on ``ix_hash`` (one primary-key probe) or on the resource row's
own ``ranges`` (the range tables are keyed for lookup, not by ``rid``). ``_lastUpdated`` is
answered from ``fhir_resource.tu`` within a type (``updated`` across types), ``:missing`` and
``_sort`` from its ``sortkeys``; a type's rows are a range of ``tu`` (``SqliteSearch._of_type``).

A mixin of ``SqliteFhirBackend``, which holds the store and the bound search parameters.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from operator import is_
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.errors import BadRequest
from engine.repository.indexing import normalise
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
from engine.repository.sqlite_rows import (
    _COLS,
    _NO_FOLDS,
    _NONE,
    _RANGE_AT,
    _RANGE_VALUES,
    BY_TARGET,
    TU_SHIFT,
    TU_SPAN,
    UNINDEXED,
    LayoutError,
    RowHasher,
    id_hash,
    param_hash,
    qualifier_hash,
    ref_hash,
    system_hash,
    token_hash,
    type_span,
    uri_hash,
)

if TYPE_CHECKING:
    from engine.repository.searchparams import SearchParams
    from engine.repository.sqlite_store import SqliteStore

_VALUES_KEYS = 100  # by-target keys bound as a VALUES table; more are one JSON variable
_COMPOUND = 400  # terms of one compound SELECT (SQLite's limit is 500)
_REFERRING = 150  # targets of one ``referring`` statement: up to 5 values bound each, under even the old limit of 999
_CARRYING = 400  # tokens of one ``carrying`` statement: two values bound each, under even the old limit of 999
_CARRYING_ONE = (f"SELECT {_COLS} FROM ix_hash x CROSS JOIN fhir_resource r ON r.rid = x.rid "
                 "WHERE x.h = ? AND x.q = ? AND r.deleted = 0 AND r.type = ? ORDER BY r.id, r.rid")


class _TargetRows(NamedTuple):
    """By-target ``ix_hash`` rows of one clause (``SqliteSearch._widened``): WHERE over alias ``x``."""

    where: str
    params: list[Any]


def _any(alts: Sequence[str]) -> str:
    """``alts`` joined by OR, nested in groups of ``_COMPOUND``: SQLite parses a flat OR as a tree
    as deep as its terms and refuses one deeper than 1,000 ("Expression tree is too large"), which
    a chained clause over ~1,000 matches made (one alternative each)."""
    if len(alts) <= _COMPOUND:
        return "(" + " OR ".join(alts) + ")"
    return _any([_any(alts[at : at + _COMPOUND]) for at in range(0, len(alts), _COMPOUND)])


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


def _tu_sql(cond: DateCond, col: str, rtype: str) -> tuple[str, list[Any]]:
    """``_updated_sql`` within ``rtype`` on layout 9's integer column ``col`` (``tu``: the type's
    code, then ``updated`` in milliseconds, ``sqlite_rows.updated_key``): the same instants kept,
    as one range of the ``tu`` index inside the type's span, both ends given (a bound beyond the
    span is its end), so the scan never leaves the type."""
    lo, hi = type_span(rtype)
    lo_c, hi_f = _ms_ceil(cond.lo), _ms_floor(cond.hi)

    def at(ms: int) -> int:
        return lo + (0 if ms < 0 else ms if ms < TU_SPAN else TU_SPAN)

    if cond.prefix == "eq":
        return f"{col} >= ? AND {col} < ?", [at(lo_c), at(hi_f)]
    if cond.prefix in ("gt", "sa", "ge"):
        bound = {"gt": hi_f, "sa": _ms_ceil(cond.hi), "ge": min(lo_c, hi_f)}[cond.prefix]
        return f"{col} >= ? AND {col} < ?", [at(bound), hi]
    bound = {"lt": lo_c, "eb": _ms_floor(cond.lo), "le": max(lo_c, hi_f)}[cond.prefix]
    return f"{col} >= ? AND {col} < ?", [lo, at(bound)]


def _json_key(param: str) -> str:
    safe = param.replace('"', "").replace("'", "")
    return f"'$.\"{safe}\"'"


class SqliteSearch:
    """The queries of ``SqliteFhirBackend`` (see module docstring)."""

    store: SqliteStore
    legacy: bool  # a store of an earlier layout, not migrated yet (``SqliteFhirBackend.bind``)
    _params: SearchParams | None
    _hashers: dict[str, RowHasher]
    _compiled: threading.local  # .last: the query compiled last on this thread (``_sql``)
    _sole: tuple[SearchParams, frozenset[str]]  # ``_sole_types``: for the parameter list bound

    def _check_layout(self) -> None:
        if self.legacy:
            raise LayoutError(f"{self.store.path}: FHIR storage of an earlier layout; it is migrated when the "
                              "repository opens it (FhirRepository binds the backend)")

    @staticmethod
    def _rec(row: Sequence[Any]) -> StoredResource:
        rid, rtype, id_, version, updated, deleted, body, writer = row
        return StoredResource(rtype, id_, version, updated, bool(deleted), body, key=rid, writer=writer)

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
        types = self._compartment_types(q)
        hashes: list[int] = []
        for rtype in types:
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

    def _compartment_types(self, q: Query) -> list[str]:
        """The types a compartment-wide query ``q`` can answer: its type, its ``_type`` list, or every
        type of the Patient compartment and Patient itself (no repeats, in order)."""
        if q.type:
            return [q.type]
        return list(dict.fromkeys(q.types if q.types is not None else [*self._search_params().compartment, "Patient"]))

    def _across_types(self, q: Query) -> list[str] | None:
        """The types whose ``tu`` spans a cross-type ``_lastUpdated`` driver reads (``_driver``): a
        compartment's, or a ``_type`` list's; None where no list bounds the query (``r.updated``
        compared, as layout 8 did)."""
        if q.type:
            return None
        if q.compartment is not None:
            return self._compartment_types(q)
        return None if q.types is None else list(dict.fromkeys(q.types))

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
            sql, params = _updated_sql(cond, f"{a}.updated") if rtype is None else _tu_sql(cond, f"{a}.tu", rtype)
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
        there can be none. The targets' rids are read in the same statement (one snapshot: a rid
        read apart could be an expunged target's, given again): a ``(type, id)`` is one ``idh``
        probe, a bare id one per type it can name (``_bare_types``). Up to ``_VALUES_KEYS`` keys
        are a ``VALUES`` table (the quickest); more are one JSON text, one SQL variable whatever
        their number: a long list must not pass the connection's variable limit (storefix28).
        Rows written while their target was not stored are hashed, so a search reads both
        (``_cond`` the hashed ones)."""
        base, mark, _kept = self._hasher(rtype).by_target[param]
        types: list[str] | None = None
        keys: list[tuple[int, str, str]] = []
        for cond in conds:
            if cond.rtype is not None:
                keys.append((id_hash(cond.rtype, cond.rid), cond.rtype, cond.rid))
                continue
            if types is None:
                types = self._bare_types(rtype, param)
            keys += [(id_hash(t, cond.rid), t, cond.rid) for t in types]
        if not keys:
            return None
        if len(keys) <= _VALUES_KEYS:
            source = f"(VALUES {','.join(['(?, ?, ?)'] * len(keys))}) k"
            on = "t.idh = k.column1 AND t.type = k.column2 AND t.id = k.column3"
            values: list[Any] = [v for key in keys for v in key]
        else:
            source = "json_each(?) k"
            on = "t.idh = k.value ->> 0 AND t.type = k.value ->> 1 AND t.id = k.value ->> 2"
            values = [json.dumps(keys, separators=(",", ":"))]
        return (f"{a}.h IN (SELECT ? + t.rid FROM {source} CROSS JOIN fhir_resource t ON {on}) AND {a}.q = ?",
                [base, *values, mark])

    def _bare_types(self, rtype: str, param: str) -> list[str]:
        """The types a bare id of ``param`` can name among those the store holds, less those its
        rows leave hashed: the parameter's R4 target types when it names some (a report's
        ``result``: Observation; the write path's validation refuses a reference to another
        type), else every stored type (a Provenance's ``target``: any resource). One type, not
        the ~12 a county store holds, is what keeps a bare-id ``result`` search as quick as
        layout 6's hashed rows (twelve ``idh`` probes and keys an id were 1.5 -> 4.3 ms for 100)."""
        kept = self._hasher(rtype).by_target[param][2]
        spec = self._search_params().definitions(rtype).get(param)
        named = frozenset(spec.target) if spec is not None and "Resource" not in spec.target else None
        if named is not None and len(named) <= 1:
            return [t for t in named if t not in kept]
        return [t for t in self._stored_types() if t not in kept and (named is None or t in named)]

    def _of_type(self, a: str, rtype: str) -> tuple[str, list[Any]]:
        """The rows of ``rtype`` over alias ``a``, read as one range of the ``tu`` index (its span,
        ``type_span``). Their ``type`` is checked too only when another resource type the
        deployment knows shares the type's code (``_sole_types``): none of R4's 146 does (tested),
        and a check of each row's text cost a type scan ~15 % (2,000 Patients: a count 155 -> 186
        us), where layout 8's index held the type itself."""
        lo, hi = type_span(rtype)
        if rtype in self._sole_types():
            return f"{a}.tu >= ? AND {a}.tu < ?", [lo, hi]
        return f"{a}.tu >= ? AND {a}.tu < ? AND {a}.type = ?", [lo, hi, rtype]

    def _sole_types(self) -> frozenset[str]:
        """The resource types of the bound parameter list whose ``tu`` code no other of them has."""
        params = self._search_params()
        known = getattr(self, "_sole", None)
        if known is None or known[0] is not params:
            spans = {t: type_span(t) for t in params.resource_types}
            codes = collections.Counter(spans.values())
            known = self._sole = (params, frozenset(t for t, span in spans.items() if codes[span] == 1))
        return known[1]

    def _stored_types(self) -> list[str]:
        """The resource types the store holds, by a skip scan of the ``tu`` index over the types'
        codes (a probe per type, not a scan of the rows), each named by its first row; sorted."""
        return sorted(t for (t,) in self.store.query(
            f"WITH RECURSIVE s(c) AS (SELECT min(tu) >> {TU_SHIFT} FROM fhir_resource UNION ALL "
            f"SELECT (SELECT min(tu) FROM fhir_resource WHERE tu >= (s.c + 1) << {TU_SHIFT}) >> {TU_SHIFT} "
            "FROM s WHERE s.c IS NOT NULL) "
            f"SELECT (SELECT type FROM fhir_resource WHERE tu >= s.c << {TU_SHIFT} ORDER BY tu LIMIT 1) "
            "FROM s WHERE s.c IS NOT NULL"))

    def _widened(self, clause: Clause, rtype: str | None) -> Iterator[Cond | _TargetRows]:
        """``clause``'s alternatives widened (``widen``), each as it comes, then, per by-target
        parameter among them (``_target_conds``), its ``ix_hash`` rows keyed by the targets' rids
        (``_by_target``, over the alias ``x``): what ``_driver`` and ``_filter`` each wrap their own way."""
        targets: dict[str, list[RefCond]] = {}
        decided: dict[tuple[str, str | None], str | None] = {}  # (param, target type) -> _target_conds
        for cond in widen(clause, self._narrowed(rtype), self._folded(rtype)):
            if not isinstance(cond, RefCond):
                yield cond
                continue
            key = (cond.param, cond.rtype)
            param = decided[key] if key in decided else decided.setdefault(key, self._target_conds(cond, rtype))
            if param is not None:
                targets.setdefault(param, []).append(cond)  # type: ignore[arg-type]
            yield cond
        for param, conds in targets.items():
            found = self._by_target(param, conds, rtype, "x")  # type: ignore[arg-type]
            if found is not None:
                yield _TargetRows(*found)

    def _driver(self, clause: Clause, rtype: str | None,
                types: Sequence[str] | None = None) -> tuple[str, list[Any]]:
        """A subquery yielding the distinct ``rid``s matching one (positive) clause. ``types``: across
        types (``rtype`` None), those a ``_lastUpdated`` is read for, one ``tu`` range each, OR'd
        (SQLite's MULTI-INDEX OR): layout 9 has no index on ``updated``, and comparing the text read
        every resource row, bodies and all (``$everything?_since=`` over 100,000 rows 55.6 ms,
        rv41h); the rows found are the type's rows the compartment or ``_type`` then checks."""
        parts, params, hashed = [], [], []
        for cond in self._widened(clause, rtype):
            if isinstance(cond, _TargetRows):
                parts.append(f"SELECT x.rid FROM ix_hash x WHERE {cond.where}")
                params.extend(cond.params)
                continue
            if isinstance(cond, IdCond):
                marks = ",".join("?" * len(cond.ids))
                sql = f"SELECT rid FROM fhir_resource WHERE id IN ({marks})"
                p: list[Any] = list(cond.ids)
                if rtype:
                    sql += f" AND type = ? AND idh IN ({marks})"
                    p += [rtype, *(id_hash(rtype, i) for i in cond.ids)]
            elif rtype is None and types is not None and isinstance(cond, DateCond) and cond.param == "_lastUpdated":
                spans = [_tu_sql(cond, "x.tu", t) for t in types]
                sql = "SELECT x.rid FROM fhir_resource x WHERE " + (
                    " OR ".join(f"({where})" for where, _ in spans) if spans else "0")
                p = [v for _, values in spans for v in values]
            else:
                table, where, p = self._cond(cond, "x", rtype)
                if where == "x.h = ?" and table == "ix_hash":  # a bare value of any qualifier: one IN below
                    hashed.append(p[0])
                    continue
                sql = f"SELECT x.rid FROM {table} x WHERE "
                # (a ``_lastUpdated`` is a range within the type's span already, ``_tu_sql``: read
                # from the index alone, the row's type checked on ``r``)
                if table == "fhir_resource" and rtype and not isinstance(cond, DateCond):
                    of_type, typed = self._of_type("x", rtype)
                    sql += of_type + " AND "
                    p = [*typed, *p]
                sql += where
            parts.append(sql)
            params.extend(p)
        if hashed:  # one term, not one a value: a UNION term each was a temporary B-tree merge each
            parts.append(f"SELECT x.rid FROM ix_hash x WHERE x.h IN ({','.join('?' * len(hashed))})"
                         if len(hashed) > 1 else "SELECT x.rid FROM ix_hash x WHERE x.h = ?")
            params.extend(hashed)
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
        for cond in self._widened(clause, rtype):
            if isinstance(cond, _TargetRows):
                alts.append(f"EXISTS (SELECT 1 FROM ix_hash x WHERE x.rid = r.rid AND {cond.where})")
                params.extend(cond.params)
                continue
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
        sql = _any(alts) if alts else "0"
        return ("NOT " + sql if clause.negate else sql), params

    def _sql(self, q: Query, select: str) -> tuple[str, list[Any]]:
        """``SELECT select`` of the rows matching ``q``. The FROM and WHERE of the query compiled
        last on this thread are kept (``_compiled``): a search whose page is full is counted next
        (``Searching.run``: the same clauses), and compiling it again was a third of a long list's
        search -- 100 bare ``result`` ids, ~0.3 ms of ~2.2 (twenty-ninth round, storeleft29)."""
        self._check_layout()
        last = getattr(self._compiled, "last", None)
        if (last is not None and last[0] == (q.type, q.compartment, q.types) and len(last[1]) == len(q.clauses)
                and all(map(is_, last[1], q.clauses))):  # not a generator: one left early raises GeneratorExit
            return f"SELECT {select} FROM {last[2]}", list(last[3])
        body, params = self._from_where(q)
        self._compiled.last = ((q.type, q.compartment, q.types), tuple(q.clauses), body, tuple(params))
        return f"SELECT {select} FROM {body}", params

    def _from_where(self, q: Query) -> tuple[str, list[Any]]:
        """The FROM and WHERE of ``q``'s statement (``_sql``), alias ``r`` the resource row."""
        clauses = list(q.clauses)
        if any(not c.alternatives and not c.negate for c in clauses):
            return "fhir_resource r WHERE 0", []
        positive = sorted((c for c in clauses if not c.negate), key=selectivity)
        params: list[Any] = []
        where = ["r.deleted = 0"]
        if positive:
            driver, dp = self._driver(positive[0], q.type, self._across_types(q))
            clauses.remove(positive[0])
            source = f"({driver}) d CROSS JOIN fhir_resource r ON r.rid = d.rid"
            params.extend(dp)
        elif q.compartment is not None:
            parts, values = self._compartment(q, correlated=False)
            if not parts:
                return "fhir_resource r WHERE 0", []
            source = f"({' UNION '.join(parts)}) d CROSS JOIN fhir_resource r ON r.rid = d.rid"
            params.extend(values)
        else:
            source = "fhir_resource r"
        if q.type and source == "fhir_resource r":  # a type scan: a range of the ``tu`` index
            of_type, typed = self._of_type("r", q.type)
            where.append(of_type)
            params.extend(typed)
        elif q.type:  # (the rows found by rid: their type checked, as layout 8 did)
            where.append("r.type = ?")
            params.append(q.type)
        elif q.types is not None:  # (a scan: each type a range of the index, the planner's OR of ranges)
            where.append(f"r.type IN ({','.join('?' * len(q.types))})")
            params.extend(q.types)
            if q.types and source == "fhir_resource r":
                where.append("(" + " OR ".join(["r.tu >= ? AND r.tu < ?"] * len(q.types)) + ")")
                params.extend(v for t in q.types for v in type_span(t))
        if q.compartment is not None and positive:  # (without a clause the compartment drove the query)
            parts, values = self._compartment(q, correlated=True)
            where.append("(" + " OR ".join(parts) + ")" if parts else "0")
            params.extend(values)
        for clause in clauses:
            sql, p = self._filter(clause, q.type)
            where.append(sql)
            params.extend(p)
        return f"{source} WHERE {' AND '.join(where)}", params

    def search(self, query: Query) -> list[StoredResource]:
        sql, params = self._sql(query, _COLS)
        order = [_sort_sql(p, d, query.type) for p, d in query.sort] + ["r.rid"]
        sql += " ORDER BY " + ", ".join(order)
        if query.limit is not None or query.offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if query.limit is None else query.limit, query.offset]
        return [self._rec(r) for r in self._run(sql, params)]

    def referring(self, rtype: str, param: str, targets: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.referring``: the rows ``search`` of ``param=T1/a,T2/b,...`` reads -- each
        target's hashed row ``(h, q)`` and, for a by-target parameter (a Provenance's ``target``), its
        row keyed by the target's rid, read in the same statement as ``_by_target`` does -- as one
        statement of two ``VALUES`` joins, ``_REFERRING`` targets a statement. Why not ``search``: a
        Provenance search naming a message's twelve results cost as much as eight plain searches,
        the general compiler's work per value (``_widened``, ``_from_where``), not SQLite's."""
        self._check_layout()
        narrowed = self._narrowed(rtype)
        by_target = self._hasher(rtype).by_target
        wide = narrowed.get(param)
        unique = list(dict.fromkeys(targets))
        found: dict[int, StoredResource] = {}
        for start in range(0, len(unique), _REFERRING):
            hashed: list[Any] = []
            keyed: dict[str, list[Any]] = {}
            for ttype, tid in unique[start : start + _REFERRING]:
                code = wide[0] if wide is not None and wide[1] == ttype else param  # ``query.widen``
                hashed += (ref_hash(rtype, code, tid), qualifier_hash(ttype))
                spec = by_target.get(code)
                if spec is not None and ttype and ttype not in spec[2]:  # ``_target_conds``
                    keyed.setdefault(code, []).extend((id_hash(ttype, tid), ttype, tid))
            parts = [f"SELECT x.rid FROM (VALUES {','.join(['(?, ?)'] * (len(hashed) // 2))}) k "
                     "CROSS JOIN ix_hash x ON x.h = k.column1 AND x.q = k.column2"]
            params = hashed
            for code, keys in keyed.items():
                base, mark, _kept = by_target[code]
                parts.append(f"SELECT x.rid FROM (VALUES {','.join(['(?, ?, ?)'] * (len(keys) // 3))}) k "
                             "CROSS JOIN fhir_resource t ON t.idh = k.column1 AND t.type = k.column2 AND t.id = k.column3 "
                             "CROSS JOIN ix_hash x ON x.h = ? + t.rid AND x.q = ?")
                params += [*keys, base, mark]
            rows = self._run(f"SELECT {_COLS} FROM ({' UNION '.join(parts)}) d CROSS JOIN fhir_resource r "
                             "ON r.rid = d.rid WHERE r.deleted = 0 AND r.type = ? ORDER BY r.rid", [*params, rtype])
            for row in rows:
                found[row[0]] = self._rec(row)
        return list(found.values()) if len(unique) <= _REFERRING else [found[rid] for rid in sorted(found)]

    def count(self, query: Query) -> int:
        sql, params = self._sql(query, "1")
        return int(self._run(f"SELECT count(*) FROM ({sql})", params)[0][0])

    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A search's statement; one needing more values than SQLite binds in a statement (a
        client's POST ``_search`` of thousands of ids: its body is not bounded by a URL) is the
        client's 400 naming the limit, not a 500 (storefix28)."""
        try:
            return self.store.query(sql, params)
        except sqlite3.OperationalError as exc:
            if "too many SQL variables" not in str(exc):
                raise
            raise BadRequest(f"the search needs {len(params)} values bound, more than the store's limit of "
                             f"{self.store.variable_limit()} SQL variables a statement: split it into smaller searches",
                             code="too-costly") from exc

    def carrying(self, rtype: str, param: str, tokens: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.carrying``: each token's ``ix_hash`` rows ``(h, q)`` -- the key a search of
        ``param=system|code`` reads (``_key``) -- as one ``VALUES`` join, ``_CARRYING`` tokens a
        statement, the resource rows in id order (``_sort=_id``: then the rowid). Why not ``search``:
        the owner's check of a record filed anew (``adapters.convert.persons._every_patient``) paid the
        query's parsing and the general compiler (``_widened``, ``_from_where``) for one primary-key
        probe, ~2.3 % of a first version's CPU (thirty-seventh round, perfi37)."""
        self._check_layout()
        keys = list(dict.fromkeys(self._key(TokenCond(param, system, code), rtype) for system, code in tokens))
        if len(keys) == 1:  # (the owner's check of a record: one number, one system -- a join of the row alone)
            return [self._rec(row) for row in self._run(_CARRYING_ONE, [*keys[0], rtype])]
        found: dict[int, StoredResource] = {}
        for start in range(0, len(keys), _CARRYING):
            part = keys[start : start + _CARRYING]
            rows = self._run(f"SELECT {_COLS} FROM (SELECT DISTINCT x.rid FROM (VALUES {','.join(['(?, ?)'] * len(part))}) k "
                             "CROSS JOIN ix_hash x ON x.h = k.column1 AND x.q = k.column2) d CROSS JOIN fhir_resource r "
                             "ON r.rid = d.rid WHERE r.deleted = 0 AND r.type = ? ORDER BY r.id, r.rid",
                             [*(v for key in part for v in key), rtype])
            for row in rows:
                found[row[0]] = self._rec(row)
        recs = list(found.values())
        return recs if len(keys) <= _CARRYING else sorted(recs, key=lambda r: (r.id, r.key))


def _on_resource(cond: Cond) -> bool:
    """Answered from the ``fhir_resource`` row itself (no index table)."""
    return isinstance(cond, ExistsCond) or isinstance(cond, DateCond) and cond.param == "_lastUpdated"


def _sort_sql(param: str, desc: bool, rtype: str | None) -> str:
    """``ORDER BY`` term of ``_sort=param``; ``_lastUpdated`` within one type by ``tu`` (the
    same order as ``updated``'s, and the index's), across types by ``updated``."""
    direction = "DESC" if desc else "ASC"
    if param == "_id":
        return f"r.id {direction}"
    if param == "_lastUpdated":
        return f"r.{'tu' if rtype else 'updated'} {direction}"
    return f"json_extract(r.sortkeys, {_json_key(param)}) {direction}"
