"""The FHIR AuditEvents, derived on read from the signed log: nothing is written per read but the log.

Every audited read appends one record to the signed log; the per-patient FHIR views of it
(``engine.audit.view``: what residents search as ``AuditEvent?patient=``, what "who looked at my
record" and the auditors' FHIR searches read) used to be stored as resources in the main
database, with their search-index rows, by a background thread: ~60-75 µs of CPU per read, half
of what the audit cost a read, and a commit to the main file that made every reader connection
drop its page cache. Here they are computed when someone asks:

- at append, ``record_keys`` gives a few narrow keys per record (each patient it names, each
  requesting agent's identifier), stored beside the record in the audit file in the same
  transaction (``audit_keys``, ``_id`` = key + sequence number, so one primary-key range scan
  lists a patient's records; ``more`` lists the rest of an appended group's records under the
  same key: ``group_key_docs``);
- ``AuditViews`` is a ``FhirBackend`` for those views: a search takes its candidates from the
  keys (the caller's compartment, a ``patient`` reference, an ``agent:identifier``) or, failing
  those, from the whole log, derives each candidate's views, and keeps the ones that satisfy the
  parsed query: the views' index rows come from the repository's own ``Indexer``, so a parameter
  means exactly what it means for a stored resource (``matches``);
- ``WithAuditViews`` puts them beside the main backend: reads of ``AuditEvent/audit-<seq>[-…]``
  and searches over AuditEvents (alone, or compartment-wide with them among the types) are
  answered from both, writes go to the main backend as before.

A view is version 1 with ``lastUpdated`` = the record's ``recorded``; views appear the moment their
record commits, in every ``--workers`` process (they all read the same file).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from engine import fhirjson
from engine.audit.record import FORMAT, Facts, Requestor, agent_keys, event_of
from engine.audit.view import patients_named, views_of
from engine.errors import MethodNotAllowed
from engine.repository.indexing import Indexer, IndexRows, normalise
from engine.repository.port import Collection, FhirBackend, StoredResource
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

AUDIT_EVENT = "AuditEvent"
KEYS = "audit_keys"
VIEW_ID = re.compile(r"audit-(\d+)(?:-[0-9a-f]{12})?")
_SEP = "\t"  # between a key and the zero-padded sequence number in a key document's _id
SCAN_CHUNK = 500  # records read per query when a search walks the log
REUSE_SECONDS = 1.0  # how long one search's derived matches serve its further pages and count
NODE_SYSTEM = "urn:huren:node"
_LAST_DAY = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


class _Log(Protocol):
    """The part of ``AuditLog`` this needs."""

    leaves: Collection
    key_index: Collection

    def index_keys(self) -> None: ...


def record_keys(record: dict[str, Any]) -> list[str]:
    """The narrow keys a search finds this record by: ``p:<patient id>`` for each patient it
    names, ``a:<system>|<value>`` for each agent identifier other than the server's own."""
    keys = [f"p:{pid}" for pid in patients_named(record)]
    for agent in record.get("agent") or ():
        ident = (agent.get("who") or {}).get("identifier") or {}
        if ident.get("value") and ident.get("system") != NODE_SYSTEM:
            keys.append(f"a:{ident.get('system') or ''}|{ident['value']}")
    return list(dict.fromkeys(keys))


def key_docs(seq_key: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"_id": f"{key}{_SEP}{seq_key}"} for key in record_keys(record)]


def stored_keys(data: str | bytes) -> tuple[list[str], str | None]:
    """The search keys and the ``recorded`` instant of a stored record: from a compact record's
    facts directly, else from its AuditEvent."""
    doc = orjson.loads(data)
    if doc.get("f") == FORMAT and "resourceType" not in doc:
        return _keys_of(doc.get("pat") or (), tuple(doc["by"])), doc.get("at")
    return record_keys(doc), doc.get("recorded")


def facts_keys(facts: Facts) -> list[str]:
    """The search keys of a compact record, from the facts it was written from (as ``stored_keys``
    reads them back from its bytes)."""
    return _keys_of(facts.patients, facts.requestor)


def _keys_of(patients: Iterable[str], requestor: Requestor) -> list[str]:
    keys = [f"p:{pid}" for pid in dict.fromkeys(patients) if pid]
    keys.extend(agent_keys(requestor))
    return keys


def group_key_docs(grouped: dict[str, list[int]]) -> list[dict[str, Any]]:
    """The search keys of an appended group (key -> its records, ascending): one document per key,
    ``<key>`` + the first record's sequence number, listing the group's other records under that key
    in ``more``. A group of reads from one hospital system is one agent key, not one per read
    (each key row is two B-tree entries written in the audit's commit)."""
    from engine.audit.leaves import seq_key  # (leaves imports nothing of the log: no import cycle)

    docs = []
    for key, seqs in grouped.items():
        doc: dict[str, Any] = {"_id": f"{key}{_SEP}{seq_key(seqs[0])}"}
        if len(seqs) > 1:
            doc["more"] = seqs[1:]
        docs.append(doc)
    return docs


def _utc_day(recorded: str) -> str:
    if recorded.endswith("Z") and len(recorded) >= 10:  # the server's own instants: already UTC
        return recorded[:10]
    return datetime.fromtimestamp(_epoch(recorded), UTC).strftime("%Y-%m-%d")


def day_key_docs(records: Iterable[tuple[int, str, str | None]]) -> list[dict[str, Any]]:
    """The day keys of an appended group of records (``(seq, seq key, recorded)`` in order): one
    document per UTC day of ``recorded`` the group touches, ``d:<day>`` + the group's first sequence
    number on that day, holding its last (``to``). A search by date alone (what an auditor asks
    first: who read what yesterday) then reads the records of the days its range covers instead of
    the whole log; the range a day key spans may hold another day's records of the same group,
    which the exact match drops. One document per group, not per record: nearly free at append."""
    days: dict[str, tuple[str, int]] = {}
    for seq, key, recorded in records:
        if not recorded:
            continue  # matches no date search
        day = _utc_day(str(recorded))
        first = days.get(day)
        days[day] = (first[0] if first else key, seq)
    return [{"_id": f"d:{day}{_SEP}{key}", "to": last} for day, (key, last) in days.items()]


class DaySpans:
    """``day_key_docs`` built as the records go by, for the key indexer's batches: per record only
    the day's span is extended (its day worked out again only when its instant changes), and a
    sequence key is made per day, not per record (~0.4 µs a record less in the background)."""

    __slots__ = ("days", "_recorded", "_day")

    def __init__(self) -> None:
        self.days: dict[str, list[int]] = {}  # day -> [first seq, last seq]
        self._recorded: str | None = None
        self._day = ""

    def add(self, seq: int, recorded: str | None) -> None:
        if not recorded:
            return  # matches no date search
        if recorded != self._recorded:
            self._recorded, self._day = recorded, _utc_day(str(recorded))
        span = self.days.get(self._day)
        if span is None:
            self.days[self._day] = [seq, seq]
        else:
            span[1] = seq

    def docs(self) -> list[dict[str, Any]]:
        """What ``day_key_docs`` gives for the same records."""
        from engine.audit.leaves import seq_key  # (leaves imports nothing of the log: no import cycle)

        return [{"_id": f"d:{day}{_SEP}{seq_key(first)}", "to": last} for day, (first, last) in self.days.items()]


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


# -------------------------------------------------------------------------------- matching
_OPS = {">=": float.__ge__, ">": float.__gt__, "<=": float.__le__, "<": float.__lt__}


def _in_range(lo: float, hi: float, cond: DateCond) -> bool:
    ends = {"lo": lo, "hi": hi}
    return all(_OPS[op](float(ends[col]), float(value)) for col, op, value in date_bounds(cond))


def _holds(cond: Cond, rows: IndexRows, rid: str, updated: float) -> bool:
    """One condition against one resource's index rows, as the backends' queries read it."""
    if isinstance(cond, IdCond):
        return rid in cond.ids
    if isinstance(cond, TokenCond):
        return any(p == cond.param and (cond.system is None or s == cond.system)
                   and (cond.code is None or c == cond.code) for p, s, c in rows.tokens)
    if isinstance(cond, RefCond):
        return any(p == cond.param and (cond.rtype is None or t == cond.rtype) and i == cond.rid
                   for p, t, i in rows.refs)
    if isinstance(cond, UriCond):
        return (cond.param, cond.uri) in rows.uris
    if isinstance(cond, DateCond):
        if cond.param == "_lastUpdated":
            return _in_range(updated, updated + 0.001, cond)
        return any(p == cond.param and _in_range(lo, hi, cond) for p, lo, hi in rows.dates)
    if isinstance(cond, StringCond):
        for p, norm, raw in rows.strings:
            if p != cond.param:
                continue
            if (cond.mode == "exact" and norm == normalise(cond.value) and raw == cond.value
                    or cond.mode == "contains" and cond.value in norm
                    or cond.mode == "start" and norm.startswith(cond.value)):
                return True
        return False
    if isinstance(cond, QuantityCond):
        return any(p == cond.param and _quantity(value, cond) and (cond.system is None or s == cond.system)
                   and (cond.code is None or c == cond.code) for p, value, s, c in rows.quantities)
    if isinstance(cond, ExistsCond):
        return cond.param in ("_id", "_lastUpdated") or rows.sort.get(cond.param) is not None
    raise TypeError(cond)


def _quantity(value: float, cond: QuantityCond) -> bool:
    if cond.prefix == "eq":
        return cond.lo <= value < cond.hi
    return {"gt": value > cond.lo, "sa": value > cond.lo, "lt": value < cond.lo, "eb": value < cond.lo,
            "ge": value >= cond.lo, "le": value <= cond.lo}[cond.prefix]


def matches(query: Query, rows: IndexRows, rid: str, updated: float) -> bool:
    """Does a resource with these index rows satisfy the query's compartment and clauses?"""
    if query.compartment is not None and not (rows.compartments & query.compartment):
        return False
    for clause in query.clauses:
        hit = any(_holds(cond, rows, rid, updated) for cond in clause.alternatives)
        if hit == clause.negate:
            return False
    return True


def _sort_value(param: str, rows: IndexRows, rid: str, updated: float) -> Any:
    if param == "_id":
        return rid
    if param == "_lastUpdated":
        return updated
    return rows.sort.get(param)


def order(items: list[tuple[Any, ...]], sort: Sequence[tuple[str, bool]]) -> None:
    """Sort ``(rows, rid, updated, ...)`` tuples in place by ``sort``, in the order they came for
    ties, missing values first ascending and last descending (as SQLite orders NULL)."""
    for param, desc in reversed(sort):
        def key(item: tuple[Any, ...], param: str = param) -> tuple[bool, str, Any]:
            value = _sort_value(param, item[0], item[1], item[2])
            return (value is not None, type(value).__name__ if value is not None else "", value)
        items.sort(key=key, reverse=desc)


# -------------------------------------------------------------------------------- the views
class AuditViews:
    """The per-patient AuditEvent views of the signed log, as a read-only ``FhirBackend`` part."""

    def __init__(self, log: _Log, indexer: Indexer) -> None:
        self.log = log
        self.indexer = indexer
        # the last search's matches: a search pages through them (a confined search reads up to
        # 20 chunks of one query, an unconfined one asks its count after its page), so each
        # query is derived once, not once per call; reused only for the same query while no
        # process appended to the log, and within REUSE_SECONDS
        self._last: tuple[Any, int, float, list[tuple[IndexRows, str, float, dict[str, Any], str]]] | None = None

    @staticmethod
    def owns(rtype: str, rid: str) -> bool:
        return rtype == AUDIT_EVENT and VIEW_ID.fullmatch(rid) is not None

    @staticmethod
    def involved(query: Query) -> bool:
        if query.type is not None:
            return query.type == AUDIT_EVENT
        return query.types is None or AUDIT_EVENT in query.types

    # -- reads by id
    def _records(self, seqs: Iterable[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        from engine.audit.leaves import seq_key  # (leaves imports nothing of the log: no import cycle)

        wanted = sorted(set(seqs))
        for start in range(0, len(wanted), SCAN_CHUNK):
            ids = [seq_key(s) for s in wanted[start:start + SCAN_CHUNK]]
            for doc in self.log.leaves.find({"_id": {"$in": ids}}, sort=[("_id", 1)]):
                yield int(doc["seq"]), event_of(doc["data"])

    def _all_records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        after = ""
        while True:
            docs = self.log.leaves.find({"_id": {"$gt": after}}, sort=[("_id", 1)], limit=SCAN_CHUNK)
            for doc in docs:
                yield int(doc["seq"]), event_of(doc["data"])
            if len(docs) < SCAN_CHUNK:
                return
            after = docs[-1]["_id"]

    @staticmethod
    def _stored(view: dict[str, Any], updated: str) -> StoredResource:
        body = {"resourceType": AUDIT_EVENT, "id": view["id"], "meta": {"versionId": "1", "lastUpdated": updated}}
        body.update((k, v) for k, v in view.items() if k not in ("resourceType", "id", "meta"))
        return StoredResource(AUDIT_EVENT, view["id"], 1, updated, False, fhirjson.dumps(body))

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        wanted: dict[int, set[str]] = {}
        for rtype, rid in keys:
            match = VIEW_ID.fullmatch(rid) if rtype == AUDIT_EVENT else None
            if match:
                wanted.setdefault(int(match[1]), set()).add(rid)
        out: dict[tuple[str, str], StoredResource] = {}
        for seq, record in self._records(wanted):
            for view in views_of(record):
                if view["id"] in wanted[seq]:
                    out[(AUDIT_EVENT, view["id"])] = self._stored(view, str(record.get("recorded") or ""))
        return out

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        return self.current_many([(rtype, rid)]).get((rtype, rid))

    # -- search
    def _candidates(self, query: Query) -> Iterator[tuple[int, dict[str, Any]]]:
        """The records whose views may match: from the narrowest key the query names, else all."""
        self.log.index_keys()  # the records appended since the keys were last brought up to date
        best: set[int] | None = None
        if query.compartment is not None:
            best = self._seqs_of([f"p:{p}" for p in query.compartment])
        for clause in query.clauses:
            if clause.negate or not clause.alternatives:
                continue
            seqs = self._clause_seqs(clause)
            if seqs is not None and (best is None or len(seqs) < len(best)):
                best = seqs
        return self._all_records() if best is None else self._records(best)

    def _clause_seqs(self, clause: Clause) -> set[int] | None:
        keys: list[str] = []
        ids: set[int] = set()
        for cond in clause.alternatives:
            if isinstance(cond, DateCond) and cond.param in ("date", "_lastUpdated"):
                ids |= self._day_seqs(cond)  # both are the record's `recorded`
            elif isinstance(cond, IdCond):
                ids |= {int(m[1]) for i in cond.ids if (m := VIEW_ID.fullmatch(i))}
            elif isinstance(cond, RefCond) and cond.param in ("patient", "entity") and cond.rtype in (None, "Patient"):
                keys.append(f"p:{cond.rid}")
            elif isinstance(cond, TokenCond) and cond.param == "agent:identifier" and cond.code is not None:
                if cond.system is None:
                    return None  # any system: not one key
                keys.append(f"a:{cond.system}|{cond.code}")
            else:
                return None  # an alternative no key covers: the clause cannot narrow
        return ids | self._seqs_of(keys)

    def _day_seqs(self, cond: DateCond) -> set[int]:
        """The records of the UTC days a date condition can reach, from the day keys: a bound on the
        stored range's start or end is widened by a minute each way (a recorded instant's range is
        a millisecond or a second wide), an open side reads to the first or last day key."""
        low = high = None
        for _col, op, value in date_bounds(cond):
            if not math.isfinite(value):
                continue
            if op in (">", ">="):
                low = value if low is None else max(low, value)
            else:
                high = value if high is None else min(high, value)
        if low is not None:
            low = min(max(low, 2 * 86400.0), _LAST_DAY)  # a day each way stays within datetime's years
        if high is not None:
            high = min(max(high, 2 * 86400.0), _LAST_DAY)
        margin = timedelta(minutes=1)
        lo = f"d:{(datetime.fromtimestamp(low, UTC) - margin).strftime('%Y-%m-%d')}" if low is not None else "d:"
        hi = (f"d:{(datetime.fromtimestamp(high, UTC) + margin).strftime('%Y-%m-%d')}{_SEP}~" if high is not None
              else "d:~")
        if hi < lo:
            return set()
        seqs: set[int] = set()
        for doc in self.log.key_index.find({"_id": {"$gte": lo, "$lte": hi}}):
            first = int(doc["_id"].rsplit(_SEP, 1)[1])
            seqs.update(range(first, int(doc["to"]) + 1))
        return seqs

    def _seqs_of(self, keys: Iterable[str]) -> set[int]:
        seqs: set[int] = set()
        for key in keys:
            prefix = key + _SEP
            for doc in self.log.key_index.find({"_id": {"$gt": prefix, "$lt": prefix + "~"}}):
                seqs.add(int(doc["_id"][len(prefix):]))
                seqs.update(doc.get("more") or ())  # the rest of its group (group_key_docs)
        return seqs

    def _matching(self, query: Query) -> list[tuple[IndexRows, str, float, dict[str, Any], str]]:
        """The matching views (rows, id, updated epoch, view, recorded), in log order."""
        key = (query.type, tuple(query.clauses), query.compartment, query.types)  # a count has no sort
        last_leaf = self.log.leaves.find(sort=[("_id", -1)], limit=1)  # one primary-key step
        size, now = (last_leaf[0]["seq"] + 1 if last_leaf else 0), time.monotonic()
        last = self._last
        if last is not None and last[0] == key and last[1] == size and now - last[2] < REUSE_SECONDS:
            return last[3]
        found = []
        for _seq, record in self._candidates(query):
            recorded = str(record.get("recorded") or "")
            updated = _epoch(recorded) if recorded else 0.0
            for view in views_of(record):
                rows = self.indexer.rows(view)
                if matches(query, rows, view["id"], updated):
                    found.append((rows, view["id"], updated, view, recorded))
        self._last = (key, size, time.monotonic(), found)  # from when it was derived
        return found

    def search(self, query: Query) -> list[StoredResource]:
        if not self.involved(query):
            return []
        found = self._matching(query)
        if query.sort:
            found = list(found)
            order(found, query.sort)
        end = None if query.limit is None else query.offset + query.limit
        return [self._stored(view, recorded) for _, _, _, view, recorded in found[query.offset:end]]

    def count(self, query: Query) -> int:
        return len(self._matching(query)) if self.involved(query) else 0


class WithAuditViews:
    """The main ``FhirBackend`` with the derived AuditEvent views beside it (see the module)."""

    def __init__(self, main: FhirBackend, views: AuditViews) -> None:
        self.main = main
        self.views = views
        self.unindexed = getattr(main, "unindexed", frozenset({"_id"}))

    def __getattr__(self, name: str) -> Any:  # bind, expunge, layout checks: the main backend's
        return getattr(self.main, name)

    def current(self, rtype: str, rid: str) -> StoredResource | None:
        if self.views.owns(rtype, rid):
            rec = self.views.current(rtype, rid)
            if rec is not None:
                return rec
        return self.main.current(rtype, rid)

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        derived = [k for k in keys if self.views.owns(*k)]
        if not derived:
            return self.main.current_many(keys)
        found = self.views.current_many(derived)
        rest = [k for k in keys if k not in found]
        return {**self.main.current_many(rest), **found} if rest else found

    def version(self, rtype: str, rid: str, version: int) -> StoredResource | None:
        if self.views.owns(rtype, rid):
            rec = self.views.current(rtype, rid)
            if rec is not None:
                return rec if version == 1 else None
        return self.main.version(rtype, rid, version)

    def history(self, rtype: str, rid: str) -> list[StoredResource]:
        if self.views.owns(rtype, rid):
            rec = self.views.current(rtype, rid)
            if rec is not None:
                return [rec]
        return self.main.history(rtype, rid)

    def _refuse_views(self, recs: Iterable[StoredResource]) -> None:
        """The log's views are what the signed records say: no one writes, changes or deletes them
        (nor takes their ids for AuditEvents of their own, which a record would later shadow)."""
        for rec in recs:
            if self.views.owns(rec.type, rec.id):
                raise MethodNotAllowed(f"AuditEvent/{rec.id}: ids audit-<n>[-<hash>] are the audit log's own "
                                       "records, derived from the signed log; they cannot be written")

    def put(self, rec: StoredResource, rows: IndexRows | None, previous: StoredResource | None) -> None:
        self._refuse_views([rec])
        self.main.put(rec, rows, previous)

    def put_many(self, items: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> None:
        self._refuse_views(rec for rec, _, _ in items)
        self.main.put_many(items)

    def search(self, query: Query) -> list[StoredResource]:
        if not self.views.involved(query):
            return self.main.search(query)
        # both parts from the start of the result, then merged and paged here
        end = None if query.limit is None else query.offset + query.limit
        whole = Query(query.type, query.clauses, query.compartment, query.types, query.sort, 0, end)
        main = self.main.search(whole)
        derived = self.views.search(whole)
        if not main or not derived:
            merged = main or derived
        else:
            merged = main + derived
            if query.sort:
                items = [(self._rows(r), r.id, _epoch(r.updated), r) for r in merged]
                order(items, query.sort)
                merged = [item[3] for item in items]
        return merged[query.offset:end]

    def referring(self, rtype: str, param: str, targets: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.referring``: the main backend's narrow read; of AuditEvents (the views are
        beside it) the search of the same one clause, which merges them in."""
        if rtype != AUDIT_EVENT:
            return self.main.referring(rtype, param, targets)
        return self.search(Query(rtype, [Clause(tuple(RefCond(param, t, i) for t, i in dict.fromkeys(targets)))]))

    def _rows(self, rec: StoredResource) -> IndexRows:
        return self.views.indexer.rows(fhirjson.loads(rec.body)) if rec.body else IndexRows()  # type: ignore[arg-type]

    def count(self, query: Query) -> int:
        return self.main.count(query) + self.views.count(query)

    def carrying(self, rtype: str, param: str, tokens: Sequence[tuple[str, str]]) -> list[StoredResource]:
        """``FhirBackend.carrying``: the main backend's narrow read; of AuditEvents (the views are beside
        it) the search of the same one clause under ``_sort=_id``, which merges them in."""
        if rtype != AUDIT_EVENT:
            return self.main.carrying(rtype, param, tokens)
        return self.search(Query(rtype, [Clause(tuple(TokenCond(param, s, c) for s, c in dict.fromkeys(tokens)))],
                                 sort=[("_id", False)]))
