"""FHIR storage on SQLite: current versions, history, and one index table per parameter type.

Tables (created at start, idempotently):

* ``fhir_resource(rid, type, id, version, updated, deleted, body, sortkeys)`` — the current
  version of each resource, ``body`` the exact JSON bytes; ``sortkeys`` the first value of each
  parameter (JSON) for ``_sort``.
* ``fhir_history(type, id, version, ...)`` — every version, for vread and ``_history``.
* ``ix_token``, ``ix_ref``, ``ix_date``, ``ix_string``, ``ix_quantity``, ``ix_uri``, ``ix_comp`` —
  index rows, each table clustered on ``(rid, param, ...)`` (``WITHOUT ROWID``: the table is
  itself the index the correlated checks and deletes use) with one lookup index led by
  ``(type, param, value)``, so the identifier and subject/code hot paths are single range scans.

A query starts from its most selective clause (``query.selectivity``), forced with
``CROSS JOIN`` so the planner cannot choose a full scan without statistics, and checks the other
clauses with ``EXISTS`` probes on the ``rid`` indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from engine.repository.indexing import IndexRows
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
    selectivity,
)

if TYPE_CHECKING:
    from engine.repository.sqlite_store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_resource (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, UNIQUE (type, id));
CREATE INDEX IF NOT EXISTS fhir_resource_type ON fhir_resource (type);
CREATE INDEX IF NOT EXISTS fhir_resource_updated ON fhir_resource (type, updated);
CREATE TABLE IF NOT EXISTS fhir_history (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL, body BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS fhir_history_version ON fhir_history (type, id, version);
CREATE TABLE IF NOT EXISTS ix_token (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT NOT NULL, code TEXT NOT NULL, PRIMARY KEY (rid, param, code, system)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_token_lookup ON ix_token (type, param, code, system);
CREATE TABLE IF NOT EXISTS ix_ref (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    rtype TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (rid, param, ref, rtype)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_ref_lookup ON ix_ref (type, param, ref, rtype);
CREATE TABLE IF NOT EXISTS ix_date (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_date_lookup ON ix_date (type, param, lo);
CREATE TABLE IF NOT EXISTS ix_string (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    norm TEXT NOT NULL, raw TEXT NOT NULL, PRIMARY KEY (rid, param, norm, raw)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_string_lookup ON ix_string (type, param, norm);
CREATE TABLE IF NOT EXISTS ix_quantity (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
    PRIMARY KEY (rid, param, value, system, code)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_quantity_lookup ON ix_quantity (type, param, value);
CREATE TABLE IF NOT EXISTS ix_uri (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    uri TEXT NOT NULL, PRIMARY KEY (rid, param, uri)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_uri_lookup ON ix_uri (type, param, uri);
CREATE TABLE IF NOT EXISTS ix_comp (rid INTEGER NOT NULL, pid TEXT NOT NULL, PRIMARY KEY (rid, pid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_comp_lookup ON ix_comp (pid);
"""

_INDEX_TABLES = ("ix_token", "ix_ref", "ix_date", "ix_string", "ix_quantity", "ix_uri", "ix_comp")
_KIND_TABLE = {"token": "ix_token", "reference": "ix_ref", "date": "ix_date", "string": "ix_string",
               "quantity": "ix_quantity", "uri": "ix_uri"}
_COLS = "r.rid, r.type, r.id, r.version, r.updated, r.deleted, r.body"


def _cond(cond: Cond, a: str) -> tuple[str, str, list[Any]]:
    """(index table, WHERE over alias ``a`` without the type/rid part, parameters)."""
    if isinstance(cond, TokenCond):
        sql, params = f"{a}.param = ?", [cond.param]
        if cond.code is not None:
            sql += f" AND {a}.code = ?"
            params.append(cond.code)
        if cond.system is not None:
            sql += f" AND {a}.system = ?"
            params.append(cond.system)
        return "ix_token", sql, params
    if isinstance(cond, RefCond):
        sql, params = f"{a}.param = ? AND {a}.ref = ?", [cond.param, cond.rid]
        if cond.rtype is not None:
            sql += f" AND {a}.rtype = ?"
            params.append(cond.rtype)
        return "ix_ref", sql, params
    if isinstance(cond, DateCond):
        lo, hi = cond.lo, cond.hi
        expr = {
            "eq": (f"{a}.lo >= ? AND {a}.hi <= ?", [lo, hi]),
            "gt": (f"{a}.hi > ?", [hi]),
            "lt": (f"{a}.lo < ?", [lo]),
            "ge": (f"({a}.lo >= ? OR {a}.hi > ?)", [lo, hi]),
            "le": (f"({a}.lo < ? OR {a}.hi <= ?)", [lo, hi]),
            "sa": (f"{a}.lo >= ?", [hi]),
            "eb": (f"{a}.hi <= ?", [lo]),
        }[cond.prefix]
        return "ix_date", f"{a}.param = ? AND " + expr[0], [cond.param, *expr[1]]
    if isinstance(cond, StringCond):
        if cond.mode == "exact":
            return "ix_string", f"{a}.param = ? AND {a}.raw = ?", [cond.param, cond.value]
        if cond.mode == "contains":
            return "ix_string", f"{a}.param = ? AND instr({a}.norm, ?) > 0", [cond.param, cond.value]
        return "ix_string", f"{a}.param = ? AND {a}.norm >= ? AND {a}.norm < ?", [
            cond.param, cond.value, cond.value + "\U0010ffff"]
    if isinstance(cond, QuantityCond):
        expr = {
            "eq": (f"{a}.value >= ? AND {a}.value < ?", [cond.lo, cond.hi]),
            "gt": (f"{a}.value > ?", [cond.lo]), "sa": (f"{a}.value > ?", [cond.lo]),
            "lt": (f"{a}.value < ?", [cond.lo]), "eb": (f"{a}.value < ?", [cond.lo]),
            "ge": (f"{a}.value >= ?", [cond.lo]), "le": (f"{a}.value <= ?", [cond.lo]),
        }[cond.prefix]
        sql, params = f"{a}.param = ? AND " + expr[0], [cond.param, *expr[1]]
        if cond.system is not None:
            sql += f" AND {a}.system = ?"
            params.append(cond.system)
        if cond.code is not None:
            sql += f" AND {a}.code = ?"
            params.append(cond.code)
        return "ix_quantity", sql, params
    if isinstance(cond, UriCond):
        return "ix_uri", f"{a}.param = ? AND {a}.uri = ?", [cond.param, cond.uri]
    if isinstance(cond, ExistsCond):
        return _KIND_TABLE[cond.kind], f"{a}.param = ?", [cond.param]
    raise TypeError(cond)


def _driver(clause: Clause, rtype: str | None) -> tuple[str, list[Any]]:
    """A subquery yielding the distinct ``rid``s matching one (positive) clause."""
    parts, params = [], []
    for cond in clause.alternatives:
        if isinstance(cond, IdCond):
            sql = f"SELECT rid FROM fhir_resource WHERE id IN ({','.join('?' * len(cond.ids))})"
            p: list[Any] = list(cond.ids)
            if rtype:
                sql += " AND type = ?"
                p.append(rtype)
        else:
            table, where, p = _cond(cond, "x")
            sql = f"SELECT x.rid FROM {table} x WHERE "
            if rtype:
                sql += "x.type = ? AND "
                p = [rtype, *p]
            sql += where
        parts.append(sql)
        params.extend(p)
    if len(parts) == 1:
        return "SELECT DISTINCT rid FROM (" + parts[0] + ")", params
    return " UNION ".join(parts), params


def _filter(clause: Clause) -> tuple[str, list[Any]]:
    alts, params = [], []
    for cond in clause.alternatives:
        if isinstance(cond, IdCond):
            alts.append(f"r.id IN ({','.join('?' * len(cond.ids))})")
            params.extend(cond.ids)
        else:
            table, where, p = _cond(cond, "x")
            alts.append(f"EXISTS (SELECT 1 FROM {table} x WHERE x.rid = r.rid AND {where})")
            params.extend(p)
    sql = "(" + " OR ".join(alts) + ")" if alts else "0"
    return ("NOT " + sql if clause.negate else sql), params


def _sort_sql(param: str, desc: bool) -> str:
    direction = "DESC" if desc else "ASC"
    if param == "_id":
        return f"r.id {direction}"
    if param == "_lastUpdated":
        return f"r.updated {direction}"
    safe = param.replace('"', "").replace("'", "")
    return f"json_extract(r.sortkeys, '$.\"{safe}\"') {direction}"


class SqliteFhirBackend:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        with store.lock:
            store.conn.executescript(SCHEMA)

    @staticmethod
    def _rec(row: Sequence[Any]) -> StoredResource:
        rid, rtype, id_, version, updated, deleted, body = row
        return StoredResource(rtype, id_, version, updated, bool(deleted), body, key=rid)

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        rows = self.store.query(f"SELECT {_COLS} FROM fhir_resource r WHERE r.type = ? AND r.id = ?", (rtype, rid))
        return self._rec(rows[0]) if rows else None

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        out: dict[tuple[str, str], StoredResource] = {}
        by_type: dict[str, list[str]] = {}
        for t, i in keys:
            by_type.setdefault(t, []).append(i)
        for t, ids in by_type.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = self.store.query(
                    f"SELECT {_COLS} FROM fhir_resource r WHERE r.type = ? AND r.id IN ({','.join('?' * len(chunk))})",
                    [t, *chunk],
                )
                for row in rows:
                    rec = self._rec(row)
                    out[(rec.type, rec.id)] = rec
        return out

    def version(self, rtype: str, rid: str, version: int) -> StoredResource | None:
        rows = self.store.query(
            "SELECT NULL, type, id, version, updated, deleted, body FROM fhir_history "
            "WHERE type = ? AND id = ? AND version = ?", (rtype, rid, version))
        return self._rec(rows[0]) if rows else None

    def history(self, rtype: str, rid: str) -> list[StoredResource]:
        rows = self.store.query(
            "SELECT NULL, type, id, version, updated, deleted, body FROM fhir_history "
            "WHERE type = ? AND id = ? ORDER BY version DESC", (rtype, rid))
        return [self._rec(r) for r in rows]

    def put(self, rec: StoredResource, rows: IndexRows | None, previous: StoredResource | None) -> None:
        store = self.store
        if not store.in_transaction:
            with store.transaction():
                self.put(rec, rows, previous)
            return
        with store.lock:
            conn = store.conn
            sortkeys = orjson.dumps(rows.sort).decode() if rows is not None else None
            if previous is not None and previous.key is not None:
                rid = previous.key
                conn.execute(
                    "UPDATE fhir_resource SET version = ?, updated = ?, deleted = ?, body = ?, sortkeys = ? "
                    "WHERE rid = ?", (rec.version, rec.updated, int(rec.deleted), rec.body, sortkeys, rid))
                for table in _INDEX_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))
            else:
                cur = conn.execute(
                    "INSERT INTO fhir_resource (type, id, version, updated, deleted, body, sortkeys) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (rec.type, rec.id, rec.version, rec.updated, int(rec.deleted), rec.body, sortkeys))
                rid = cur.lastrowid
            rec.key = rid
            conn.execute(
                "INSERT INTO fhir_history (type, id, version, updated, deleted, body) VALUES (?, ?, ?, ?, ?, ?)",
                (rec.type, rec.id, rec.version, rec.updated, int(rec.deleted), rec.body))
            if rows is None:
                return
            t = rec.type
            if rows.tokens:
                conn.executemany("INSERT OR IGNORE INTO ix_token VALUES (?, ?, ?, ?, ?)", [(rid, t, *r) for r in rows.tokens])
            if rows.refs:
                conn.executemany("INSERT OR IGNORE INTO ix_ref VALUES (?, ?, ?, ?, ?)", [(rid, t, *r) for r in rows.refs])
            if rows.dates:
                conn.executemany("INSERT OR IGNORE INTO ix_date VALUES (?, ?, ?, ?, ?)", [(rid, t, *r) for r in rows.dates])
            if rows.strings:
                conn.executemany("INSERT OR IGNORE INTO ix_string VALUES (?, ?, ?, ?, ?)", [(rid, t, *r) for r in rows.strings])
            if rows.quantities:
                conn.executemany("INSERT OR IGNORE INTO ix_quantity VALUES (?, ?, ?, ?, ?, ?)",
                                 [(rid, t, *r) for r in rows.quantities])
            if rows.uris:
                conn.executemany("INSERT OR IGNORE INTO ix_uri VALUES (?, ?, ?, ?)", [(rid, t, *r) for r in rows.uris])
            if rows.compartments:
                conn.executemany("INSERT OR IGNORE INTO ix_comp VALUES (?, ?)", [(rid, p) for p in rows.compartments])

    def put_many(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> None:
        """Several ``put``s with one ``executemany`` per table (the group-commit path of ingest).

        New rows get their ``rid`` from ``max(rid) + 1`` onwards: safe because the caller holds the
        one write transaction (and the store lock) for the whole call.
        """
        store = self.store
        if not store.in_transaction:
            with store.transaction():
                self.put_many(items)
            return
        with store.lock:
            conn = store.conn
            next_rid = (conn.execute("SELECT max(rid) FROM fhir_resource").fetchone()[0] or 0) + 1
            inserts, updates, stale, history = [], [], [], []
            tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _INDEX_TABLES}
            for rec, rows, previous in items:
                sortkeys = orjson.dumps(rows.sort).decode() if rows is not None else None
                if previous is not None and previous.key is not None:
                    rid = previous.key
                    updates.append((rec.version, rec.updated, int(rec.deleted), rec.body, sortkeys, rid))
                    stale.append((rid,))
                else:
                    rid = next_rid
                    next_rid += 1
                    inserts.append((rid, rec.type, rec.id, rec.version, rec.updated, int(rec.deleted), rec.body,
                                    sortkeys))
                rec.key = rid
                history.append((rec.type, rec.id, rec.version, rec.updated, int(rec.deleted), rec.body))
                if rows is None:
                    continue
                t = rec.type
                tables["ix_token"].extend((rid, t, *r) for r in rows.tokens)
                tables["ix_ref"].extend((rid, t, *r) for r in rows.refs)
                tables["ix_date"].extend((rid, t, *r) for r in rows.dates)
                tables["ix_string"].extend((rid, t, *r) for r in rows.strings)
                tables["ix_quantity"].extend((rid, t, *r) for r in rows.quantities)
                tables["ix_uri"].extend((rid, t, *r) for r in rows.uris)
                tables["ix_comp"].extend((rid, p) for p in rows.compartments)
            if inserts:
                conn.executemany("INSERT INTO fhir_resource (rid, type, id, version, updated, deleted, body, sortkeys) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", inserts)
            if updates:
                conn.executemany("UPDATE fhir_resource SET version = ?, updated = ?, deleted = ?, body = ?, "
                                 "sortkeys = ? WHERE rid = ?", updates)
                for table in _INDEX_TABLES:
                    conn.executemany(f"DELETE FROM {table} WHERE rid = ?", stale)
            conn.executemany("INSERT INTO fhir_history (type, id, version, updated, deleted, body) "
                             "VALUES (?, ?, ?, ?, ?, ?)", history)
            for table, values in tables.items():
                if values:
                    marks = ", ".join("?" * len(values[0]))
                    conn.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", values)

    def _sql(self, q: Query, select: str) -> tuple[str, list[Any]]:
        clauses = list(q.clauses)
        if any(not c.alternatives and not c.negate for c in clauses):
            return f"SELECT {select} FROM fhir_resource r WHERE 0", []
        positive = sorted((c for c in clauses if not c.negate), key=selectivity)
        params: list[Any] = []
        where = ["r.deleted = 0"]
        if positive:
            driver, dp = _driver(positive[0], q.type)
            clauses.remove(positive[0])
            source = f"({driver}) d CROSS JOIN fhir_resource r ON r.rid = d.rid"
            params.extend(dp)
        elif q.compartment is not None:
            pids = sorted(q.compartment)
            source = (f"(SELECT DISTINCT rid FROM ix_comp WHERE pid IN ({','.join('?' * len(pids))})) d "
                      "CROSS JOIN fhir_resource r ON r.rid = d.rid")
            params.extend(pids)
        else:
            source = "fhir_resource r"
        if q.type:
            where.append("r.type = ?")
            params.append(q.type)
        elif q.types is not None:
            where.append(f"r.type IN ({','.join('?' * len(q.types))})")
            params.extend(q.types)
        if q.compartment is not None:
            pids = sorted(q.compartment)
            where.append(f"EXISTS (SELECT 1 FROM ix_comp c WHERE c.rid = r.rid AND c.pid IN ({','.join('?' * len(pids))}))")
            params.extend(pids)
        for clause in clauses:
            sql, p = _filter(clause)
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
