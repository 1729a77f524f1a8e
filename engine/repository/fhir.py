"""``FhirRepository``: FHIR R4 semantics over the storage port.

Versioning (``meta.versionId`` / ``meta.lastUpdated``, every version kept, ``If-Match``),
conditional create and update, delete → 410, validation before every write, write hooks inside
the write transaction, search (parsed in ``engine.repository.search``, executed by the backend),
``_include`` / ``_revinclude``, Patient compartments and ``$everything``, and transaction / batch
Bundles. Everything here is backend-neutral; ``store.fhir`` does the storage.

Acting for a caller, every entry point takes an ``Access`` (``engine.repository.scoped``) and asks
it about each resource reached, directly or not; without one it acts for the system.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from engine import fhirjson
from engine.bounds import MAX_INT, parse_int
from engine.errors import BadRequest, FhirError, Gone, NotFound, PreconditionFailed
from engine.merge_rules import API, MergeRules
from engine.merge_rules import shipped as shipped_merge_rules
from engine.repository.indexing import Indexer, parse_reference
from engine.repository.port import Store, StoredResource
from engine.repository.query import Clause, Query, RefCond
from engine.repository.search import CHAIN_LIMIT, ChainResolver, ParsedSearch, SearchParser
from engine.repository.searchparams import SearchParams, load

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')
INCLUDE_LIMIT = 1000
EVERYTHING_COUNT = 1000
CONFINED_SCAN_CHUNK = 500
CONFINED_SCAN_LIMIT = 10_000

WriteHook = Callable[[dict[str, Any], dict[str, Any] | None], list[dict[str, Any]]]
# [(stored version, previous version), ...] of one write group, in write order -> the issues of each
BatchHook = Callable[[Sequence[tuple[dict[str, Any], dict[str, Any] | None]]], Sequence[list[dict[str, Any]]]]
WriteGuard = Callable[[dict[str, Any], dict[str, Any] | None], None]
# (resource after the merge rules, previous stored version, writer) -> the version to store
Statement = Callable[[dict[str, Any], dict[str, Any] | None, str], dict[str, Any]]


class Validator(Protocol):
    def validate(self, resource: dict[str, Any]) -> None: ...


class Access(Protocol):
    """What one caller may do, asked by every read and write the repository makes on its behalf.

    Given to ``search``, ``everything``, ``transaction`` and ``batch`` (``ScopedRepository`` passes
    itself), so the resources a request reaches indirectly -- chained parameters, ``_include`` and
    ``_revinclude``, Bundle entries, ``If-None-Exist`` matches -- are decided exactly like a direct
    read. Without it the repository acts for the system (ingest, hooks, the audit trail).
    """

    @property
    def compartment(self) -> frozenset[str] | None:
        """The Patient ids the caller is confined to; ``None``: not confined."""
        ...

    def admit(
        self, resource: dict[str, Any], *, inside: bool = False, raw: bytes | None = None
    ) -> dict[str, Any] | None:
        """``resource`` as the caller may read it (possibly with elements left out), or None.
        ``inside``: the query that found it was already narrowed to the caller's compartment;
        ``raw``: its stored JSON bytes, when at hand (lets the check skip a walk)."""
        ...

    def require(self, resource_type: str, action: str) -> None:
        """Raise ``Forbidden`` unless the caller may do ``action`` (c r u d s) on the type."""
        ...

    def counts(self, rec: StoredResource) -> bool | None:
        """Whether ``rec``, found by a query narrowed to the caller's compartment, would be admitted,
        when its stored bytes alone tell; None: ``admit`` must decide (lets a search count matches
        outside the page without parsing them)."""
        ...

    def check_write(self, resource_type: str, new: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
        """Raise unless the caller may replace ``current`` (None: absent) with ``new`` (None: delete)."""
        ...


@dataclass
class WriteResult:
    resource: dict[str, Any]
    created: bool
    issues: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = True  # False when an update carried no change (no new version)

    @property
    def version(self) -> str:
        return self.resource["meta"]["versionId"]

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass
class Version:
    version: int
    updated: str
    deleted: bool
    resource: dict[str, Any] | None


@dataclass
class SearchResult:
    resource_type: str | None
    resources: list[dict[str, Any]]
    included: list[dict[str, Any]]
    total: int | None
    offset: int
    count: int
    has_next: bool

    def bundle(self, base_url: str, path: str, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """A ``searchset`` Bundle with ``self`` / ``next`` / ``previous`` links under ``base_url/path``."""
        keep = [(k, v) for k, v in params if k not in ("_offset", "_count")]

        def link(relation: str, offset: int) -> dict[str, str]:
            query = urlencode([*keep, ("_count", str(self.count)), ("_offset", str(offset))])
            return {"relation": relation, "url": f"{base_url}/{path}?{query}"}

        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if self.total is not None:
            bundle["total"] = self.total
        links = [link("self", self.offset)]
        if self.has_next:
            links.append(link("next", self.offset + self.count))
        if self.offset > 0:
            links.append(link("previous", max(0, self.offset - self.count)))
        bundle["link"] = links
        entries = [
            {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in self.resources
        ]
        entries += [
            {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
            for r in self.included
        ]
        if entries:
            bundle["entry"] = entries
        return bundle


def parse_etag(value: str) -> int:
    m = _ETAG.match(value.strip())
    if not m:
        raise BadRequest(f"If-Match must be an ETag like W/\"3\", got '{value}'", expression=["If-Match"])
    return parse_int(m.group(1), "If-Match")


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without server-managed meta, for 'did anything change' comparisons."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    out = dict(resource)
    rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    if rest:
        out["meta"] = rest
    else:
        out.pop("meta")
    return out


def _versioned(resource: dict[str, Any], version: str, updated: str) -> dict[str, Any]:
    """The version to store: ``resource`` with ``meta.versionId`` / ``meta.lastUpdated`` set, its
    type, id and meta first (a shallow copy: the values are the resource's own)."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = version
    meta["lastUpdated"] = updated
    stored = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta, **resource}
    stored["meta"] = meta
    return stored


def _unchanged(existing: StoredResource, previous: dict[str, Any], resource: dict[str, Any]) -> bool:
    """Whether ``resource`` states nothing the stored version ``existing`` (parsed: ``previous``)
    does not, server-managed meta aside.

    First on bytes: the resource serialised as it would be stored under the stored version's
    own ``versionId`` / ``lastUpdated`` is byte for byte the stored body when a sender repeats
    itself (the same converter gives the same key order), which one serialisation tells without
    a deep comparison. Bytes that differ may still be the same document in another key order:
    then the deep comparison decides (``fhirjson.same``, which tells ``1.5`` from ``1.50``).
    """
    meta = previous.get("meta") or {}
    version, updated = meta.get("versionId"), meta.get("lastUpdated")
    if (isinstance(version, str) and isinstance(updated, str) and existing.body is not None
            and fhirjson.dumps(_versioned(resource, version, updated)) == existing.body):
        return True
    return fhirjson.same(_content(previous), _content(resource))


def _body_of(rec: StoredResource | None) -> dict[str, Any] | None:
    """The stored resource as JSON, or None when absent or deleted."""
    if rec is None or rec.deleted:
        return None
    return fhirjson.loads(rec.body)  # type: ignore[arg-type]


def rewrite_references(node: Any, mapping: dict[str, str]) -> None:
    """Every ``reference`` in ``node`` that ``mapping`` names now points where it says, in place
    (a Bundle's urn:uuid entries; the HL7 converter's re-keyed resources)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            if isinstance(value, (dict, list)):
                rewrite_references(value, mapping)
    elif isinstance(node, list):
        for value in node:
            rewrite_references(value, mapping)


_walk_references = rewrite_references


def references_in(node: Any, out: list[str]) -> list[str]:
    """Every literal ``reference`` string in ``node`` (depth first), appended to ``out``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for value in node.values():
            if isinstance(value, (dict, list)):
                references_in(value, out)
    elif isinstance(node, list):
        for value in node:
            references_in(value, out)
    return out


class FhirRepository:
    """The shared FHIR repository (see module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        validator: Validator | None = None,
        base_url: str = "",
        params: SearchParams | None = None,
        merge: MergeRules | None = None,
    ) -> None:
        self.store = store
        # how an incoming version combines with the stored one, per writer (mappings/merge.yaml)
        self.merge = merge or shipped_merge_rules()
        self.backend = store.fhir
        self.validator = validator
        self.base_url = base_url.rstrip("/")
        self.params = params or load()
        # a backend may answer some parameters from its own columns (SQLite: _lastUpdated)
        self.indexer = Indexer(self.params, self.base_url,
                               skip=getattr(self.backend, "unindexed", frozenset({"_id"})))
        bind = getattr(self.backend, "bind", None)
        if bind is not None:  # reference targets for the backend; migration of an older layout
            bind(self.params, self.indexer)
        self.parser = SearchParser(self.params, self.base_url)
        self._hooks: list[WriteHook] = []
        self._batch_hooks: list[BatchHook] = []
        self._guards: list[WriteGuard] = []
        self._marks: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        self._statements: list[Statement] = []
        self._clock_lock = threading.Lock()
        self._local = threading.local()  # per thread: versions waiting for a group put
        self._last_ms = 0  # the last instant handed out by _now(), in epoch milliseconds
        self._prefix_sec, self._prefix = -1, ""

    # -- group commit -----------------------------------------------------------------------------
    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction in which every ``write_many`` shares one backend put, the write hooks
        running after it: for a writer that needs the versions of one write to make the next
        (ingest signs a message's Provenance over the versions its resources got) and would
        otherwise pay a second put with its own statements."""
        with self.store.transaction(), self._grouped():
            yield

    @contextmanager
    def _grouped(self) -> Iterator[None]:
        """Inside the caller's transaction, buffer new versions and put them in one backend call.

        The write hooks run at the flush, after the versions are stored.
        """
        outer = getattr(self._local, "pending", None)
        if outer is not None:
            yield
            return
        self._local.pending = []
        try:
            yield
            self._flush()
        finally:
            self._local.pending = None

    def _flush(self) -> None:
        """Put the buffered versions, then run the write hooks for each, in write order.

        A hook thus runs after its resource is stored (and after the rest of the group: a
        Bundle's Patient is there when its Observation's hook looks). Writes a hook makes go
        straight to the backend, inside the same transaction.
        """
        pending = getattr(self._local, "pending", None)
        if not pending:
            return
        items = list(pending)
        pending.clear()
        self._local.pending = None
        try:
            self.backend.put_many([(rec, rows, existing) for rec, rows, existing, _, _, _ in items])
            # The hooks of a group read the same few resources again and again (every Observation
            # of a lab report looks up its performing Organization): reads are cached for the
            # hook phase, and any write through this repository empties the cache.
            self._local.reads = {}
            self._run_hooks([(stored, previous, result.issues) for _, _, _, stored, previous, result in items])
        finally:
            self._local.pending = pending
            self._local.reads = None

    def _run_hooks(self, writes: Sequence[tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]]) -> None:
        """The write hooks for stored versions (stored, previous, the issues to extend): each batch
        hook once for all of them, then each resource's own hooks in turn, in write order.

        Batch hooks first: the versions they are handed are then the current ones (a resource's
        own hook may store a newer version of another one of the group, as the patient index
        does with links), so a batch hook may read them back as handed."""
        if self._batch_hooks:
            pairs = [(stored, previous) for stored, previous, _ in writes]
            for batch_hook in self._batch_hooks:
                for (_, _, issues), found in zip(writes, batch_hook(pairs), strict=True):
                    issues.extend(found or ())
        for stored, previous, issues in writes:
            for hook in self._hooks:
                issues.extend(hook(stored, previous) or ())

    # -- hooks and clock --------------------------------------------------------------------------
    def add_write_hook(self, hook: WriteHook) -> None:
        """``hook(resource, previous)`` runs inside the write transaction after the resource is stored."""
        self._hooks.append(hook)

    def add_batch_hook(self, hook: BatchHook) -> None:
        """``hook([(resource, previous), ...]) -> [issues, ...]`` runs once for all the versions a
        write group stored (one for a single write), before the per-resource hooks, inside the
        write transaction: for a hook that does for a whole message in one query what it would
        otherwise ask for each resource (recognition's index entries). Until it returns, the
        versions it is handed are the current ones, but for what it writes itself."""
        self._batch_hooks.append(hook)

    def add_write_guard(self, guard: WriteGuard) -> None:
        """``guard(resource, previous)`` runs before a new version is stored and refuses it by raising
        a ``FhirError``. A refusal must come before the write: a MongoDB without a replica set (and
        mongomock) cannot roll back what a write hook refuses after the version is stored."""
        self._guards.append(guard)

    def pending(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(new version, previous version) of what this thread's write group holds but has not
        stored yet (the earlier entries of a transaction Bundle): a write guard that judges a
        resource by another one of the same Bundle reads it here, before anything is stored."""
        return [(stored, previous) for _, _, _, stored, previous, _ in getattr(self._local, "pending", None) or ()]

    def add_mark(self, mark: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """``mark(resource) -> resource`` adds server-computed labels (recognition's HR mark in
        ``meta.tag``) to every resource about to be written, before the merge rules and the
        "unchanged?" comparison, so a re-sent message with the same labels is not a change."""
        self._marks.append(mark)

    def add_statement(self, statement: Statement) -> None:
        """``statement(resource, previous, writer) -> resource`` adds what the server itself states
        about a resource (the patient index's ``Patient.link``) to the version being written, after
        the merge rules and before the "unchanged?" comparison and the write.

        Why: a write hook that states it afterwards has to store a second version of a resource
        just written (and run the hooks, the index rows and the history copy again). The hook still
        runs and corrects what a statement could not foresee; a right statement leaves it nothing
        to write."""
        self._statements.append(statement)

    def _now(self) -> str:
        """A strictly increasing instant (ms precision), so ``_lastUpdated`` orders writes.

        Integer milliseconds and a per-second cached prefix: this runs once per stored version,
        and building it through ``datetime`` cost ~15 us of each ingest write.
        """
        with self._clock_lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms + 1
            self._last_ms = ms
            sec, milli = divmod(ms, 1000)
            if sec != self._prefix_sec:
                self._prefix_sec = sec
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
            return f"{self._prefix}{milli:03d}Z"

    # -- reads -------------------------------------------------------------------------------------
    def _check_type(self, rtype: str) -> None:
        if rtype not in self.params.resource_types:
            raise NotFound(f"'{rtype}' is not a FHIR R4 resource type")

    def _check(self, rtype: str, rid: str) -> None:
        self._check_type(rtype)
        if not _ID.match(rid or ""):
            raise BadRequest(f"'{rid}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)")

    def read_raw(self, rtype: str, rid: str) -> StoredResource:
        """The current version as stored (JSON bytes), for handlers that can return it as is."""
        self._check(rtype, rid)
        reads = getattr(self._local, "reads", None)
        if reads is None:
            rec = self.backend.current(rtype, rid)
        elif (rtype, rid) in reads:
            rec = reads[(rtype, rid)]
        else:
            rec = reads[(rtype, rid)] = self.backend.current(rtype, rid)
        if rec is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if rec.deleted:
            raise Gone(f"{rtype}/{rid} was deleted", headers={"ETag": f'W/"{rec.version}"'})
        return rec

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        return fhirjson.loads(self.read_raw(rtype, rid).body)  # type: ignore[arg-type]

    def vread(self, rtype: str, rid: str, vid: str) -> dict[str, Any]:
        self._check(rtype, rid)
        if not (vid.isascii() and vid.isdigit()) or int(vid) > MAX_INT:
            raise NotFound(f"{rtype}/{rid} has no version '{vid}'")
        rec = self.backend.version(rtype, rid, int(vid))
        if rec is None:
            raise NotFound(f"{rtype}/{rid} has no version {vid}")
        if rec.deleted:
            raise Gone(f"version {vid} of {rtype}/{rid} is a deletion")
        return fhirjson.loads(rec.body)  # type: ignore[arg-type]

    def versions(self, rtype: str, rid: str) -> list[Version]:
        """Every version, newest first (deletions included, with ``resource`` None)."""
        self._check(rtype, rid)
        recs = self.backend.history(rtype, rid)
        if not recs:
            raise NotFound(f"{rtype}/{rid} is not known")
        return [Version(r.version, r.updated, r.deleted, None if r.deleted else fhirjson.loads(r.body))  # type: ignore[arg-type]
                for r in recs]

    def history(self, rtype: str, rid: str) -> list[dict[str, Any]]:
        """The stored versions of a resource, newest first (deletions are left out)."""
        return [v.resource for v in self.versions(rtype, rid) if v.resource is not None]

    # -- writes ------------------------------------------------------------------------------------
    def _prepare(self, resource: Any) -> dict[str, Any]:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise BadRequest("the body must be a FHIR resource (a JSON object with resourceType)")
        if resource["resourceType"] not in self.params.resource_types:
            raise BadRequest(f"'{resource['resourceType']}' is not a FHIR R4 resource type", expression=["resourceType"])
        return resource

    def _store(
        self,
        resource: dict[str, Any],
        existing: StoredResource | None,
        *,
        skip_unchanged: bool = True,
        validate: bool = True,
        source: str = API,
    ) -> WriteResult:
        """Combine with the stored version (merge rules, per writer ``source``), validate, version,
        index and store one resource, then run the write hooks."""
        reads = getattr(self._local, "reads", None)
        if reads:  # a hook writes: what it read before may be stale now
            reads.clear()
        rtype, rid = resource["resourceType"], resource["id"]
        previous = None
        if existing is not None and not existing.deleted:
            previous = fhirjson.loads(existing.body)  # type: ignore[arg-type]
        for mark in self._marks:
            resource = mark(resource)
        # what this writer may change of the stored version: the merge rules (engine.merge_rules)
        combined = self.merge.combine(previous, resource, source)
        resource = combined.resource
        for statement in self._statements:
            resource = statement(resource, previous, source)
        if previous is not None and skip_unchanged and _unchanged(existing, previous, resource):  # type: ignore[arg-type]
            return WriteResult(previous, created=False, changed=False, issues=combined.issues)
        for guard in self._guards:
            guard(resource, previous)
        if validate and self.validator is not None:
            self.validator.validate(resource)
        version = existing.version + 1 if existing is not None else 1
        stored = _versioned(resource, str(version), self._now())
        meta = stored["meta"]
        rows = self.indexer.rows(stored)
        rec = StoredResource(rtype, rid, version, meta["lastUpdated"], False, fhirjson.dumps(stored))
        issues: list[dict[str, Any]] = combined.issues
        pending = getattr(self._local, "pending", None)
        if pending is not None:  # group commit: stored (and hooked) together by _flush()
            result = WriteResult(stored, created=existing is None or existing.deleted, issues=issues)
            pending.append((rec, rows, existing, stored, previous, result))
            return result
        if getattr(self.store, "in_transaction", False):
            # inside the caller's transaction (write_many, Bundles, a hook's own write): a failure
            # propagates and rolls the whole of it back, so no savepoint is needed
            self._flush()
            self.backend.put(rec, rows, existing)
            self._run_hooks([(stored, previous, issues)])
        else:
            with self.store.transaction():
                self.backend.put(rec, rows, existing)
                self._run_hooks([(stored, previous, issues)])
        return WriteResult(stored, created=existing is None or existing.deleted, issues=issues)

    def create(
        self, resource: dict[str, Any], *, if_none_exist: str | None = None, access: Access | None = None
    ) -> WriteResult:
        """Create with a server-assigned id; with ``if_none_exist`` return the one match instead.

        With ``access``, the match is sought among what the caller may read: a caller cannot learn
        from the answer that someone else's record matches."""
        resource = self._prepare(resource)
        with self.store.transaction():
            if if_none_exist:
                existing = self._conditional_match(resource["resourceType"], if_none_exist, "If-None-Exist", access)
                if existing is not None:
                    return WriteResult(existing, created=False, changed=False)
            new = dict(resource)
            new["id"] = str(uuid.uuid4())
            if access is not None:
                access.check_write(new["resourceType"], new, None)
            return self._store(new, None, skip_unchanged=False)

    def _conditional_match(
        self, rtype: str, query: str, what: str, access: Access | None = None
    ) -> dict[str, Any] | None:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        if not pairs:
            raise BadRequest(f"{what} needs search parameters", expression=[what])
        found = self.search(rtype, pairs + [("_count", "2")], access=access)
        if len(found.resources) > 1:
            raise PreconditionFailed(f"{what} '{query}' matches more than one {rtype}")
        return found.resources[0] if found.resources else None

    def update(
        self, resource: dict[str, Any], *, if_match: str | None = None, source: str = API,
        access: Access | None = None,
    ) -> WriteResult:
        """Upsert at ``resource.id``. Unchanged content makes no new version. ``source`` names the
        writer for the merge rules (a FHIR client unless an internal writer says otherwise)."""
        resource = self._prepare(resource)
        rtype, rid = resource["resourceType"], resource.get("id")
        if not isinstance(rid, str):
            raise BadRequest("an update needs the resource id", expression=[f"{rtype}.id"])
        self._check(rtype, rid)
        with self.store.transaction():
            existing = self.backend.current(rtype, rid)
            if access is not None:  # decided on the stored version, inside the write's transaction
                access.check_write(rtype, resource, _body_of(existing))
            if if_match is not None:
                wanted = parse_etag(if_match)
                if existing is None or existing.deleted:
                    raise PreconditionFailed(f"If-Match {if_match}: {rtype}/{rid} does not exist")
                if existing.version != wanted:
                    raise PreconditionFailed(
                        f"If-Match {if_match} does not match the current version {existing.version} of {rtype}/{rid}")
            return self._store(resource, existing, source=source)

    def conditional_update(
        self, rtype: str, query: str, resource: dict[str, Any], *, access: Access | None = None
    ) -> WriteResult:
        """``PUT Type?search``: update the one match, create when none, 412 when several."""
        resource = self._prepare(resource)
        if resource["resourceType"] != rtype:
            raise BadRequest(f"the body is a {resource['resourceType']}, the URL says {rtype}")
        with self.store.transaction():
            match = self._conditional_match(rtype, query, "conditional update", access)
            new = dict(resource)
            if match is not None:
                if new.get("id") not in (None, match["id"]):
                    raise BadRequest(f"the body's id {new['id']} differs from the matching {rtype}/{match['id']}")
                new["id"] = match["id"]
                return self.update(new, access=access)
            new.setdefault("id", str(uuid.uuid4()))
            return self.update(new, access=access)

    def delete(self, rtype: str, rid: str, *, access: Access | None = None) -> int | None:
        """Delete; later reads get 410. Deleting what is absent or already deleted changes nothing."""
        self._check(rtype, rid)
        reads = getattr(self._local, "reads", None)
        if reads:
            reads.clear()
        with self.store.transaction():
            existing = self.backend.current(rtype, rid)
            if access is not None:
                access.check_write(rtype, None, _body_of(existing))
            if existing is None or existing.deleted:
                return None
            rec = StoredResource(rtype, rid, existing.version + 1, self._now(), True, None)
            self.backend.put(rec, None, existing)
            return rec.version

    def valid_groups(self, groups: Sequence[Sequence[dict[str, Any]]]) -> list[bool]:
        """Validate the resources of several writes type by type: for each write, whether all of
        its resources are valid (``write_many(..., validated=True)`` then need not check them again).

        Why: the schema validator of a resource type is a large compiled tree, and validated one
        message at a time the first resource of each type met it cold in the CPU caches (measured
        in the ingest pipeline: 25-130 us for the first resource of a type in a message, 3-16 us
        for the next ones). A batch validated type by type pays that once per type. What is found
        invalid is not explained here: ``write_many`` validates that write as always and raises
        the same error it always did.
        """
        ok = [True] * len(groups)
        if self.validator is None:
            return ok
        by_type: dict[Any, list[tuple[int, Any]]] = {}
        for i, group in enumerate(groups):
            for resource in group:
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                by_type.setdefault(rtype, []).append((i, resource))
        for entries in by_type.values():
            for i, resource in entries:
                if ok[i]:
                    try:
                        self.validator.validate(resource)
                    except Exception:  # noqa: BLE001 -- write_many validates it again and raises as always
                        ok[i] = False
        return ok

    def write_many(
        self, resources: Sequence[dict[str, Any]], *, create_only: Collection[str] = (), source: str = API,
        validated: bool = False,
    ) -> list[WriteResult]:
        """Upsert many resources in one transaction (group commit); unchanged ones get no new version.

        ``create_only`` names (``Type/id``) resources that are written only when absent: a lab or
        imaging message carries a thin Patient/Encounter so its Bundle stands alone, and must not
        overwrite the richer version the ADT feed stored. ``validated``: the caller has validated
        these very resources (``valid_groups``) and not changed them since.
        """
        prepared = [self._prepare(r) for r in resources]
        for r in prepared:
            if not isinstance(r.get("id"), str):
                r["id"] = str(uuid.uuid4())
            self._check(r["resourceType"], r["id"])
        if self.validator is not None and not validated:  # all valid before anything is written
            for r in prepared:
                self.validator.validate(r)
        with self.store.transaction(), self._grouped():
            current = self.backend.current_many([(r["resourceType"], r["id"]) for r in prepared])
            results = []
            written: set[tuple[str, str]] = set()
            for r in prepared:
                key = (r["resourceType"], r["id"])
                if key in written:  # the same resource twice: store the first before versioning the second
                    self._flush()
                    rec = self.backend.current(*key)
                    if rec is not None:
                        current[key] = rec
                existing = current.get(key)
                if existing is not None and not existing.deleted and f"{key[0]}/{key[1]}" in create_only:
                    results.append(WriteResult(fhirjson.loads(existing.body), created=False, changed=False))
                    continue
                result = self._store(r, existing, validate=False, source=source)
                if result.changed:
                    written.add(key)
                results.append(result)
            return results

    def insert_derived(self, resources: Sequence[dict[str, Any]]) -> None:
        """Store new resources the server derived itself (the audit log's AuditEvent view) as
        version 1, with their index rows, in the caller's transaction.

        The light path: no validation (the deriving code has one fixed shape, proven valid by its
        tests), no write hooks (nothing reacts to them), no lookup of a current version (the ids
        are new by construction; an existing one fails the insert and rolls the batch back). An
        AuditEvent view is written for every audited read, so what the general path adds per
        resource is paid on every read.
        """
        items = []
        for resource in resources:
            updated = self._now()
            stored = {"resourceType": resource["resourceType"], "id": resource["id"],
                      "meta": {"versionId": "1", "lastUpdated": updated}}
            stored.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
            rec = StoredResource(stored["resourceType"], stored["id"], 1, updated, False, fhirjson.dumps(stored))
            items.append((rec, self.indexer.rows(stored), None))
        if items:
            self.backend.put_many(items)

    # -- search ------------------------------------------------------------------------------------
    def _chain_resolver(self, access: Access | None) -> ChainResolver:
        """Resolves a chained parameter's inner search -- as the caller, when there is one.

        A chain is a search of its own: ``AuditEvent?patient.identifier=<number>`` must not tell a
        resident whether someone else has that number, so the inner search sees only what the
        caller may read (anything else resolves to no id, as if it did not exist).
        """

        def resolve(target: str, pairs: list[tuple[str, str]]) -> list[str]:
            comp = None
            if access is not None:
                access.require(target, "s")
                comp = access.compartment
            parsed = self.parser.parse(target, pairs, compartment=comp)
            parsed.query.limit, parsed.query.offset = CHAIN_LIMIT + 1, 0
            recs = self.backend.search(parsed.query)
            if comp is None:
                return [r.id for r in recs]
            return [r.id for r in recs  # the inner query was narrowed to the compartment
                    if access is not None and access.admit(fhirjson.loads(r.body), inside=True) is not None]  # type: ignore[arg-type]

        return resolve

    def parse_search(
        self,
        rtype: str | None,
        params: Sequence[tuple[str, str]],
        compartment: Collection[str] | None = None,
        access: Access | None = None,
    ) -> ParsedSearch:
        if rtype is not None:
            self._check_type(rtype)
        if access is not None:
            compartment = access.compartment
        comp = frozenset(compartment) if compartment is not None else None
        return self.parser.parse(rtype, params, chain=self._chain_resolver(access), compartment=comp)

    def search(
        self,
        rtype: str | None,
        params: Sequence[tuple[str, str]],
        *,
        compartment: Collection[str] | None = None,
        access: Access | None = None,
    ) -> SearchResult:
        """Search ``rtype`` (``None``: every type, for compartment-wide searches).

        ``compartment`` only narrows the query; ``access`` (a caller) also decides every match,
        include and chain (and implies its compartment).
        """
        parsed = self.parse_search(rtype, params, compartment, access)
        return self.run(parsed, access)

    def run(self, parsed: ParsedSearch, access: Access | None = None) -> SearchResult:
        if access is not None and access.compartment is not None:
            return self._run_confined(parsed, access)
        q = parsed.query
        if parsed.summary_count or parsed.count == 0:
            return SearchResult(q.type, [], [], self.backend.count(q), parsed.offset, parsed.count, False)
        q.limit, q.offset = parsed.count + 1, parsed.offset
        recs = self.backend.search(q)
        has_next = len(recs) > parsed.count
        recs = recs[: parsed.count]
        matches = [fhirjson.loads(r.body) for r in recs]  # type: ignore[arg-type]
        total: int | None
        if parsed.total == "none":
            total = None
        elif not has_next and (parsed.offset == 0 or recs):
            total = parsed.offset + len(recs)
        else:
            total = self.backend.count(Query(q.type, q.clauses, q.compartment, q.types))
        return self._result(parsed, matches, total, has_next, access)

    def _run_confined(self, parsed: ParsedSearch, access: Access) -> SearchResult:
        """A search for a caller confined to a compartment: every match goes through ``access.admit``.

        The backend narrows the query to the compartment; ``admit`` may still refuse a match (one
        that also names another patient) or leave elements out of it. Paging and ``total`` are
        counted over what the caller may see, so neither a count nor a short page tells of a
        refused match. One backend call when the whole result fits the page; otherwise the
        compartment's matches are scanned (up to ``CONFINED_SCAN_LIMIT``; beyond it no total),
        those outside the page only counted (``access.counts`` decides most from their bytes).
        """
        q = parsed.query
        want = parsed.offset + parsed.count
        need_total = parsed.total != "none" or parsed.summary_count or parsed.count == 0
        page: list[dict[str, Any]] = []
        seen = 0  # matches the caller may see, in order
        scanned, complete = 0, False
        limit = parsed.count + 1 if parsed.offset == 0 and not parsed.summary_count and parsed.count else CONFINED_SCAN_CHUNK
        while scanned < CONFINED_SCAN_LIMIT:
            q.limit, q.offset = limit, scanned
            recs = self.backend.search(q)
            scanned += len(recs)
            for rec in recs:
                if parsed.offset <= seen < want and not parsed.summary_count:
                    shown = access.admit(fhirjson.loads(rec.body), inside=True, raw=rec.body)  # type: ignore[arg-type]
                    if shown is not None:
                        page.append(shown)
                        seen += 1
                    continue
                verdict = access.counts(rec)
                if verdict is None:
                    verdict = access.admit(fhirjson.loads(rec.body), inside=True, raw=rec.body) is not None  # type: ignore[arg-type]
                seen += verdict
            if len(recs) < limit:
                complete = True
                break
            if not need_total and seen > want:
                break
            limit = CONFINED_SCAN_CHUNK
        total = seen if complete and need_total else None
        if parsed.summary_count or parsed.count == 0:
            return SearchResult(q.type, [], [], total, parsed.offset, parsed.count, False)
        return self._result(parsed, page, total, seen > want, access)

    def _result(self, parsed: ParsedSearch, matches: list[dict[str, Any]], total: int | None, has_next: bool,
                access: Access | None) -> SearchResult:
        included = self._includes(parsed, matches, parsed.query.compartment, access)
        if parsed.elements:
            matches = [self._elements(r, parsed.elements) for r in matches]
        return SearchResult(parsed.query.type, matches, included, total, parsed.offset, parsed.count, has_next)

    def _includes(
        self,
        parsed: ParsedSearch,
        matches: list[dict[str, Any]],
        compartment: frozenset[str] | None,
        access: Access | None = None,
    ) -> list[dict[str, Any]]:
        if not matches or not (parsed.includes or parsed.revincludes):
            return []
        seen = {(r["resourceType"], r["id"]) for r in matches}
        wanted: list[tuple[str, str]] = []
        for src, param, target in parsed.includes:
            definition = self.params.get(src, param)
            if definition is None:
                continue
            for resource in matches:
                if resource["resourceType"] != src:
                    continue
                for value in definition.evaluate(resource):
                    ref = value.get("reference") if isinstance(value, dict) else None
                    parsed_ref = parse_reference(ref, self.base_url) if isinstance(ref, str) else None
                    if parsed_ref and (target is None or parsed_ref[0] == target) and parsed_ref not in seen:
                        seen.add(parsed_ref)
                        wanted.append(parsed_ref)
        out = self._current(wanted)
        for src, param, target in parsed.revincludes:
            refs = [RefCond(param, r["resourceType"], r["id"]) for r in matches
                    if target is None or r["resourceType"] == target]
            if not refs:
                continue
            query = Query(src, [Clause(tuple(refs))], compartment, limit=INCLUDE_LIMIT)
            for rec in self.backend.search(query):
                if (rec.type, rec.id) not in seen:
                    seen.add((rec.type, rec.id))
                    out.append(fhirjson.loads(rec.body))  # type: ignore[arg-type]
        if access is not None:  # an included resource is read like any other: scope, compartment, content
            return [seen for r in out if (seen := access.admit(r)) is not None]
        if compartment is not None:
            out = [r for r in out if self.in_compartment(r, compartment)]
        return out

    def _current(self, targets: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The current versions of ``targets`` that are not deleted (at most ``INCLUDE_LIMIT``)."""
        return [fhirjson.loads(rec.body) for rec in self.backend.current_many(targets[:INCLUDE_LIMIT]).values()  # type: ignore[arg-type]
                if not rec.deleted]

    @staticmethod
    def _elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
        keep = {"resourceType", "id", "meta", *elements}
        out = {k: v for k, v in resource.items() if k in keep}
        meta = dict(out.get("meta") or {})
        tags = list(meta.get("tag") or [])
        tags.append({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"})
        meta["tag"] = tags
        out["meta"] = meta
        return out

    # -- compartments ------------------------------------------------------------------------------
    def in_compartment(self, resource: dict[str, Any], patient_ids: Iterable[str]) -> bool:
        """Is ``resource`` in the Patient compartment of any of ``patient_ids``?"""
        return bool(self.indexer.compartments(resource) & set(patient_ids))

    def everything(
        self,
        patient_id: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        compartment: Collection[str] | None = None,
        access: Access | None = None,
    ) -> SearchResult:
        """``Patient/{id}/$everything``: the patient, every resource in its compartment and, as R4
        defines the operation, "any resource referenced by these" (the Medication a prescription
        names, the performing Organization, the Practitioner): each page carries the resources its
        entries reference that are not themselves in the compartment, as ``search.mode`` include
        entries, read like any include (``access`` decides each one)."""
        if access is not None:
            compartment = access.compartment
        if compartment is not None and patient_id not in compartment:
            raise NotFound(f"Patient/{patient_id} is not known")
        self.read_raw("Patient", patient_id)
        allowed = {"_count", "_offset", "_type", "_since", "_elements"}
        for key, _ in params:
            if key not in allowed:
                raise BadRequest(f"$everything does not take '{key}'", expression=[key])
        pairs = [(k, v) for k, v in params if k != "_since"]
        if not any(k == "_count" for k, _ in pairs):
            pairs.append(("_count", str(EVERYTHING_COUNT)))
        for key, value in params:
            if key == "_since":
                pairs.append(("_lastUpdated", "ge" + value))
        parsed = self.parser.parse(None, [p for p in pairs if p[0] != "_lastUpdated"], compartment=frozenset({patient_id}))
        since = [v for k, v in pairs if k == "_lastUpdated"]
        if since:
            parsed.query.clauses.append(self.parser.parse("Patient", [("_lastUpdated", since[0])]).query.clauses[0])
        parsed.query.sort = []
        result = self.run(parsed, access)
        result.included.extend(self._referenced(result.resources, patient_id, access))
        return result

    def _referenced(
        self, page: list[dict[str, Any]], patient_id: str, access: Access | None
    ) -> list[dict[str, Any]]:
        """The resources ``page`` references that are outside ``patient_id``'s compartment (those
        inside it are entries of some page already), each once, at most ``INCLUDE_LIMIT``."""
        seen = {(r["resourceType"], r["id"]) for r in page}
        wanted: list[tuple[str, str]] = []
        for resource in page:
            for ref in references_in(resource, []):
                target = parse_reference(ref, self.base_url)
                if target is not None and target not in seen:
                    seen.add(target)
                    wanted.append(target)
        out = [r for r in self._current(wanted) if not self.in_compartment(r, {patient_id})]  # else its own entry
        if access is not None:
            return [seen_ for r in out if (seen_ := access.admit(r)) is not None]
        return out

    # -- Bundles -----------------------------------------------------------------------------------
    def transaction(
        self,
        bundle: dict[str, Any],
        *,
        access: Access | None = None,
        touched: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Process a ``transaction`` Bundle all or nothing; ``urn:uuid:`` references are rewritten.

        ``access``: every entry is read, matched and written as that caller.
        ``touched`` (optional) receives every resource the Bundle wrote or read, for the audit trail.
        """
        entries = self._bundle_entries(bundle, "transaction")
        mapping: dict[str, str] = {}
        plans: list[dict[str, Any]] = []
        with self.store.transaction():
            for n, entry in enumerate(entries):
                plans.append(self._plan(n, entry, mapping, access))
            for plan in plans:
                if plan.get("resource") is not None:
                    if mapping:  # nothing to rewrite when no entry has a urn:uuid fullUrl
                        _walk_references(plan["resource"], mapping)
                    if self.validator is not None:  # every entry valid before anything is written
                        try:
                            self.validator.validate(plan["resource"])
                        except FhirError as exc:
                            exc.diagnostics = f"entry {plan['n']}: {exc.diagnostics}"
                            exc.args = (exc.diagnostics,)
                            raise
                        plan["validated"] = True
            targets = [(p["resource"]["resourceType"], p["resource"]["id"]) for p in plans
                       if p.get("resource") is not None and p.get("match") is None]
            targets += [(p["path"][0], p["path"][1]) for p in plans if p["method"] == "DELETE" and len(p["path"]) == 2]
            if len(targets) != len(set(targets)):
                twice = next(t for t in targets if targets.count(t) > 1)
                raise BadRequest(f"{twice[0]}/{twice[1]} is the target of more than one entry of the transaction")
            current = self.backend.current_many([(p["resource"]["resourceType"], p["resource"]["id"])
                                                 for p in plans if p["method"] == "PUT"])
            for plan in plans:
                if plan["method"] == "PUT":
                    res = plan["resource"]
                    plan["existing"] = current.get((res["resourceType"], res["id"]))
            responses: list[dict[str, Any] | None] = [None] * len(plans)
            order = {"DELETE": 0, "POST": 1, "PUT": 2, "GET": 3}
            with self._grouped():
                for plan in sorted(plans, key=lambda p: (order[p["method"]], p["n"])):
                    if plan["method"] == "GET":
                        self._flush()
                    responses[plan["n"]] = self._execute_entry(plan, access, touched)
            for plan in plans:  # hook issues arrive at the flush: surface them per entry
                result, response = plan.get("result"), responses[plan["n"]]
                if result is not None and result.issues and response is not None:
                    response["response"]["outcome"] = {"resourceType": "OperationOutcome", "issue": result.issues}
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response",
                "entry": responses}

    def _execute_entry(
        self, plan: dict[str, Any], access: Access | None, touched: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        """One transaction entry; errors name the entry."""
        try:
            return self._execute(plan, access, touched)
        except FhirError as exc:
            # a confined caller's own URL may name what it was refused: the entry number says enough
            url = plan["url"] if access is None or access.compartment is None else plan["path"][0]
            exc.diagnostics = f"entry {plan['n']} ({plan['method']} {url}): {exc.diagnostics}"
            exc.args = (exc.diagnostics,)
            raise

    def batch(
        self,
        bundle: dict[str, Any],
        *,
        access: Access | None = None,
        touched: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Process a ``batch`` Bundle: each entry on its own (as ``access``), failures reported per entry."""
        entries = self._bundle_entries(bundle, "batch")
        responses = []
        for n, entry in enumerate(entries):
            try:
                with self.store.transaction():
                    responses.append(self._execute(self._plan(n, entry, {}, access), access, touched))
            except FhirError as exc:
                responses.append({"response": {"status": f"{exc.status} {_REASONS.get(exc.status, 'Error')}",
                                               "outcome": exc.outcome()}})
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "batch-response", "entry": responses}

    @staticmethod
    def _bundle_entries(bundle: Any, kind: str) -> list[dict[str, Any]]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise BadRequest("the body must be a Bundle")
        if bundle.get("type") != kind:
            raise BadRequest(f"Bundle.type must be '{kind}', got '{bundle.get('type')}'", expression=["Bundle.type"])
        entries = bundle.get("entry") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadRequest("Bundle.entry must be a list of entries", expression=["Bundle.entry"])
        return entries

    def _plan(
        self, n: int, entry: dict[str, Any], mapping: dict[str, str], access: Access | None = None
    ) -> dict[str, Any]:
        """Check one entry and work out its target id (filling ``mapping`` for urn:uuid fullUrls)."""
        where = f"Bundle.entry[{n}]"
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise BadRequest(f"{where}: request.method and request.url are required", expression=[f"{where}.request"])
        method = str(request.get("method", "")).upper()
        if method not in ("GET", "POST", "PUT", "DELETE"):
            raise BadRequest(f"{where}: method '{method}' is not supported", expression=[f"{where}.request.method"])
        url = request["url"]
        if self.base_url and url.startswith(self.base_url + "/"):
            url = url[len(self.base_url) + 1 :]
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        plan: dict[str, Any] = {"n": n, "method": method, "url": url, "path": parts, "query": query,
                                "resource": None, "if_match": request.get("ifMatch"),
                                "if_none_exist": request.get("ifNoneExist")}
        if not parts or parts[0] not in self.params.resource_types:
            raise BadRequest(f"{where}: request.url '{url}' does not name a resource type",
                             expression=[f"{where}.request.url"])
        full_url = entry.get("fullUrl")
        if method in ("POST", "PUT"):
            resource = entry.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != parts[0]:
                raise BadRequest(f"{where}: the resource must be a {parts[0]}", expression=[f"{where}.resource"])
            resource = fhirjson.loads(fhirjson.dumps(resource))  # own copy: references get rewritten
            plan["resource"] = resource
            if method == "POST":
                match = None
                if plan["if_none_exist"]:
                    match = self._conditional_match(parts[0], plan["if_none_exist"], f"{where}.request.ifNoneExist",
                                                    access)
                plan["match"] = match
                resource["id"] = match["id"] if match else str(uuid.uuid4())
            elif len(parts) == 2:
                self._check(parts[0], parts[1])
                if resource.get("id") not in (None, parts[1]):
                    raise BadRequest(f"{where}: resource id {resource.get('id')} differs from the URL id {parts[1]}",
                                     expression=[f"{where}.resource.id"])
                resource["id"] = parts[1]
                if plan["if_match"]:  # checked before anything is written, so a mismatch changes nothing
                    wanted = parse_etag(plan["if_match"])
                    existing = self.backend.current(parts[0], parts[1])
                    if existing is None or existing.deleted or existing.version != wanted:
                        raise PreconditionFailed(
                            f"{where}: ifMatch {plan['if_match']} does not match the current version of {url}")
            elif query:
                match = self._conditional_match(parts[0], query, f"{where}.request.url", access)
                resource["id"] = match["id"] if match else resource.get("id") or str(uuid.uuid4())
            else:
                raise BadRequest(f"{where}: PUT needs Type/id or Type?search", expression=[f"{where}.request.url"])
            if isinstance(full_url, str) and full_url:
                mapping[full_url] = f"{parts[0]}/{resource['id']}"
        return plan

    def _execute(
        self, plan: dict[str, Any], access: Access | None, touched: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        method, parts = plan["method"], plan["path"]
        validate = not plan.get("validated")
        if method == "GET":
            if len(parts) == 1:
                result = self.search(parts[0], parse_qsl(plan["query"], keep_blank_values=True), access=access)
                body = result.bundle(self.base_url, parts[0], parse_qsl(plan["query"], keep_blank_values=True))
                if touched is not None:
                    touched.extend(result.resources + result.included)
                return {"resource": body, "response": {"status": "200 OK"}}
            if len(parts) == 2:
                read = lambda: self.read(parts[0], parts[1])  # noqa: E731
            elif len(parts) == 4 and parts[2] == "_history":
                read = lambda: self.vread(parts[0], parts[1], parts[3])  # noqa: E731
            else:
                raise BadRequest(f"GET {plan['url']} is not supported in a Bundle")
            if access is None:
                resource = read()
            else:  # one answer for missing, deleted and not yours: nothing about the entry leaks
                try:
                    seen = access.admit(read())
                except (NotFound, Gone):
                    seen = None
                if seen is None:
                    raise NotFound(f"this {parts[0]} is not known")
                resource = seen
            if touched is not None:
                touched.append(resource)
            return {"resource": resource, "response": {"status": "200 OK", "etag": f'W/"{resource["meta"]["versionId"]}"',
                                                       "lastModified": resource["meta"]["lastUpdated"]}}
        if method == "DELETE":
            if len(parts) != 2:
                raise BadRequest(f"DELETE needs Type/id, got '{plan['url']}'")
            self.delete(parts[0], parts[1], access=access)
            return {"response": {"status": "204 No Content"}}
        resource = plan["resource"]
        if method == "POST" and plan.get("match") is not None:
            result = WriteResult(plan["match"], created=False, changed=False)
        elif method == "POST":
            self._check(resource["resourceType"], resource["id"])
            if access is not None:
                access.check_write(resource["resourceType"], resource, None)
            result = self._store(resource, None, skip_unchanged=False, validate=validate)
        else:
            if "existing" in plan:
                existing = plan["existing"]  # prefetched for the whole transaction
            else:
                existing = self.backend.current(resource["resourceType"], resource["id"])
            if access is not None:
                access.check_write(resource["resourceType"], resource, _body_of(existing))
            if plan["if_match"]:
                wanted = parse_etag(plan["if_match"])
                if existing is None or existing.deleted or existing.version != wanted:
                    raise PreconditionFailed(f"ifMatch {plan['if_match']} does not match the current version")
            result = self._store(resource, existing, validate=validate)
        plan["result"] = result
        stored = result.resource
        if touched is not None:
            touched.append(stored)
        response: dict[str, Any] = {
            "status": "201 Created" if result.created else "200 OK",
            "location": f"{stored['resourceType']}/{stored['id']}/_history/{stored['meta']['versionId']}",
            "etag": result.etag,
            "lastModified": stored["meta"]["lastUpdated"],
        }
        if result.issues:
            response["outcome"] = {"resourceType": "OperationOutcome", "issue": result.issues}
        return {"fullUrl": f"{self.base_url}/{stored['resourceType']}/{stored['id']}", "response": response}


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 410: "Gone", 412: "Precondition Failed", 422: "Unprocessable Entity"}
