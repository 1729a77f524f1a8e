"""FHIR storage on MongoDB: ``fhir_current`` (one document per resource, index values embedded)
and ``fhir_history`` (every version).

Index values live in arrays inside the current document so one multikey index answers each
parameter kind: tokens and references as compact keys (``param␟system␟code``, with ``*`` for
"any system" / "any code" / "any type", so ``code=718-7``, ``code=http://loinc.org|718-7`` and
``subject=123`` are all single-key lookups), dates, strings and quantities as small subdocuments
matched with ``$elemMatch``. ``srt`` holds one value per parameter for ``_sort``; the compound
index ``(type, ref, srt.date)`` serves "latest result of this patient" directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pymongo

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
    date_bounds,
)

if TYPE_CHECKING:
    from engine.repository.mongo_store import MongoStore

SEP = "\x1f"
_MONGO_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_FIELDS = {"_id": 0, "type": 1, "id": 1, "version": 1, "updated": 1, "deleted": 1, "body": 1}


def _token_keys(p: str, s: str, c: str) -> list[str]:
    return [f"{p}{SEP}{s}{SEP}{c}", f"{p}{SEP}*{SEP}{c}", f"{p}{SEP}{s}{SEP}*"]


def _doc_indexes(rows: IndexRows) -> dict[str, Any]:
    tok: set[str] = set()
    for p, s, c in rows.tokens:
        tok.update(_token_keys(p, s, c))
    ref: set[str] = set()
    for p, rt, rid in rows.refs:
        ref.add(f"{p}{SEP}{rt}{SEP}{rid}")
        ref.add(f"{p}{SEP}*{SEP}{rid}")
    has = {r[0] for r in rows.tokens} | {r[0] for r in rows.refs} | {r[0] for r in rows.dates}
    has |= {r[0] for r in rows.strings} | {r[0] for r in rows.quantities} | {r[0] for r in rows.uris}
    return {
        "tok": sorted(tok),
        "ref": sorted(ref),
        "dt": [{"p": p, "lo": lo, "hi": hi} for p, lo, hi in rows.dates],
        "st": [{"p": p, "n": n, "r": r} for p, n, r in rows.strings],
        "qt": [{"p": p, "v": v, "s": s, "c": c} for p, v, s, c in rows.quantities],
        "uri": sorted({f"{p}{SEP}{u}" for p, u in rows.uris}),
        "comp": sorted(rows.compartments),
        "has": sorted(has),
        "srt": rows.sort,
    }


def _cond(cond: Cond) -> dict[str, Any]:
    if isinstance(cond, TokenCond):
        system = "*" if cond.system is None else cond.system
        code = "*" if cond.code is None else cond.code
        return {"tok": f"{cond.param}{SEP}{system}{SEP}{code}"}
    if isinstance(cond, RefCond):
        rtype = "*" if cond.rtype is None else cond.rtype
        return {"ref": f"{cond.param}{SEP}{rtype}{SEP}{cond.rid}"}
    if isinstance(cond, DateCond):
        match: dict[str, Any] = {"p": cond.param}
        for col, op, value in date_bounds(cond):
            match.setdefault(col, {})[_MONGO_OPS[op]] = value
        return {"dt": {"$elemMatch": match}}
    if isinstance(cond, StringCond):
        if cond.mode == "exact":
            return {"st": {"$elemMatch": {"p": cond.param, "r": cond.value}}}
        pattern = re.escape(cond.value)
        if cond.mode == "start":
            pattern = "^" + pattern
        return {"st": {"$elemMatch": {"p": cond.param, "n": {"$regex": pattern}}}}
    if isinstance(cond, QuantityCond):
        value: dict[str, Any] = {
            "eq": {"$gte": cond.lo, "$lt": cond.hi}, "gt": {"$gt": cond.lo}, "sa": {"$gt": cond.lo},
            "lt": {"$lt": cond.lo}, "eb": {"$lt": cond.lo}, "ge": {"$gte": cond.lo}, "le": {"$lte": cond.lo},
        }[cond.prefix]
        match = {"p": cond.param, "v": value}
        if cond.system is not None:
            match["s"] = cond.system
        if cond.code is not None:
            match["c"] = cond.code
        return {"qt": {"$elemMatch": match}}
    if isinstance(cond, UriCond):
        return {"uri": f"{cond.param}{SEP}{cond.uri}"}
    if isinstance(cond, IdCond):
        return {"id": {"$in": list(cond.ids)}}
    if isinstance(cond, ExistsCond):
        return {"has": cond.param}
    raise TypeError(cond)


def _clause(clause: Clause) -> dict[str, Any]:
    alts = [_cond(c) for c in clause.alternatives]
    if not alts:
        expr: dict[str, Any] = {"_id": {"$in": []}}
    elif len(alts) == 1:
        expr = alts[0]
    else:
        expr = {"$or": alts}
    return {"$nor": [expr]} if clause.negate else expr


def _sort_field(param: str) -> str:
    if param == "_id":
        return "id"
    if param == "_lastUpdated":
        return "updated"
    return "srt." + param.replace(".", "_").replace("$", "_")


class MongoFhirBackend:
    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.current_coll = store.db["fhir_current"]
        self.history_coll = store.db["fhir_history"]
        for keys in (
            [("type", 1), ("tok", 1)],
            [("type", 1), ("ref", 1), ("srt.date", 1)],
            [("type", 1), ("dt.p", 1), ("dt.lo", 1)],
            [("type", 1), ("dt.p", 1), ("dt.hi", 1)],  # ge/gt/eb bound the end of the range
            [("type", 1), ("st.p", 1), ("st.n", 1)],
            [("type", 1), ("qt.p", 1), ("qt.v", 1)],
            [("type", 1), ("uri", 1)],
            [("type", 1), ("has", 1)],
            [("type", 1), ("updated", 1)],
            [("comp", 1)],
        ):
            self.current_coll.create_index(keys)
        self.history_coll.create_index([("type", 1), ("id", 1), ("version", -1)])

    @staticmethod
    def _rec(doc: dict[str, Any]) -> StoredResource:
        return StoredResource(doc["type"], doc["id"], doc["version"], doc["updated"], bool(doc["deleted"]),
                              doc.get("body"), key=f"{doc['type']}/{doc['id']}")

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        doc = self.current_coll.find_one({"_id": f"{rtype}/{rid}"}, _FIELDS, **self.store.kw())
        return self._rec(doc) if doc else None

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        ids = [f"{t}/{i}" for t, i in keys]
        out = {}
        for start in range(0, len(ids), 1000):
            for doc in self.current_coll.find({"_id": {"$in": ids[start : start + 1000]}}, _FIELDS, **self.store.kw()):
                rec = self._rec(doc)
                out[(rec.type, rec.id)] = rec
        return out

    def version(self, rtype: str, rid: str, version: int) -> StoredResource | None:
        doc = self.history_coll.find_one({"_id": f"{rtype}/{rid}/{version}"}, **self.store.kw())
        return self._rec(doc) if doc else None

    def history(self, rtype: str, rid: str) -> list[StoredResource]:
        cursor = self.history_coll.find({"type": rtype, "id": rid}, **self.store.kw()).sort("version", pymongo.DESCENDING)
        return [self._rec(d) for d in cursor]

    def put(self, rec: StoredResource, rows: IndexRows | None, previous: StoredResource | None) -> None:
        key = f"{rec.type}/{rec.id}"
        doc: dict[str, Any] = {"_id": key, "type": rec.type, "id": rec.id, "version": rec.version,
                               "updated": rec.updated, "deleted": rec.deleted, "body": rec.body}
        if rows is not None:
            doc.update(_doc_indexes(rows))
        hist = {"_id": f"{key}/{rec.version}", "type": rec.type, "id": rec.id, "version": rec.version,
                "updated": rec.updated, "deleted": rec.deleted, "body": rec.body}
        with self.store.transaction():
            self.current_coll.replace_one({"_id": key}, doc, upsert=True, **self.store.kw())
            self.history_coll.replace_one({"_id": hist["_id"]}, hist, upsert=True, **self.store.kw())
        rec.key = key

    def put_many(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> None:
        with self.store.transaction():
            for rec, rows, previous in items:
                self.put(rec, rows, previous)

    def expunge(self, rtype: str, ids: Sequence[str]) -> int:
        """See ``FhirBackend.expunge``: the current documents (with their index fields) and every
        history document of these ids."""
        found = 0
        with self.store.transaction():
            for start in range(0, len(ids), 1000):
                chunk = list(ids[start : start + 1000])
                found += self.current_coll.delete_many({"_id": {"$in": [f"{rtype}/{i}" for i in chunk]}},
                                                       **self.store.kw()).deleted_count
                self.history_coll.delete_many({"type": rtype, "id": {"$in": chunk}}, **self.store.kw())
        return found

    def _filter(self, q: Query) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"deleted": False}]
        if q.type:
            parts.append({"type": q.type})
        elif q.types is not None:
            parts.append({"type": {"$in": list(q.types)}})
        if q.compartment is not None:
            parts.append({"comp": {"$in": sorted(q.compartment)}})
        parts.extend(_clause(c) for c in q.clauses)
        return {"$and": parts}

    def search(self, query: Query) -> list[StoredResource]:
        cursor = self.current_coll.find(self._filter(query), _FIELDS, **self.store.kw())
        sort = [(_sort_field(p), pymongo.DESCENDING if d else pymongo.ASCENDING) for p, d in query.sort]
        cursor = cursor.sort([*sort, ("_id", pymongo.ASCENDING)])
        if query.offset:
            cursor = cursor.skip(query.offset)
        if query.limit is not None:
            if query.limit <= 0:
                return []
            cursor = cursor.limit(query.limit)
        return [self._rec(d) for d in cursor]

    def count(self, query: Query) -> int:
        return int(self.current_coll.count_documents(self._filter(query), **self.store.kw()))
