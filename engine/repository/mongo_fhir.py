"""FHIR storage on MongoDB: ``fhir_current`` (one document per resource, index values embedded)
and ``fhir_history`` (the superseded versions).

Index values live in arrays inside the current document so one multikey index answers each
parameter kind: tokens and references as one compact key per value, ordered from the most to
the least selective part (``param␟code␟system``, ``param␟id␟type``), so ``code=http://loinc.org|718-7``
and ``subject=Patient/123`` are exact key lookups and ``code=718-7`` or ``subject=123`` (any
system, any type) an anchored prefix match: one range of the same index, where the earlier
documents held two or three keys per value. ``sys`` holds ``param␟system`` only for the token
parameters the deployment enables ``system|`` searches on. Dates, strings and quantities are
small subdocuments matched with ``$elemMatch``. ``srt`` holds one value per parameter for
``_sort``; the compound index ``(type, ref, srt.date)`` serves "latest result of this patient".

A first version is written once, to ``fhir_current``; the version it replaces is copied to
``fhir_history`` when a later one arrives. Documents written before (every version in history,
the current one too) read the same: ``history`` merges both collections by version. Their index
keys (layout 1: ``param␟system␟code`` plus ``*`` forms) are rebuilt from the stored bodies when
the repository binds to the store, once (``fhir_meta`` records the layout).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pymongo

from engine import fhirjson
from engine.errors import ClaimRaced, Conflict, WrittenMeanwhile
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
    widen,
)

if TYPE_CHECKING:
    from engine.repository.indexing import Indexer
    from engine.repository.mongo_store import MongoStore
    from engine.repository.searchparams import SearchParams

log = logging.getLogger("huren.repository")
LAYOUT = 2  # fhir_meta "layout": one key per token / reference value, history of superseded versions

SEP = "\x1f"
_MONGO_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_FIELDS = {"_id": 0, "type": 1, "id": 1, "version": 1, "updated": 1, "deleted": 1, "body": 1, "writer": 1}


def _key(param: str, value: str, qualifier: str | None) -> str:
    return f"{param}{SEP}{value}{SEP}{qualifier}"


def _match(param: str, value: str, qualifier: str | None) -> Any:
    """An exact key, or (qualifier None: any system / any type) an anchored prefix of the key,
    which MongoDB answers as one range of the multikey index."""
    if qualifier is not None:
        return _key(param, value, qualifier)
    return {"$regex": "^" + re.escape(f"{param}{SEP}{value}{SEP}")}


_NONE: Mapping[str, tuple[str, str]] = {}
_NO_FOLDS: Mapping[str, tuple[str, ...]] = {}


def _doc_indexes(rows: IndexRows, narrowed: Mapping[str, tuple[str, str]] = _NONE,
                 folds: Mapping[str, tuple[str, ...]] = _NO_FOLDS) -> dict[str, Any]:
    """The index fields of a document; a ``narrowed`` parameter's references to its type are the
    wider parameter's keys already (``query.widen``). A string row left out for a part that
    states it (``Indexer``, ``SearchParams.folds``) still has its parameter in ``has``: a part's
    value is one of the wider parameter's, so that one is not missing."""
    tok = {_key(p, c, s) for p, s, c in rows.tokens}
    ref = {_key(p, rid, rt) for p, rt, rid in rows.refs if not (p in narrowed and narrowed[p][1] == rt)}
    has = {r[0] for r in rows.tokens} | {r[0] for r in rows.refs} | {r[0] for r in rows.dates}
    has |= {r[0] for r in rows.strings} | {r[0] for r in rows.quantities} | {r[0] for r in rows.uris}
    if folds:
        has |= {wide for r in rows.strings for wide in folds.get(r[0], ())}
    out: dict[str, Any] = {"sys": sorted({f"{p}{SEP}{s}" for p, s in rows.systems})} if rows.systems else {}
    return out | {
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
        if cond.code is None:  # system|: only where enabled (the parser refuses it elsewhere)
            return {"sys": f"{cond.param}{SEP}{cond.system or ''}"}
        return {"tok": _match(cond.param, cond.code, cond.system)}
    if isinstance(cond, RefCond):
        return {"ref": _match(cond.param, cond.rid, cond.rtype)}
    if isinstance(cond, DateCond):
        match: dict[str, Any] = {"p": cond.param}
        for col, op, value in date_bounds(cond):
            match.setdefault(col, {})[_MONGO_OPS[op]] = value
        return {"dt": {"$elemMatch": match}}
    if isinstance(cond, StringCond):
        # a string parameter with parts (``StringCond.parts``): its rows or theirs
        param: Any = cond.param if not cond.parts else {"$in": list(cond.params)}
        if cond.mode == "exact":
            return {"st": {"$elemMatch": {"p": param, "r": cond.value}}}
        pattern = re.escape(cond.value)
        if cond.mode == "start":
            pattern = "^" + pattern
        return {"st": {"$elemMatch": {"p": param, "n": {"$regex": pattern}}}}
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


def _clause(clause: Clause, narrowed: Mapping[str, tuple[str, str]],
            folded: Mapping[str, tuple[str, ...]] = _NO_FOLDS) -> dict[str, Any]:
    alts = [_cond(c) for c in widen(clause, narrowed, folded)]
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


# a claim of a create not stored yet, on a server without transactions (where a claim is seen
# before its resource), is taken for a failed create's after this long; and MongoDB's TTL monitor
# removes every claim this long after it was made (``claims_coll``'s index): longer than any create
CLAIM_TTL_SECONDS = 3600


def condition_key(rtype: str, condition: str) -> str:
    """The claim of a conditional create (``MongoFhirBackend.claim_condition``): the type and the
    condition as the matcher reads it (``searching.condition_text``: the pairs it keeps, sorted,
    once each), so spellings that match alike (``?a=1``, ``a=1&_count=1``, ``%7C`` for ``|``)
    claim alike; a different system alias still matches apart and claims apart."""
    from engine.repository.searching import condition_text

    return hashlib.sha256(f"{rtype}?{condition_text(condition)}".encode()).hexdigest()


def _raced(exc: BaseException) -> bool:
    """A claim's write refused because another claimed it at the same moment: a duplicate key (a
    racer's insert stored first), a write conflict (112: two transactions' writes of one document,
    or one committed after this one's snapshot), or any error labelled transient."""
    if isinstance(exc, pymongo.errors.DuplicateKeyError) or type(exc).__name__ == "DuplicateKeyError":
        return True
    return isinstance(exc, pymongo.errors.OperationFailure) and (
        exc.code in (11000, 112) or exc.has_error_label("TransientTransactionError"))


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
        # only documents with system| keys (parameters a deployment enables) carry the field
        self.current_coll.create_index([("sys", 1)], sparse=True)
        self.history_coll.create_index([("type", 1), ("id", 1), ("version", -1)])
        self.meta_coll = store.db["fhir_meta"]
        self.claims_coll = store.db["fhir_conditions"]  # conditional creates' claims: _id condition_key
        # claims are needed only while a create runs: MongoDB removes each an hour after it was
        # made (a TTL index; its monitor runs every 60 s), so the collection does not grow for good
        self.claims_coll.create_index([("made", 1)], expireAfterSeconds=CLAIM_TTL_SECONDS)
        self._params: SearchParams | None = None
        self._indexer: Indexer | None = None  # bound by the repository; rebuilds an undone put's index fields

    def _narrowed(self, rtype: str | None) -> Mapping[str, tuple[str, str]]:
        return self._params.narrowed(rtype) if self._params is not None and rtype else _NONE

    def _indexes(self, rtype: str, rows: IndexRows) -> dict[str, Any]:
        """``_doc_indexes`` with the type's narrowed references and string parts."""
        folds = self._params.folds(rtype) if self._params is not None else _NO_FOLDS
        return _doc_indexes(rows, self._narrowed(rtype), folds)

    def bind(self, params: SearchParams, indexer: Indexer) -> None:
        """Called by the repository: documents indexed by an earlier layout get their index keys
        rebuilt from the stored bodies (once; a new database is simply marked). ``params`` say
        which narrowed references are kept once."""
        self._params, self._indexer = params, indexer
        kw = self.store.kw()
        marker = self.meta_coll.find_one({"_id": "layout"}, **kw)
        # the marker's "index": the search parameter list the keys follow (SqliteFhirBackend._follow);
        # a marker without one (written before it was kept) is taken as following this list
        if (marker is not None and marker.get("version", 0) >= LAYOUT
                and marker.get("index", params.signature) == params.signature):
            if "index" not in marker:
                self.meta_coll.update_one({"_id": "layout"}, {"$set": {"index": params.signature}}, **kw)
            return
        if self.current_coll.find_one({}, {"_id": 1}, **kw) is not None:
            why = f"layout {LAYOUT}" if marker is None or marker.get("version", 0) < LAYOUT else "a changed search parameter list"
            log.warning("MongoDB: rebuilding the FHIR index keys for %s (once)", why)
            done = 0
            for doc in self.current_coll.find({"deleted": False}, {"_id": 1, "body": 1}, **kw):
                rows = indexer.rows(fhirjson.loads(doc["body"]))
                update: dict[str, Any] = {"$set": self._indexes(doc["_id"].split("/", 1)[0], rows)}
                if "sys" not in update["$set"]:  # the one optional key field: system| rows left out since
                    update["$unset"] = {"sys": ""}
                self.current_coll.update_one({"_id": doc["_id"]}, update, **kw)
                done += 1
            log.warning("MongoDB: FHIR index keys rebuilt for %d resources", done)
        self.meta_coll.replace_one({"_id": "layout"}, {"_id": "layout", "version": LAYOUT, "index": params.signature},
                                   upsert=True, **kw)

    @staticmethod
    def _rec(doc: dict[str, Any]) -> StoredResource:
        return StoredResource(doc["type"], doc["id"], doc["version"], doc["updated"], bool(doc["deleted"]),
                              doc.get("body"), key=f"{doc['type']}/{doc['id']}", writer=doc.get("writer"))

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        doc = self.current_coll.find_one({"_id": f"{rtype}/{rid}"}, _FIELDS, **self.store.kw())
        return self._rec(doc) if doc else None

    def deleted_keys(self) -> list[tuple[str, str]]:
        """Every record whose current version is a deletion (``SqliteFhirBackend.deleted_keys``)."""
        return [(d["type"], d["id"]) for d in
                self.current_coll.find({"deleted": True}, {"_id": 0, "type": 1, "id": 1}, **self.store.kw())]

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        ids = [f"{t}/{i}" for t, i in keys]
        out = {}
        for start in range(0, len(ids), 1000):
            for doc in self.current_coll.find({"_id": {"$in": ids[start : start + 1000]}}, _FIELDS, **self.store.kw()):
                rec = self._rec(doc)
                out[(rec.type, rec.id)] = rec
        return out

    def version(self, rtype: str, rid: str, version: int) -> StoredResource | None:
        doc = self.current_coll.find_one({"_id": f"{rtype}/{rid}", "version": version}, _FIELDS, **self.store.kw())
        if doc is None:
            doc = self.history_coll.find_one({"_id": f"{rtype}/{rid}/{version}"}, **self.store.kw())
        return self._rec(doc) if doc else None

    def history(self, rtype: str, rid: str) -> list[StoredResource]:
        docs = {d["version"]: d for d in self.history_coll.find({"type": rtype, "id": rid}, **self.store.kw())}
        current = self.current_coll.find_one({"_id": f"{rtype}/{rid}"}, _FIELDS, **self.store.kw())
        if current is not None:
            docs[current["version"]] = current
        return [self._rec(docs[v]) for v in sorted(docs, reverse=True)]

    def put(self, rec: StoredResource, rows: IndexRows | None, previous: StoredResource | None) -> None:
        key = f"{rec.type}/{rec.id}"
        doc: dict[str, Any] = {"_id": key, "type": rec.type, "id": rec.id, "version": rec.version,
                               "updated": rec.updated, "deleted": rec.deleted, "body": rec.body, "writer": rec.writer}
        if rows is not None:
            doc.update(self._indexes(rec.type, rows))
        with self.store.transaction():
            if previous is not None:  # the replaced version becomes history (upsert: older data has it)
                hist = {"_id": f"{key}/{previous.version}", "type": previous.type, "id": previous.id,
                        "version": previous.version, "updated": previous.updated, "deleted": previous.deleted,
                        "body": previous.body, "writer": previous.writer}
                self.history_coll.replace_one({"_id": hist["_id"]}, hist, upsert=True, **self.store.kw())
            self._replace_current(key, doc, previous)
            if (undo := self.store.undo) is not None:
                # named with the version put: what a failed undo leaves is that version
                # (``Ingestor._left_stored``, ``write_many(rewrite=...)``)
                undo.then(f"{key}/_history/{rec.version}", lambda: self._put_back(key, previous))
        rec.key = key

    def claim_condition(self, rtype: str, condition: str, rid: str,
                        again: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Claim ``condition`` of a conditional create (``If-None-Exist``, a ``PUT Type?search``
        that creates) whose search found no match, for the new ``rtype/rid``; or return the match
        ``again`` (that search, run again) finds once another create claimed it. Raises
        ``Conflict`` (409) while another create of the condition is under way, and ``ClaimRaced``
        (a 409 too) when a racer's claim was written at the same moment as this one.

        Why a claim: the search and the insert are under different ids, so two creates that both
        searched before either stored both created (txmend25 left it; a replica set's transaction
        snapshot does not see the other's insert, a standalone server has no transaction). The
        claim is one document whose ``_id`` is the condition (``condition_key``) in
        ``fhir_conditions``: ``_id`` is unique on every deployment, so of two claims one is refused.

        Why read first and never go on after a refused write: on a replica set a write error in a
        transaction -- a duplicate key included (SERVER-34059) -- aborts the transaction on the
        server, and every later operation of it fails (NoSuchTransaction): storeleft29 caught the
        duplicate key and read on, so the takeover of a stale claim answered 500 for good (the
        review, rvstoreleft29). So the claim is read first: none, it is inserted; one whose
        resource is gone or no longer matches, it is taken over by a compare-and-set on what was
        read (``ref``, ``at``). Either write refused (a duplicate key, a write conflict -- MongoDB
        manual, "In-progress Transactions and Write Conflicts" -- or a compare-and-set matching
        nothing) means a racer claimed it: ``ClaimRaced`` ends the block (the transaction aborts,
        a standalone block is undone) and the caller runs the interaction once more, in a new
        transaction, whose search sees the winner's resource (``Writes._claimed``).

        Under way or stale: on a replica set a claim and its resource are committed together, so
        a claim seen without its resource is never a create under way (its resource was expunged):
        taken over at once. Without transactions a claim is seen before its resource is stored, so
        one without its resource is under way (409) until ``CLAIM_TTL_SECONDS`` after it was made
        -- a failed create's claim is undone with its block; only a killed process leaves one. A
        claim whose resource is stored but no longer matches (changed, deleted, or not the
        caller's to see) is stale at any age. Written in the caller's transaction (or undone with
        its block on a standalone server)."""
        kw = self.store.kw()
        key = condition_key(rtype, condition)
        now = time.time()
        mine = {"ref": f"{rtype}/{rid}", "at": now, "made": datetime.fromtimestamp(now, UTC)}
        raced = f"another conditional create of {rtype}?{condition} claimed it at the same moment; try again"
        held = self.claims_coll.find_one({"_id": key}, **kw)
        if held is None:
            try:
                self.claims_coll.insert_one({"_id": key, **mine}, **kw)
            except pymongo.errors.PyMongoError as exc:
                if _raced(exc):
                    raise ClaimRaced(raced) from None
                raise
            if (undo := self.store.undo) is not None:
                undo.then(f"fhir_conditions/{key}", lambda: self.claims_coll.delete_one({"_id": key, "at": now}))
            return None
        # read before searching again: a resource stored only after this read is the racer's
        stored = self.current_coll.find_one({"_id": held.get("ref")}, {"deleted": 1}, **kw)
        found = again()
        if found is not None:
            return found
        if stored is None and not self.store.transactions and now - float(held.get("at", 0)) < CLAIM_TTL_SECONDS:
            raise Conflict(f"another conditional create of {rtype}?{condition} is under way; try again")
        # stale: the claimed resource no longer matches (changed, deleted, expunged, withheld from
        # this caller) or, without transactions, its create was killed over an hour ago
        try:
            done = self.claims_coll.replace_one({"_id": key, "ref": held.get("ref"), "at": held.get("at")},
                                                {"_id": key, **mine}, **kw)
        except pymongo.errors.PyMongoError as exc:
            if _raced(exc):
                raise ClaimRaced(raced) from None
            raise
        if done.matched_count == 0:  # (without transactions: a racer replaced or removed it meanwhile)
            raise ClaimRaced(raced)
        if (undo := self.store.undo) is not None:
            undo.then(f"fhir_conditions/{key}",
                      lambda: self.claims_coll.replace_one({"_id": key, "at": now}, held))
        return None

    def _replace_current(self, key: str, doc: dict[str, Any], previous: StoredResource | None) -> None:
        """Write the current document as a compare-and-set on the version it replaces: the filter
        names ``previous.version``, so of two writers that both read version n (two ``If-Match:
        W/"n"`` updates, each checked before its write) one replaces it and the other matches
        nothing and is refused 409 (``Conflict``; an If-Match update turns it into its 412).
        It was a replace on ``_id`` alone, check-then-write: both writes succeeded, both
        answered 200 with version n+1, the first one's body lost (probef25 saw it on mongomock;
        txmend25). On a replica set the transaction's own write conflict (WriteConflict, a
        ``TransientTransactionError``) is the same 409 rather than a 500. A first version
        (``previous`` None) is still an upsert on ``_id``: older layouts and the derived path
        hand ``None`` for a document that may exist."""
        if previous is None:
            self.current_coll.replace_one({"_id": key}, doc, upsert=True, **self.store.kw())
            return
        try:
            done = self.current_coll.replace_one({"_id": key, "version": previous.version}, doc, **self.store.kw())
        except pymongo.errors.OperationFailure as exc:
            if exc.code == 112 or exc.has_error_label("TransientTransactionError"):
                raise WrittenMeanwhile(f"{key} was written by another request meanwhile; read it and try again") from None
            raise
        if done.matched_count == 0:
            raise WrittenMeanwhile(f"{key} is no longer at version {previous.version}: another request wrote it "
                           "meanwhile; read it and try again")

    def _put_back(self, key: str, previous: StoredResource | None) -> None:
        """Undo a ``put`` of a failed block on a backend without transactions (``mongo_store._Undo``):
        the version it replaced current again, its document rebuilt from ``previous`` (its index
        fields from its body), its history copy gone; no ``previous``: the resource gone.

        Why rebuilt rather than read before the put: the repository hands ``put`` the version it
        replaces, so the put needs no read of its own, which on mongomock (the test backend) is a
        scan of the collection (measured: ingest there twice as slow with a read per put). An
        older layout's history copy of that version (the same body) goes too; history reads it
        from the current document."""
        if previous is None:
            self.current_coll.delete_one({"_id": key})
            return
        self.history_coll.delete_one({"_id": f"{key}/{previous.version}"})
        doc: dict[str, Any] = {"_id": key, "type": previous.type, "id": previous.id, "version": previous.version,
                               "updated": previous.updated, "deleted": previous.deleted, "body": previous.body,
                               "writer": previous.writer}
        if not previous.deleted and previous.body is not None and self._indexer is not None:
            doc.update(self._indexes(previous.type, self._indexer.rows(fhirjson.loads(previous.body))))
        self.current_coll.replace_one({"_id": key}, doc, upsert=True)

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
                current = {"_id": {"$in": [f"{rtype}/{i}" for i in chunk]}}
                history = {"type": rtype, "id": {"$in": chunk}}
                if (undo := self.store.undo) is not None:  # what is deleted, for the block's undo
                    for coll, where in ((self.current_coll, current), (self.history_coll, history)):
                        for doc in coll.find(where):
                            undo.wrote(coll, doc["_id"], doc)
                found += self.current_coll.delete_many(current, **self.store.kw()).deleted_count
                self.history_coll.delete_many(history, **self.store.kw())
        return found

    def _filter(self, q: Query) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"deleted": False}]
        if q.type:
            parts.append({"type": q.type})
        elif q.types is not None:
            parts.append({"type": {"$in": list(q.types)}})
        if q.compartment is not None:
            parts.append({"comp": {"$in": sorted(q.compartment)}})
        narrowed = self._narrowed(q.type)
        folded = self._params.folded(q.type) if self._params is not None and q.type else _NO_FOLDS
        parts.extend(_clause(c, narrowed, folded) for c in q.clauses)
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

    def referring(self, rtype: str, param: str, targets: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.referring``: one ``$in`` of the targets' exact ``ref`` keys (``param␟id␟type``,
        a narrowed parameter's of its type under the wider one: ``query.widen``) on the ``(type, ref)``
        index, in ``_id`` order as ``search`` gives, 1,000 keys a query."""
        wide = self._narrowed(rtype).get(param)
        keys = list(dict.fromkeys(_key(wide[0] if wide is not None and wide[1] == ttype else param, tid, ttype)
                                  for ttype, tid in targets))
        found: dict[str, StoredResource] = {}
        for start in range(0, len(keys), 1000):
            cursor = self.current_coll.find({"type": rtype, "ref": {"$in": keys[start : start + 1000]}, "deleted": False},
                                            _FIELDS, **self.store.kw()).sort([("_id", pymongo.ASCENDING)])
            for doc in cursor:
                rec = self._rec(doc)
                found[rec.key] = rec
        return list(found.values()) if len(keys) <= 1000 else [found[key] for key in sorted(found)]

    def count(self, query: Query) -> int:
        return int(self.current_coll.count_documents(self._filter(query), **self.store.kw()))

    def carrying(self, rtype: str, param: str, tokens: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.carrying``: one ``$in`` of the tokens' exact ``tok`` keys (``param␟code␟system``,
        as a search of ``param=system|code`` matches them: ``_cond``) on the ``(type, tok)`` index, in id
        order then ``_id`` as ``search`` under ``_sort=_id`` gives, 1,000 keys a query."""
        keys = list(dict.fromkeys(_key(param, code, system) for system, code in tokens))
        found: dict[str, StoredResource] = {}
        for start in range(0, len(keys), 1000):
            cursor = self.current_coll.find({"type": rtype, "tok": {"$in": keys[start : start + 1000]}, "deleted": False},
                                            _FIELDS, **self.store.kw()).sort([("id", pymongo.ASCENDING),
                                                                              ("_id", pymongo.ASCENDING)])
            for doc in cursor:
                rec = self._rec(doc)
                found[rec.key] = rec
        recs = list(found.values())
        return recs if len(keys) <= 1000 else sorted(recs, key=lambda r: (r.id, r.key))
