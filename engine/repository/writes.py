"""The write path: each incoming resource combined with its stored version (merge rules, the
server's marks and statements), left alone when nothing changed, else guarded, validated,
versioned, indexed and put -- one at a time (create, update, delete) or a whole write group
(``write_many``, ingest's path), plus the light path for resources the server derives itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from engine import fhirjson
from engine.errors import BadRequest, ClaimRaced, Conflict, PreconditionFailed, WrittenMeanwhile
from engine.merge_rules import API, clients_times
from engine.repository.contracts import Access, WriteResult
from engine.repository.core import valid_ids
from engine.repository.group_commit import GroupCommit
from engine.repository.port import StoredResource
from engine.repository.search import ParsedSearch
from engine.repository.searching import Searching, SearchResult
from engine.repository.versioning import (
    FoundStored,
    as_stored,
    body_of,
    left_versions,
    parse_etag,
    unchanged,
    versioned,
)

# the records a PUT created (R4 http.html#update, update as create): ``Type/id`` -> the version the
# PUT made, so a history lists that version as the PUT it was (``put_created``). Kept beside the
# versions, not in them: a version stored before this (twenty-fifth round) has no note and shows
# what it showed (its first version a POST)
PUT_CREATES = "fhir_put_creates"
T = TypeVar("T")


class Writes(GroupCommit, Searching):
    """Create, update, conditional update, delete, ``write_many`` (see module docstring)."""

    def _store(
        self,
        resource: dict[str, Any],
        existing: StoredResource | None,
        *,
        skip_unchanged: bool = True,
        validate: bool = True,
        source: str = API,
        unhooked: bool = False,
        merged: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Combine with the stored version (merge rules, per writer ``source``), validate, version,
        index and store one resource, then run the write hooks.

        Only the marks, statements and guards that concern the resource's type are called
        (``TypeHooks``); with nothing stored, the merge rules are asked only when they guard a
        create (``MergeRules.as_is``): a first version is the incoming one; and a resource sent
        again as stored, byte for byte, is told unchanged before the merge rules (unless a
        statement may still add to it). Where it goes: a write group's buffer (``pending``), the
        stage of the group whose hooks are writing (``group_commit``: a derived write), or the
        backend at once. ``merged``: what the merge rules of ``source`` made of ``resource`` over
        the stored version its ``meta`` names, combined by the caller (``write_many(combined=)``):
        taken as the rules' answer while that version is still the current one.
        """
        reads = getattr(self._local, "reads", None)
        if reads:  # a hook writes: what it read before may be stale now
            reads.clear()
        rtype, rid = resource["resourceType"], resource["id"]
        hooks = self._hooks_of(rtype)
        marks = self._marks
        for n in hooks.marks:
            resource = marks[n](resource)
        previous = None
        if unhooked:
            skip_unchanged = False
        if existing is not None and not existing.deleted:
            if skip_unchanged and not hooks.statements:
                # the stored version again, byte for byte (every element the same: any merge rule
                # keeps it as it is), told without parsing the stored body
                same = as_stored(existing, resource)
                if same is not None:
                    return WriteResult(same, created=False, changed=False, issues=[], body=existing.body)
            previous = fhirjson.loads(existing.body)  # type: ignore[arg-type]
        if source == API:  # a client states its times: the converter's mark of a derived one is not hers to write
            resource = clients_times(resource, previous)
        # what this writer may change of the stored version: the merge rules (engine.merge_rules)
        issues: list[dict[str, Any]]
        if previous is None and self.merge.as_is(rtype, source, creating=True, resource=resource):
            issues = []
        elif merged is not None and not hooks.marks and _combined_over(merged, existing):
            resource, issues = merged, []  # the same rules over the same version: their answer again
        else:
            combined = self.merge.combine(previous, resource, source)
            resource, issues = combined.resource, combined.issues
            if previous is not None:
                # the labels are the stored version's own: a writer whose merge rules keep what it
                # leaves out (HL7 v2, no ``meta``) kept the stored version's labels, which the
                # combined content may no longer earn (an HR mark on a result entered in error)
                for n in hooks.marks:
                    resource = marks[n](resource)
        statements = self._statements
        for n in hooks.statements:
            resource = statements[n](resource, previous, source)
        if previous is not None and skip_unchanged and unchanged(existing, previous, resource):  # type: ignore[arg-type]
            return WriteResult(previous, created=False, changed=False, issues=issues, body=existing.body)
        guards = self._guards
        for n in hooks.guards:
            guards[n](resource, previous)
        if validate and self.validator is not None:
            self.validator.validate(resource)
        version = existing.version + 1 if existing is not None else 1
        pending = getattr(self._local, "pending", None)
        staged = None
        if pending is not None:
            updated = self._group_instant()
        else:  # a hook's write (derived: joins its group's stage) or a write alone
            staged = updated = self._stage_instant((rtype, rid))
            if updated is None:
                updated = self._now()
        stored = versioned(resource, str(version), updated)
        if unhooked and existing is not None:
            previous = self._before(existing)
        rows = self.indexer.rows(stored)
        rec = StoredResource(rtype, rid, version, updated, False, fhirjson.dumps(stored), writer=source)
        result = WriteResult(stored, created=existing is None or existing.deleted, issues=issues, body=rec.body)
        if pending is not None:  # group commit: stored (and hooked) together by _flush()
            pending.append((rec, rows, existing, stored, previous, result))
            return result
        if staged is not None:  # stored with the group's other derived versions, hooked after them
            self._stage((rec, rows, existing, stored, previous, result))
            return result
        try:
            if getattr(self.store, "in_transaction", False):
                # inside the caller's transaction (write_many, Bundles, a hook's own write): a failure
                # propagates and rolls the whole of it back, so no savepoint is needed
                self._flush()
                self.backend.put(rec, rows, existing)
                self._note_trail(((rec, rows, existing),))
                self._remember((rec,))
                self._hooked([(stored, previous, issues)])
            else:
                with self.store.transaction():
                    self.backend.put(rec, rows, existing)
                    self._note_trail(((rec, rows, existing),))
                    self._remember((rec,))
                    self._hooked([(stored, previous, issues)])
        except BaseException:
            self._forget_known()
            raise
        return result

    def _before(self, rec: StoredResource) -> dict[str, Any] | None:
        """The version ``rec`` replaced, parsed (None: ``rec`` is a first version, or follows a
        deletion), for the hooks of a rewrite of ``rec`` (``_store(unhooked=True)``)."""
        if rec.version <= 1:
            return None
        before = self.backend.version(rec.type, rec.id, rec.version - 1)
        if before is None or before.deleted or before.body is None:
            return None
        return fhirjson.loads(before.body)  # type: ignore[no-any-return]

    def run(self, parsed: ParsedSearch, access: Access | None = None) -> SearchResult:
        """A search reads the backend: what the hooks of a group derived is put first."""
        self._put_staged()
        return super().run(parsed, access)

    def create(
        self, resource: dict[str, Any], *, if_none_exist: str | None = None, access: Access | None = None
    ) -> WriteResult:
        """Create with a server-assigned id; with ``if_none_exist`` return the one match instead.

        With ``access``, the write is decided first and the match is sought by the caller's own
        search (``Access.conditional_matches``): a caller cannot learn from the answer, or from a
        403 against a 201, that someone else's record matches."""
        resource = self._prepare(resource)
        if not if_none_exist:
            return self._create(resource, None, access)
        return self.claimed(lambda: self._create(resource, if_none_exist, access))

    def claimed(self, run: Callable[[], T]) -> T:
        """``run`` (a conditional interaction in a transaction of its own), and once more if it
        lost its claim to a racer (``ClaimRaced``): that error aborted its transaction on a
        replica set (nothing more may run in it), so the second run is a new transaction, whose
        search finds the winner's resource -- or the claim still under way, then 409. Inside a
        caller's transaction there is nothing to run again: the 409 ends it (claimfix29)."""
        if getattr(self.store, "in_transaction", False):
            return run()
        try:
            return run()
        except ClaimRaced:
            return run()

    def _create(self, resource: dict[str, Any], if_none_exist: str | None, access: Access | None) -> WriteResult:
        with self.store.transaction():
            new = dict(resource)
            new["id"] = str(uuid.uuid4())
            if access is not None:
                access.check_write(new["resourceType"], new, None)
            if if_none_exist:
                rtype = resource["resourceType"]

                def match() -> dict[str, Any] | None:
                    return self._conditional_match(rtype, if_none_exist, "If-None-Exist", access)

                # no match: the condition claimed for the new id (MongoDB: two racing creates both
                # searched before either stored; SQLite's write lock already orders them)
                existing = match() or self.backend.claim_condition(rtype, if_none_exist, new["id"], match)
                if existing is not None:
                    return WriteResult(existing, created=False, changed=False)
            return self._store(new, None, skip_unchanged=False)

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
            if access is not None:  # the body first: what is refused for it is refused at any id
                access.check_write(rtype, resource, None)
            existing = self._current_one(rtype, rid)
            if access is not None:  # decided on the stored version, inside the write's transaction
                access.check_write(rtype, resource, body_of(existing))
            if if_match is not None:
                wanted = parse_etag(if_match)
                if existing is None or existing.deleted:
                    raise PreconditionFailed(f"If-Match {if_match}: {rtype}/{rid} does not exist")
                if existing.version != wanted:
                    raise PreconditionFailed(
                        f"If-Match {if_match} does not match the current version {existing.version} of {rtype}/{rid}")
            try:
                result = self._store(resource, existing, source=source)
            except WrittenMeanwhile as exc:  # another writer got there first (``MongoFhir._replace_current``);
                if if_match is None:  # a business rule's Conflict (a workflow 409) is not this and stays 409
                    raise
                raise PreconditionFailed(f"If-Match {if_match}: {rtype}/{rid} was written meanwhile "
                                         f"({exc.diagnostics})") from None
            if source == API:
                self.note_put_create(result)
            return result

    def note_put_create(self, result: WriteResult) -> None:
        """Note a version a PUT created (``PUT_CREATES``), in the write's transaction: every such
        version of the record, not the last one only -- a record PUT-created, deleted and PUT-created
        again listed its first version as a POST once the second create overwrote the one note
        (txfix25). A record's first version starts the list afresh (an expunged id made again)."""
        if result.created:
            stored = result.resource
            key = f"{stored['resourceType']}/{stored['id']}"
            version = int(result.version)
            kept = self.put_created(stored["resourceType"], stored["id"]) if version > 1 else frozenset()
            self.store.collection(PUT_CREATES).replace({"_id": key, "version": version,
                                                        "versions": sorted(kept | {version})})

    def put_created(self, rtype: str, rid: str) -> frozenset[int]:
        """The versions of ``rtype/rid`` a PUT created (``PUT_CREATES``); empty: none noted. A note
        written before txfix25 holds one ``version``."""
        doc = self.store.collection(PUT_CREATES).get(f"{rtype}/{rid}")
        if doc is None:
            return frozenset()
        versions = doc.get("versions")
        if isinstance(versions, list):
            return frozenset(v for v in versions if isinstance(v, int))
        version = doc.get("version")
        return frozenset([version]) if isinstance(version, int) else frozenset()

    def conditional_update(
        self, rtype: str, query: str, resource: dict[str, Any], *, access: Access | None = None
    ) -> WriteResult:
        """``PUT Type?search``: update the one match, create when none, 412 when several."""
        resource = self._prepare(resource)
        if resource["resourceType"] != rtype:
            raise BadRequest(f"the body is a {resource['resourceType']}, the URL says {rtype}")
        return self.claimed(lambda: self._conditional_update(rtype, query, resource, access))

    def _conditional_update(self, rtype: str, query: str, resource: dict[str, Any],
                            access: Access | None) -> WriteResult:
        with self.store.transaction():
            if access is not None:  # the body decided before the search answers anything
                access.check_write(rtype, resource, None)
            def search() -> dict[str, Any] | None:
                return self._conditional_match(rtype, query, "conditional update", access)

            match = search()
            new = dict(resource)
            if match is None:  # a create: the condition claimed for its id first, as ``create``'s
                if isinstance(new.get("id"), str):
                    self.refuse_standing(rtype, new, "conditional update", access)
                rid = new["id"] if "id" in new else str(uuid.uuid4())  # (an odd one is refused by ``update``)
                match = self.backend.claim_condition(rtype, query, rid, search)
                if match is None:
                    new["id"] = rid
                    return self.update(new, access=access)
            if new.get("id") not in (None, match["id"]):
                raise BadRequest(f"the body's id {new['id']} differs from the matching {rtype}/{match['id']}")
            new["id"] = match["id"]
            return self.update(new, access=access)

    def refuse_standing(self, rtype: str, new: dict[str, Any], where: str, access: Access | None) -> None:
        """R4 conditional update (http.html#cond-update), no matches: "id provided and already
        exist: the server rejects the update with a 409 Conflict" -- it wrote the body over the
        record at that id, which the search had just said was not the one meant (the review of
        prb23; twenty-third round, prbfix23). Judged as the update would be first, so a record the
        caller may not write over answers as ever (a withheld one 404, as a made-up id does; a
        bound caller's record out of its remit 403): 409 only for a record the caller could have
        written. A deleted record is no longer there (the update re-creates it, as a PUT does)."""
        rid = new["id"]
        self._check(rtype, rid)
        existing = self._current_one(rtype, rid)
        if existing is None or existing.deleted:
            return
        if access is not None:
            access.check_write(rtype, new, body_of(existing))
        raise Conflict(f"{where}: the search matched no {rtype}, and the body's id names {rtype}/{rid}, "
                       "which stands: not written over (R4: 409); drop the id to create, or PUT at the id to update")

    def delete(self, rtype: str, rid: str, *, access: Access | None = None) -> int | None:
        """Delete; later reads get 410. Deleting what is absent or already deleted changes nothing."""
        self._check(rtype, rid)
        reads = getattr(self._local, "reads", None)
        if reads:
            reads.clear()
        with self.store.transaction():
            self._put_staged()  # a hook deleting what the hooks of its group derived: stored first
            existing = self._current_one(rtype, rid)
            if access is not None:
                access.check_write(rtype, None, body_of(existing))
            if existing is None or existing.deleted:
                return None
            rec = StoredResource(rtype, rid, existing.version + 1, self._now(), True, None)
            try:
                self.backend.put(rec, None, existing)
                self._note_trail(((rec, None, existing),))
                self._remember((rec,))
                for hook, types in self._delete_hooks:
                    if rtype in types:
                        hook(rtype, rid)  # inside the delete's transaction, as a write hook is
            except BaseException:
                self._forget_known()
                raise
            return rec.version

    def add_delete_hook(self, hook: Callable[[str, str], None], *, types: Collection[str]) -> None:
        """``hook(type, id)`` runs inside the transaction of a ``delete`` of a resource of ``types``
        (the patient index: a deleted Patient stops counting for its person)."""
        self._delete_hooks.append((hook, frozenset(types)))

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
        validated: bool = False, rewrite: Collection[str] = (), combined: Mapping[str, dict[str, Any]] | None = None,
    ) -> list[WriteResult]:
        """Upsert many resources in one transaction (group commit); unchanged ones get no new version.

        ``create_only`` names (``Type/id``) resources that are written only when absent: a lab or
        imaging message carries a thin Patient/Encounter so its Bundle stands alone, and must not
        overwrite the richer version the ADT feed stored. ``validated``: the caller has validated
        these very resources (``valid_groups``) and not changed them since. ``rewrite`` names
        (``Type/id/_history/n``) versions a failed block left stored without running their write
        hooks (a MongoDB block whose undo failed: ``UndoIncomplete``); each still current is
        written again as a new version, create-only or unchanged alike, and its hooks run
        (``_store(unhooked=True)``, handed the version before it). One written over since (a later
        message, another feed, the replay of another message that shared it) or deleted is
        written as without ``rewrite``: its hooks ran for what replaced it, and a rewrite would
        put the old content back over it and skip ``create_only``. A bare ``Type/id`` (no
        version known) is rewritten whatever its current version.

        ``combined`` (``Type/id`` -> resource): what the caller's own look at the stored version
        already made of a resource by the merge rules of ``source`` (the patient index asks them
        whether its links change anything before writing): while the version that look named
        (``meta.versionId`` and ``meta.lastUpdated``) is still the current one, ``_store`` takes it
        as the rules' answer instead of combining again (~50 us a Patient in the ingest pipeline).

        A first version (nothing stored under its key, nothing in this group before it) of a type
        whose writer's merge rules take it as it is and that no statement or guard concerns is
        versioned right here (``_first_versions``); every other goes through ``_store``.
        """
        keys = self._checked_keys(resources)
        if self.validator is not None and not validated:  # all valid before anything is written
            for r in resources:
                self.validator.validate(r)
        left = left_versions(rewrite) if rewrite else None
        with self.store.transaction():
            # a group of its own unless the caller's is open (``_open_group``; ``_grouped`` inline)
            opened = self._open_group()
            try:
                results = self._write_group(resources, keys, create_only, source, left, combined)
                if opened:
                    self._flush()
            finally:
                if opened:
                    self._close_group()
        return results

    def _write_group(self, resources: Sequence[dict[str, Any]], keys: list[tuple[str, str]],
                     create_only: Collection[str], source: str, left: dict[str, int | None] | None,
                     combined: Mapping[str, dict[str, Any]] | None = None) -> list[WriteResult]:
        """The body of ``write_many``, inside its transaction and write group."""
        pending = getattr(self._local, "pending", None)
        if pending and not {(e[0].type, e[0].id) for e in pending}.isdisjoint(keys):
            # an earlier write_many of the same group wrote one of these: stored first, so that
            # this one versions it again (not a second version 1 of the same key)
            self._flush()
        current = self._current_of(keys)
        # a group's buffer (not a hook's derived write, which ``_store`` stages)
        first = self._first_versions(source) if pending is not None else None
        # (a message stating part of an order only as its number's owner, or a correction's result: its first
        # versions asked, ``first_combined``)
        owning = first is not None and self.merge.owning()
        marks, rows_of, dumps = self._marks, self.indexer.rows, fhirjson.dumps
        results: list[WriteResult] = []
        written: set[tuple[str, str]] = set()
        updated: str | None = None  # the group's instant, once asked (a flush makes the next one later)
        for r, key in zip(resources, keys):  # noqa: B905 -- one key per resource, by construction
            if key in written:  # the same resource twice: store the first before versioning the second
                self._flush()
                updated = None
                rec = self._current_one(*key)
                if rec is not None:
                    current[key] = rec
            existing = current.get(key)
            if existing is None and first is not None:
                try:
                    own = first[key[0]]
                except KeyError:
                    own = self._first_of(key[0], source)
                # (unless the message states part of it only as its number's owner: combined, to be said)
                if own is not None and not (owning and self.merge.first_combined(key[0], r)):
                    for n in own:
                        r = marks[n](r)
                    if updated is None:
                        updated = self._group_instant()
                    stored = versioned(r, "1", updated)
                    body = dumps(stored)
                    result = WriteResult(stored, True, [], True, body)
                    pending.append((StoredResource(key[0], key[1], 1, updated, False, body, writer=source),  # type: ignore[union-attr]
                                    rows_of(stored), None, stored, None, result))
                    written.add(key)
                    results.append(result)
                    continue
            # (once: a second occurrence in the group meets the version the first one made)
            unhooked = False
            if left is not None and existing is not None and not existing.deleted and key not in written:
                ref = f"{key[0]}/{key[1]}"
                unhooked = ref in left and left[ref] in (None, existing.version)
            if existing is not None and not existing.deleted and not unhooked \
                    and f"{key[0]}/{key[1]}" in create_only:
                found = FoundStored(existing)  # parsed only if its resource is read
                if self.merge.wants_found(key[0], source):  # another patient's message under its number
                    found.issues = self.merge.found(found.resource, r, source)
                results.append(found)
                continue
            result = self._store(r, existing, validate=False, source=source, unhooked=unhooked,
                                 merged=combined.get(f"{key[0]}/{key[1]}") if combined else None)
            updated = None  # it may have put the group (a hook's nested write)
            if result.changed:
                written.add(key)
            results.append(result)
        return results

    def _checked_keys(self, resources: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        """Each resource checked (a FHIR resource of a known type, an id; a new one gets a server id)
        and its (type, id) key, in order. The ids of a whole group are matched by one pattern: the
        same rule as ``_check``, which gives the error for the first bad one when it fails."""
        types = self.params.resource_types
        for r in resources:  # all checked before any gets a server id
            rtype = r.get("resourceType") if isinstance(r, dict) else None
            if type(rtype) is not str or rtype not in types:
                self._prepare(r)  # raises the error for it
        keys: list[tuple[str, str]] = []
        ids: list[str] = []
        for r in resources:
            rid = r.get("id")
            if not isinstance(rid, str):
                rid = r["id"] = str(uuid.uuid4())
            keys.append((r["resourceType"], rid))
            ids.append(rid)
        if keys and not valid_ids(ids):
            for rtype, rid in keys:
                self._check(rtype, rid)
        return keys

    def _first_versions(self, source: str) -> dict[str, tuple[int, ...] | None]:
        """For writes of ``source``: per resource type already decided, the positions of the marks a
        first version meets when it may skip ``_store`` (the merge rules take what ``source``
        creates as it is, and no statement or guard concerns the type), else None; a type not in
        it yet is decided by ``_first_of``.

        Kept across write groups (ingest writes one group per message, each asking the same few
        types) and dropped when a registration changes what concerns a type (``_register``).
        Positions, not the callables: an entry replaced in place (a profiler wraps them) is the
        one called."""
        decided = self._first_decided.get(source)
        if decided is None:
            decided = self._first_decided[source] = {}
        return decided

    def _first_of(self, rtype: str, source: str) -> tuple[int, ...] | None:
        """Decide ``rtype`` for ``_first_versions``."""
        hooks = self._hooks_of(rtype)
        found = self._first_versions(source)[rtype] = (
            hooks.marks if not hooks.statements and not hooks.guards
            and self.merge.as_is(rtype, source, creating=True) else None)
        return found

    def insert_derived(self, resources: Sequence[dict[str, Any]]) -> None:
        """Store new resources the server derived itself (the audit log's AuditEvent view) as
        version 1, with their index rows, in the caller's transaction.

        The light path: no validation (the deriving code has one fixed shape, proven valid by its
        tests), no write hooks (nothing reacts to them), no versioning (the ids are new by
        construction). One ``current_many`` for the whole batch still checks that: an id already
        stored raises ValueError, which rolls the caller's transaction back, since no store index
        refuses a second row of one (type, id) by itself. An AuditEvent view is written for every
        audited read, so what the general path adds per resource is paid on every read.
        """
        taken = self.backend.current_many([(r["resourceType"], r["id"]) for r in resources])
        if taken:
            raise ValueError(f"insert_derived: already stored: {sorted('/'.join(k) for k in taken)}")
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
            self._remember(rec for rec, _, _ in items)


def _combined_over(combined: dict[str, Any], existing: StoredResource | None) -> bool:
    """Whether ``combined`` was combined over ``existing``, the current version: its ``meta`` (kept
    from the stored version by the rules) names that version and that version's instant (the
    clock gives each put its own, so a version rolled back and made again is told apart)."""
    meta = combined.get("meta")
    return (existing is not None and not existing.deleted and isinstance(meta, dict)
            and meta.get("versionId") == str(existing.version) and meta.get("lastUpdated") == existing.updated)
