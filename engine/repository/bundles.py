"""Transaction and batch Bundles: each entry checked and planned (its target id, ``urn:uuid``
references rewritten), then executed through the repository's own reads, searches and writes --
a transaction all or nothing in one write group, a batch entry by entry.

Kept apart from the repository's single-resource operations as Medplum keeps ``batch.ts`` apart
from ``repo.ts``: a Bundle is a sequence of ordinary requests, with an order and an outcome per
entry of its own.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from engine import fhirjson
from engine.errors import BadRequest, FhirError, Gone, NotFound, PreconditionFailed, WithheldMatch
from engine.repository.contracts import Access, WriteResult
from engine.repository.reads import Reads
from engine.repository.references import (
    is_conditional,
    placeholder_references,
    references_at,
    references_in,
    rewrite_references,
)
from engine.repository.searching import condition_pairs, condition_text, only_elements, read_elements
from engine.repository.versioning import body_of, parse_etag
from engine.repository.writes import Writes

# R4 Bundle.entry.request.method (HTTPVerb)
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# parameters that shape the answer's format, not the search (dropped, as the HTTP routes drop them)
_CONTROL = frozenset({"_format", "_pretty"})
_FORM = "application/x-www-form-urlencoded"


def interaction(method: str, parts: list[str]) -> str:
    """What an entry asks, from its method and its url's path segments (R4 http.html), so that a
    Bundle runs what the same request over HTTP would run: ``search`` (``GET``/``HEAD [type]``,
    and ``POST [type]/_search`` -- a search, never a create), ``read``, ``vread``, ``create``
    (``POST [type]``), ``update`` (``PUT [type]/[id]``, ``PUT [type]?search``), ``delete``
    (``DELETE [type]/[id]``), ``patch``, ``operation`` (a ``$name`` segment), or ``other`` (a
    shape HTTP has no route for either: ``POST [type]/[id]``, ``DELETE [type]?search``)."""
    if any(p.startswith("$") for p in parts[1:]):
        return "operation"
    n = len(parts)
    if method in ("GET", "HEAD"):
        return "search" if n == 1 else "read" if n == 2 else "vread" if n == 4 and parts[2] == "_history" else "other"
    if method == "POST":
        return "create" if n == 1 else "search" if n == 2 and parts[1] == "_search" else "other"
    if method == "PUT":
        return "update" if n in (1, 2) else "other"
    if method == "DELETE":
        return "delete" if n == 2 else "other"
    if method == "PATCH":
        return "patch"
    return "other"


# the scope an entry's interaction needs (``None``: none is run, the entry is refused on its own)
SCOPE_OF = {"search": "s", "read": "r", "vread": "r", "create": "c", "update": "u", "patch": "u", "delete": "d"}


class Bundles(Writes, Reads):
    """``transaction`` and ``batch`` (see module docstring)."""

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
        _refuse_one_condition_twice(entries, self.base_url)
        mark = len(touched) if touched is not None else 0

        def run() -> dict[str, Any]:
            if touched is not None:  # a second run (``claimed``) lists what it reads afresh
                del touched[mark:]
            return self._transaction(entries, access, touched)

        try:
            return self.claimed(run)
        finally:
            if access is not None:
                access.transaction_writes(None)

    def _transaction(
        self, entries: list[dict[str, Any]], access: Access | None, touched: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        mapping: dict[str, str] = {}
        plans: list[dict[str, Any]] = []
        # a conditional entry's body (and an ifMatch entry's) is judged as it is planned, before the
        # other entries are: as the transaction would write it (``_provisional``)
        early = _provisional(entries, self.base_url)
        with self.store.transaction():
            if access is not None:
                access.transaction_writes(early.writes)
            for n, entry in enumerate(entries):
                plans.append(self._plan(n, entry, mapping, access, early=early))
            by_base = _by_base(mapping)
            for plan in plans:  # before conditional references become this server's ``Type/id``
                if plan.get("resource") is not None:
                    _refuse_unresolvable_relatives(plan, by_base, self.base_url)
            self._resolve_conditional_references(plans, mapping, access, touched)
            for plan in plans:
                if plan.get("resource") is not None:
                    if mapping:  # nothing to rewrite when no entry has a urn:uuid fullUrl
                        rewrite_references(plan["resource"], _entry_mapping(mapping, by_base, plan.get("full_url")))
                    _refuse_placeholders(plan["resource"], f"entry {plan['n']}", f"Bundle.entry[{plan['n']}].resource")
                    if self.validator is not None:  # every entry valid before anything is written
                        # each issue's expression from the Bundle sent (``Bundle.entry[1].resource.text.div``), as
                        # ``_refuse_placeholders`` names it: ``Patient.text.div`` named no entry (rv43c LOW 5)
                        try:
                            self.validator.validate(plan["resource"], f"Bundle.entry[{plan['n']}].resource")
                        except FhirError as exc:
                            exc.diagnostics = f"entry {plan['n']}: {exc.diagnostics}"
                            exc.args = (exc.diagnostics,)
                            raise
                        plan["validated"] = True
            targets = [(p["resource"]["resourceType"], p["resource"]["id"]) for p in plans
                       if p.get("resource") is not None and p.get("match") is None]
            targets += [(p["path"][0], p["path"][1]) for p in plans if p["kind"] == "delete"]
            if len(targets) != len(set(targets)):
                twice = next(t for t in targets if targets.count(t) > 1)
                raise BadRequest(f"{twice[0]}/{twice[1]} is the target of more than one entry of the transaction")
            # R4 http.html#trules: resolved identities overlapping fail the transaction -- a
            # conditional create (ifNoneExist) whose match another entry deletes or replaces too.
            # It was answered "200 Patient/old" while the DELETE of old ran, and the entries citing
            # its fullUrl were stored pointing at a deleted record (probef25; txmend25)
            written = set(targets)
            for p in plans:
                match = p.get("match")
                if match is not None and (p["path"][0], match["id"]) in written:
                    raise BadRequest(f"entry {p['n']}: its ifNoneExist matches {p['path'][0]}/{match['id']}, which "
                                     "another entry of the transaction deletes or writes (R4: resolved identities "
                                     "must not overlap); send the two as separate requests",
                                     expression=[f"Bundle.entry[{p['n']}].request.ifNoneExist"])
            if access is not None:
                # the records the transaction writes (not a conditional create's match: stored, it
                # is judged as such), before any entry runs: a citation of one is judged by its
                # entry, whatever the order (``ScopedRepository.transaction_writes``)
                access.transaction_writes({(p["resource"]["resourceType"], p["resource"]["id"]): p["resource"]
                                           for p in plans if p.get("resource") is not None and p.get("match") is None})
            current = self.backend.current_many([(p["resource"]["resourceType"], p["resource"]["id"])
                                                 for p in plans if p["kind"] == "update"])
            for plan in plans:
                if plan["kind"] == "update":
                    res = plan["resource"]
                    plan["existing"] = current.get((res["resourceType"], res["id"]))
            responses: list[dict[str, Any] | None] = [None] * len(plans)
            # R4 transaction order: deletes, creates, updates, then reads and searches (a
            # ``POST [type]/_search`` among them: it is a search, run after the writes)
            order = {"delete": 0, "create": 1, "update": 2, "read": 3, "vread": 3, "search": 3}
            with self._grouped():
                for plan in sorted(plans, key=lambda p: (order[p["kind"]], p["n"])):
                    if order[plan["kind"]] == 3:
                        self._flush()
                    responses[plan["n"]] = self._execute_entry(plan, access, touched)
            for plan in plans:  # hook issues arrive at the flush: surface them per entry
                result, response = plan.get("result"), responses[plan["n"]]
                if result is not None and result.issues and response is not None:
                    response["response"]["outcome"] = {"resourceType": "OperationOutcome", "issue": result.issues}
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response",
                "entry": responses}

    def _resolve_conditional_references(
        self, plans: list[dict[str, Any]], mapping: dict[str, str], access: Access | None,
        touched: list[dict[str, Any]] | None = None,
    ) -> None:
        """R4 transaction processing: each conditional reference (``Patient?identifier=…``) in an
        entry's resource stands for the one record its search matches -- the caller's own search,
        on what is stored before the transaction writes -- and is rewritten to it; none or several
        fail the transaction (412). It used to be stored as written: a reference to nothing, so the
        Encounter never reached its patient's compartment, searches or recognition.

        The lookup is a search the caller runs: it needs their search scope on the referenced type
        (``ScopedRepository.require_conditional``; a ``user/Patient.r`` token cannot search Patients over HTTP, nor through a reference --
        whose 412 or 200 told whether someone holds an identifier), and the match is recorded in
        ``touched`` for the audit trail like any record a search finds (labelsmend19). A match
        labelled beyond the caller is told as none, in the same words (labelslast19)."""
        for plan in plans:
            if plan.get("resource") is None:
                continue
            for ref in references_in(plan["resource"], []):
                if ref in mapping or not is_conditional(ref):
                    continue
                rtype, _, query = ref.partition("?")
                where = f"Bundle.entry[{plan['n']}] reference"
                if rtype not in self.params.resource_types:
                    raise BadRequest(f"{where} '{ref[:80]}': '{rtype[:40]}' is not a FHIR R4 resource type")
                try:  # the caller's search scope is asked by ``Access.conditional_matches``
                    match = self._conditional_match(rtype, query, where, access)
                except WithheldMatch:
                    match = None  # told as a match of nothing: the same text, whatever is withheld
                if match is None:
                    raise PreconditionFailed(f"{where} '{ref[:80]}' matches no {rtype}")
                if touched is not None:
                    touched.append(match)
                mapping[ref] = f"{rtype}/{match['id']}"

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
                # an entry that lost its condition's claim to a racer runs once more (``claimed``)
                responses.append(self.claimed(lambda: self._batch_entry(n, entry, access, touched)))  # noqa: B023
            except FhirError as exc:
                responses.append({"response": {"status": f"{exc.status} {_REASONS.get(exc.status, 'Error')}",
                                               "outcome": exc.outcome()}})
        return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "batch-response", "entry": responses}

    def _batch_entry(self, n: int, entry: dict[str, Any], access: Access | None,
                     touched: list[dict[str, Any]] | None) -> dict[str, Any]:
        """One batch entry, in a transaction of its own."""
        with self.store.transaction():
            plan = self._plan(n, entry, {}, access, batch=True)
            if plan.get("resource") is not None:  # no entry of a batch defines a placeholder
                _refuse_placeholders(plan["resource"], f"Bundle.entry[{n}]", f"Bundle.entry[{n}].resource")
                # nor a record its relative references name: at another server's base they are
                # that server's (the last review of the twenty-fifth round: a batch filed them here)
                _refuse_unresolvable_relatives(plan, {}, self.base_url)
            return self._execute(plan, access, touched)

    @staticmethod
    def _bundle_entries(bundle: Any, kind: str) -> list[dict[str, Any]]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise BadRequest("the body must be a Bundle")
        if bundle.get("type") != kind:
            raise BadRequest(f"Bundle.type must be '{kind}', got '{bundle.get('type')}'", expression=["Bundle.type"])
        entries = bundle.get("entry") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadRequest("Bundle.entry must be a list of entries", expression=["Bundle.entry"])
        # bdl-7: a fullUrl names one entry (or versions of one resource). Two entries under one
        # ``urn:uuid:`` had every reference to it rewritten to the later one: an Encounter of
        # patient a stored as patient b's
        seen: dict[str, Any] = {}
        for n, entry in enumerate(entries):
            full_url = entry.get("fullUrl")
            if not isinstance(full_url, str):
                continue
            resource = entry.get("resource")
            meta = resource.get("meta") if isinstance(resource, dict) else None
            version = meta.get("versionId") if isinstance(meta, dict) else None
            if full_url in seen and (version is None or seen[full_url] is None or version == seen[full_url]):
                raise BadRequest(f"Bundle.entry[{n}].fullUrl {full_url[:80]} names another entry too (bdl-7: "
                                 "fullUrl must be unique in a Bundle)", expression=[f"Bundle.entry[{n}].fullUrl"])
            seen[full_url] = version
        return entries

    def _plan(
        self, n: int, entry: dict[str, Any], mapping: dict[str, str], access: Access | None = None,
        *, batch: bool = False, early: _Provisional | None = None,
    ) -> dict[str, Any]:
        """Check one entry and work out its target id (filling ``mapping`` for urn:uuid fullUrls)."""
        where = f"Bundle.entry[{n}]"
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise BadRequest(f"{where}: request.method and request.url are required", expression=[f"{where}.request"])
        method = str(request.get("method", "")).upper()
        if method not in METHODS:
            raise BadRequest(f"{where}: method '{method}' is not supported", expression=[f"{where}.request.method"])
        for name in ("ifMatch", "ifNoneMatch", "ifNoneExist", "ifModifiedSince"):
            if name in request and not isinstance(request[name], str):  # a number here was a 500
                raise BadRequest(f"{where}: request.{name} must be a string", expression=[f"{where}.request.{name}"])
        url, path, query, parts = _target(request["url"], self.base_url)
        kind = interaction(method, parts)
        plan: dict[str, Any] = {"n": n, "method": method, "url": url, "path": parts, "query": query,
                                "kind": kind, "resource": None, "if_match": request.get("ifMatch"),
                                "if_none_exist": request.get("ifNoneExist"),
                                "if_none_match": request.get("ifNoneMatch"),
                                "if_modified_since": request.get("ifModifiedSince"),
                                "full_url": entry.get("fullUrl")}
        if not parts or parts[0] not in self.params.resource_types:
            raise BadRequest(f"{where}: request.url '{url}' does not name a resource type",
                             expression=[f"{where}.request.url"])
        if kind == "operation":
            raise FhirError(f"{where}: operations ({method} {path}) are not run inside a Bundle here; "
                            "call them on their own URL", status=400, code="not-supported",
                            expression=[f"{where}.request.url"])
        # a refused method is the entry's 405 in a batch; a transaction fails whole, and its 405 on
        # ``POST /fhir`` would say the endpoint refuses POST, with no ``Allow`` (RFC 9110 15.5.6): 400
        refused = 405 if batch else 400
        if kind == "patch":
            raise FhirError(f"{where}: PATCH is not supported (not over HTTP either): send the whole resource "
                            "with PUT", status=refused, code="not-supported", expression=[f"{where}.request.method"])
        if kind == "other" and method in ("GET", "HEAD"):
            raise FhirError(f"{where}: {method} {path} is not supported in a Bundle (call it on its own URL)",
                            status=400, code="not-supported", expression=[f"{where}.request.url"])
        if kind == "other":  # the answer HTTP gives the same request: no such interaction (405)
            raise FhirError(f"{where}: {method} {path} is not an interaction huren supports",
                            status=refused, code="not-supported", expression=[f"{where}.request.url"])
        if kind == "search":
            plan["search"] = [*self._query_params(query), *self._search_body(entry.get("resource"), where)]
            return plan
        if kind in ("read", "vread"):
            plan["elements"] = read_elements(parse_qsl(query, keep_blank_values=True))
            return plan
        if batch:  # a batch entry (a transaction resolves them: ``_resolve_conditional_references``)
            refs = references_in(entry.get("resource"), []) if isinstance(entry.get("resource"), dict) else []
            conditional = next((r for r in refs if is_conditional(r)), None)
            if conditional is not None:
                raise BadRequest(f"{where}: the conditional reference '{conditional[:80]}' is resolved in a "
                                 "transaction only (R4); send the Bundle as a transaction, or the record's id",
                                 expression=[f"{where}.resource"])
        if kind == "create" and not plan["if_none_exist"] and query:
            # ``POST [type]?search``, the conditional create fhirpy sends, means over HTTP what
            # ``ifNoneExist`` means: the Bundle entry used to drop the query and create a duplicate
            plan["if_none_exist"] = query
        full_url = entry.get("fullUrl")
        if method in ("POST", "PUT"):
            resource = entry.get("resource")
            if not isinstance(resource, dict) or resource.get("resourceType") != parts[0]:
                raise BadRequest(f"{where}: the resource must be a {parts[0]}", expression=[f"{where}.resource"])
            resource = fhirjson.loads(fhirjson.dumps(resource))  # own copy: references get rewritten
            plan["resource"] = resource
            if access is not None and (plan["if_none_exist"] if method == "POST" else len(parts) != 2 and query):
                # a conditional entry's body is decided before its search answers anything (a 403
                # only for a match would tell the caller that someone else's record matches);
                # a POST's at the id it gets, not the body's (which a create ignores)
                planned = _as_planned(resource, early, entry.get("fullUrl"))
                if method == "POST":
                    planned = {**planned, "id": (early.ids.get(n) if early else None) or str(uuid.uuid4())}
                access.check_write(parts[0], planned, None)
            if method == "POST":
                match, new_id = None, (early.ids.get(n) if early else None) or str(uuid.uuid4())
                if plan["if_none_exist"]:
                    rtype, condition, named = parts[0], plan["if_none_exist"], f"{where}.request.ifNoneExist"

                    def again() -> dict[str, Any] | None:
                        return self._conditional_match(rtype, condition, named, access)  # noqa: B023 - called at once

                    # no match: the condition claimed for the new id (``Writes.create``)
                    match = again() or self.backend.claim_condition(rtype, condition, new_id, again)
                plan["match"] = match
                resource["id"] = match["id"] if match else new_id
            elif len(parts) == 2:
                self._check(parts[0], parts[1])
                if resource.get("id") not in (None, parts[1]):
                    raise BadRequest(f"{where}: resource id {resource.get('id')} differs from the URL id {parts[1]}",
                                     expression=[f"{where}.resource.id"])
                resource["id"] = parts[1]
                if plan["if_match"]:  # checked before anything is written, so a mismatch changes nothing
                    wanted = parse_etag(plan["if_match"])
                    existing = self.backend.current(parts[0], parts[1])
                    if access is not None:  # the caller's rights before the version (it told of withheld records)
                        access.check_if_match(parts[0], _as_planned(resource, early, entry.get("fullUrl")), existing)
                    if existing is None or existing.deleted or existing.version != wanted:
                        raise PreconditionFailed(
                            f"{where}: ifMatch {plan['if_match']} does not match the current version of {url}")
            elif query:
                rtype, named = parts[0], f"{where}.request.url"

                def search() -> dict[str, Any] | None:
                    return self._conditional_match(rtype, query, named, access)  # noqa: B023 - called at once

                match = search()
                if match is None and "id" in resource:
                    # the body's id judged as over HTTP: not a valid id (a number, a list, "", null)
                    # 400 (``_check``; a batch entry wrote at a fresh id for "" and null, a 500 for a
                    # number -- the review of prbfix23), a stored one 409 (R4)
                    self.refuse_standing(parts[0], resource, where, access)
                rid = None
                if match is None:  # a create: the condition claimed for its id first, as over HTTP
                    # (``Writes.conditional_update``; a Bundle's claimed nothing: rvstoreleft29)
                    rid = resource.get("id") or str(uuid.uuid4())
                    match = self.backend.claim_condition(rtype, query, rid, search)
                if match is not None and resource.get("id") not in (None, match["id"]):
                    # R4 conditional update, one match whose id is not the body's: 400, as over HTTP
                    # (writing the body over the match would replace a record the client did not name)
                    raise BadRequest(f"{where}: the resource's id {resource['id']} differs from the matching "
                                     f"{parts[0]}/{match['id']}", expression=[f"{where}.resource.id"])
                resource["id"] = match["id"] if match else rid
            else:
                raise BadRequest(f"{where}: PUT needs Type/id or Type?search", expression=[f"{where}.request.url"])
            if isinstance(full_url, str) and full_url:
                mapping[full_url] = f"{parts[0]}/{resource['id']}"
        return plan

    @staticmethod
    def _query_params(query: str) -> list[tuple[str, str]]:
        """A search entry's url parameters, without the format ones (``_format``, ``_pretty``)."""
        return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in _CONTROL]

    @classmethod
    def _search_body(cls, resource: Any, where: str) -> list[tuple[str, str]]:
        """The parameters a ``POST [type]/_search`` entry carries besides its url's: none, a
        ``Parameters`` resource (one primitive ``value[x]`` per parameter: what clients such as the
        .NET SDK's ``SearchUsingPost`` put there), or a ``Binary`` of the form body over HTTP
        (``application/x-www-form-urlencoded``). Anything else is a 400: a search entry's body
        is never stored."""
        if resource is None:
            return []
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if rtype == "Parameters":
            out: list[tuple[str, str]] = []
            params = resource.get("parameter") or []
            if not isinstance(params, list):
                raise BadRequest(f"{where}: Parameters.parameter must be a list", expression=[f"{where}.resource.parameter"])
            for k, param in enumerate(params):
                values = [(key, v) for key, v in param.items() if key.startswith("value")] if isinstance(param, dict) else []
                name = param.get("name") if isinstance(param, dict) else None
                if not isinstance(name, str) or len(values) != 1 or not isinstance(values[0][1], (str, int, float, bool)):
                    raise BadRequest(f"{where}: Parameters.parameter[{k}] must have a name and one primitive value[x]",
                                     expression=[f"{where}.resource.parameter[{k}]"])
                value = values[0][1]
                out.append((name, ("true" if value else "false") if isinstance(value, bool) else str(value)))
            return [(k, v) for k, v in out if k not in _CONTROL]
        if rtype == "Binary" and str(resource.get("contentType", "")).split(";")[0].strip().lower() == _FORM:
            try:
                text = base64.b64decode(str(resource.get("data") or ""), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise BadRequest(f"{where}: Binary.data is not base64 of UTF-8 form parameters",
                                 expression=[f"{where}.resource.data"]) from None
            return cls._query_params(text)
        raise BadRequest(f"{where}: a POST [type]/_search entry is a search: its parameters go in the url, a "
                         f"Parameters resource or a Binary of {_FORM}, not a {rtype}",
                         expression=[f"{where}.resource"])

    def _execute(
        self, plan: dict[str, Any], access: Access | None, touched: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        method, parts = plan["method"], plan["path"]
        validate = not plan.get("validated")
        if plan["kind"] == "search":
            params = plan["search"]
            # as the caller's own search, not the repository's with their ``Access`` beside it:
            # that one left out nothing the caller's search leaves out in its query (the
            # records labelled R or V, for an auditor: listed and counted in a batch)
            result = self.search(parts[0], params) if access is None else access.search(parts[0], params)
            if touched is not None:
                touched.extend(result.resources + result.included)
            if method == "HEAD":
                return {"response": {"status": "200 OK"}}
            return {"resource": result.bundle(self.base_url, parts[0], params), "response": {"status": "200 OK"}}
        if plan["kind"] in ("read", "vread"):
            if plan["kind"] == "read":
                read = lambda: self.read(parts[0], parts[1])  # noqa: E731
            else:
                read = lambda: self.vread(parts[0], parts[1], parts[3])  # noqa: E731
            if access is None:
                resource = read()
            else:  # one answer for missing, deleted and not yours: nothing about the entry leaks
                admit = access.admit if plan["kind"] == "read" else access.admit_version
                try:
                    seen = admit(read())
                except (NotFound, Gone):
                    seen = None
                if seen is None:
                    raise NotFound(f"this {parts[0]} is not known")
                resource = seen
            if plan.get("elements") is not None:  # ``_elements`` as a read over HTTP answers it
                resource = only_elements(resource, plan["elements"])
            if touched is not None:
                touched.append(resource)
            response = {"status": "200 OK", "etag": f'W/"{resource["meta"]["versionId"]}"',
                        "lastModified": resource["meta"]["lastUpdated"]}
            if _not_modified(plan, resource["meta"]):
                return {"response": {**response, "status": "304 Not Modified"}}
            if method == "HEAD":
                return {"response": response}
            return {"resource": resource, "response": response}
        if method == "DELETE":
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
            if access is not None:  # the body first, as a plain PUT: a refused body says nothing of the id
                access.check_write(resource["resourceType"], resource, None)
                access.check_write(resource["resourceType"], resource, body_of(existing))
            if plan["if_match"]:
                wanted = parse_etag(plan["if_match"])
                if existing is None or existing.deleted or existing.version != wanted:
                    raise PreconditionFailed(f"ifMatch {plan['if_match']} does not match the current version")
            result = self._store(resource, existing, validate=validate)
            self.note_put_create(result)  # a version a PUT entry created is listed as a PUT
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



@dataclass
class _Provisional:
    """What a transaction writes, worked out before its entries are planned: ``ids`` (entry index
    -> the id a POST entry gets unless its ifNoneExist matches), ``mapping`` (fullUrl -> ``Type/id``)
    and ``writes`` (record -> body, references rewritten by ``mapping``)."""

    ids: dict[int, str]
    mapping: dict[str, str]
    writes: dict[tuple[str, str], dict[str, Any]]
    by_base: dict[str, dict[str, str]] | None = None  # ``_by_base(mapping)``, worked out once

    def relative(self) -> dict[str, dict[str, str]]:
        if self.by_base is None:
            self.by_base = _by_base(self.mapping)
        return self.by_base


def _provisional(entries: list[dict[str, Any]], base_url: str) -> _Provisional:
    """The records a transaction's POST and ``PUT [type]/[id]`` entries write, before planning:
    what a conditional entry's body (``ifNoneExist``, a conditional update) and an ``ifMatch``
    entry's are judged by when they are checked while planned, before the later entries are. Only
    PUT-at-id entries counted there, their references not rewritten: a conditional create or an
    ifMatch PUT citing a POST entry by its absolute fullUrl was refused 422 (a record not known),
    a resident's conditional AuditEvent naming a note of the same transaction by ``urn:uuid`` 403
    (a reference that cannot be checked), where the same entries without the condition were written
    (the review of prb22; twenty-second round, prbfix22). A POST entry keeps the id given here
    unless its ifNoneExist matches; a conditional update stands under its body's id or a provisional
    one, its own id being known only once its search has run."""
    ids: dict[int, str] = {}
    mapping: dict[str, str] = {}
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    full_urls: dict[tuple[str, str], Any] = {}
    for n, entry in enumerate(entries):
        request, resource = entry.get("request"), entry.get("resource")
        if not (isinstance(request, dict) and isinstance(request.get("url"), str) and isinstance(resource, dict)):
            continue
        method = str(request.get("method", "")).upper()
        _, _, query, parts = _target(request["url"], base_url)
        if not parts or resource.get("resourceType") != parts[0]:
            continue
        if method == "POST" and len(parts) == 1:
            ids[n] = rid = str(uuid.uuid4())
        elif method == "PUT" and len(parts) == 2 and not query:
            rid = parts[1]
        elif method == "PUT" and len(parts) == 1 and query:
            # a conditional update: its id is known once its search has run, after this; it stands
            # here under its body's id (where it creates when nothing matches) or a provisional one,
            # so a citation of it by fullUrl is judged by the entry (prb22 left it 422: twenty-third
            # round, prb23). Only for the checks made while planning: each entry is checked again
            # when run, its references then naming the record the search found or created
            rid = resource["id"] if isinstance(resource.get("id"), str) and resource["id"] else str(uuid.uuid4())
        else:
            continue
        key = (parts[0], rid)
        if key in bodies:
            continue  # two entries at one record: the transaction is refused when planned
        bodies[key] = {**resource, "id": rid}
        full_urls[key] = entry.get("fullUrl")
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            mapping[full_url] = f"{parts[0]}/{rid}"
    planned = _Provisional(ids, mapping, {})
    writes = {key: _as_planned(body, planned, full_urls.get(key)) for key, body in bodies.items()}
    return _Provisional(ids, mapping, writes)


def _refuse_one_condition_twice(entries: list[dict[str, Any]], base_url: str) -> None:
    """R4 http.html#trules: a transaction whose entries' resolved identities overlap fails. Two
    entries of one condition (two ``ifNoneExist``, a conditional ``PUT`` and a conditional create,
    the condition read as the matcher reads it: ``condition_text``) resolve to one resource --
    the one match, or the one record a create of it would make. SQLite stored two Patients of one
    identifier, MongoDB answered 409 "under way; try again", the same on every retry (the second
    entry met the first's claim; rvstoreleft29). Refused 400 naming both, before anything is
    searched or claimed. Entries of another shape are left to ``_plan``."""
    seen: dict[tuple[str, str], int] = {}
    for n, entry in enumerate(entries):
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            continue
        method = str(request.get("method", "")).upper()
        _, _, query, parts = _target(request["url"], base_url)
        if len(parts) != 1:
            continue
        condition = (request.get("ifNoneExist") or query) if method == "POST" else query if method == "PUT" else None
        if not isinstance(condition, str) or not condition_pairs(condition):
            continue
        key = (parts[0], condition_text(condition))
        if key in seen:
            first = seen[key]
            raise BadRequest(
                f"Bundle.entry[{first}] and Bundle.entry[{n}] carry one condition ({parts[0]}?{key[1][:120]}): they "
                "resolve to one resource, and a transaction's entries must not overlap (R4 http.html#trules); "
                "send it once", expression=[f"Bundle.entry[{first}].request", f"Bundle.entry[{n}].request"])
        seen[key] = n


def _target(url: str, base_url: str) -> tuple[str, str, str, list[str]]:
    """An entry's ``request.url`` relative to the server's base, its path, its query and the path's
    parts: how ``_plan`` reads an entry, and ``_provisional`` before it."""
    if base_url and url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    path, _, query = url.partition("?")
    return url, path, query, [p for p in path.split("/") if p]


def _as_planned(resource: dict[str, Any], early: _Provisional | None, full_url: Any = None) -> dict[str, Any]:
    """A copy of an entry's body with its references to the transaction's entries rewritten as
    they will be (``_provisional``; a relative one read against the entry's fullUrl as the run
    reads it, ``_entry_mapping``); the body itself when there is nothing to rewrite."""
    if early is None or not early.mapping:
        return resource
    out = fhirjson.loads(fhirjson.dumps(resource))
    rewrite_references(out, _entry_mapping(early.mapping, early.relative(), full_url))
    return out  # type: ignore[no-any-return]


# a RESTful URL (R4 bundle.html#references, "the RESTful URL regex"): [base]/[type]/[id], and the
# same with /_history/[vid] as an entry's fullUrl may carry
_RESTFUL = re.compile(r"^((?:http|https)://.+)/([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(?:/_history/[A-Za-z0-9\-\.]{1,64})?$")


def _by_base(mapping: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The entries a transaction rewrites whose fullUrl is a RESTful URL, by that URL's base:
    base -> {``Type/id`` -> the new ``Type/id``}, for ``_entry_mapping``."""
    out: dict[str, dict[str, str]] = {}
    for url, target in mapping.items():
        m = _RESTFUL.match(url)
        if m is not None and "/_history/" not in url:
            out.setdefault(m.group(1), {})[f"{m.group(2)}/{m.group(3)}"] = target
    return out


def _entry_mapping(mapping: dict[str, str], by_base: dict[str, dict[str, str]], full_url: Any) -> Mapping[str, str]:
    """What an entry's references are rewritten by: the transaction's ``mapping`` (fullUrl ->
    ``Type/id``), and, when the entry's own fullUrl is a RESTful URL, its relative references read
    against that URL's base (R4 bundle.html#references: ``Patient/tmp1`` in the entry
    ``[base]/Observation/tmp2`` names ``[base]/Patient/tmp1``). Only the absolute spelling was
    rewritten: the relative one was kept as written and filed the entry under whoever held that id
    on the server (probef25; txmend25). An entry without a RESTful fullUrl (none, ``urn:uuid``)
    keeps a relative reference as a reference to the server's record."""
    m = _RESTFUL.match(full_url) if isinstance(full_url, str) else None
    relative = by_base.get(m.group(1)) if m is not None else None
    return ChainMap(relative, mapping) if relative else mapping


_ABSOLUTE_VERSIONED = re.compile(r"^((?:http|https)://.+)/([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})/_history/[A-Za-z0-9\-\.]{1,64}$")
_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(/_history/[A-Za-z0-9\-\.]{1,64})?$")


def _refuse_unresolvable_relatives(plan: dict[str, Any], by_base: dict[str, dict[str, str]], base_url: str) -> None:
    """A relative reference in an entry whose fullUrl is a RESTful URL names a record at that URL's
    base (R4 bundle.html#references). Two cases were answered wrong and are refused 400, naming the
    element (txfix25, after the review of txmend25):

    - the base is another server's and no entry of the Bundle has that fullUrl: ``Patient/p1`` in
      ``http://other.example/fhir/Observation/o1`` is the other server's patient; it was stored as
      *this* server's Patient/p1, a different person who happens to hold that id. Refused rather
      than kept absolute: an Observation citing a patient on another server belongs to no patient
      here -- no compartment, no search by patient, no access rule by patient would reach it;
    - a versioned ``Patient/tmp1/_history/1`` naming an entry of the Bundle: the entry gets a new id
      (and its own version numbering) here, so no rewrite keeps the version the sender meant; it was
      left pointing at whatever record holds ``Patient/tmp1`` here.
    """
    resource = plan["resource"]
    for ref in references_in(resource, []):  # an absolute versioned reference to an entry: as the relative one
        am = _ABSOLUTE_VERSIONED.match(ref)
        if am is not None and f"{am.group(2)}/{am.group(3)}" in by_base.get(am.group(1), {}):
            raise BadRequest(f"entry {plan['n']}: '{ref[:80]}' is a versioned reference to an entry of this Bundle, "
                             "which gets a new id here: its version cannot be carried over (cite it unversioned)",
                             expression=[f"Bundle.entry[{plan['n']}].resource"])
    full_url = plan.get("full_url")
    m = _RESTFUL.match(full_url) if isinstance(full_url, str) else None
    if m is None:
        return
    entry_base = m.group(1)
    foreign = entry_base.rstrip("/") != base_url.rstrip("/")
    relative = by_base.get(entry_base, {})
    where = f"Bundle.entry[{plan['n']}].resource"
    for path, ref in references_at(resource, str(resource.get("resourceType")), _RELATIVE.match, []):
        rm = _RELATIVE.match(ref)
        assert rm is not None
        key = f"{rm.group(1)}/{rm.group(2)}"
        at = [where + path.partition(".")[1] + path.partition(".")[2]]
        if rm.group(3) and key in relative:
            raise BadRequest(f"entry {plan['n']}: {path} '{ref[:80]}' is a versioned reference to the entry "
                             f"{entry_base[:80]}/{key} of this Bundle, which gets a new id here: its version cannot "
                             "be carried over (cite it unversioned)", expression=at)
        if foreign and key not in relative:
            raise BadRequest(f"entry {plan['n']}: {path} '{ref[:80]}' is read against the entry's fullUrl as "
                             f"{entry_base[:80]}/{key}, a record on another server that no entry of this Bundle "
                             "defines; it is not this server's record (cite it absolute, or give the entry "
                             "no fullUrl or one at this server's base)", expression=at)


def _refuse_placeholders(resource: dict[str, Any], who: str, where: str) -> None:
    """A 400 naming the element when a ``urn:uuid`` reference is left once the Bundle's own are
    rewritten (``references.placeholder_references``): stored, it was a result of no patient that
    no search by patient finds (probef25; txmend25)."""
    if resource.get("resourceType") == "Bundle":
        return
    found = placeholder_references(resource, str(resource.get("resourceType")), [])
    if found:
        path, ref = found[0]
        raise BadRequest(f"{who}: {path} '{ref[:80]}' names no entry of this Bundle (a urn:uuid is a placeholder "
                         "for an entry of a transaction that defines it in its fullUrl)",
                         expression=[where + path.partition(".")[1] + path.partition(".")[2]])


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 410: "Gone", 412: "Precondition Failed", 422: "Unprocessable Entity"}


def _not_modified(plan: dict[str, Any], meta: dict[str, Any]) -> bool:
    """A read entry's ``ifNoneMatch`` naming the version read (or ``*``), else its
    ``ifModifiedSince`` (a FHIR instant) at or after the version's ``lastUpdated``: the entry answers
    304 without the resource, as the same conditional read over HTTP does (``engine.api.fhir``);
    asked after the entry was admitted."""
    tags = plan.get("if_none_match")
    if isinstance(tags, str):
        names = {t.strip().removeprefix("W/") for t in tags.split(",")}
        return "*" in names or f'"{meta["versionId"]}"' in names
    since = plan.get("if_modified_since")
    if since is None:
        return False
    where = f"Bundle.entry[{plan['n']}].request.ifModifiedSince"
    try:
        asked = datetime.fromisoformat(str(since).replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{where} must be an instant, got '{str(since)[:40]}'", expression=[where]) from None
    if asked.tzinfo is None or "T" not in str(since):
        raise BadRequest(f"{where} must be an instant with a time zone", expression=[where])
    return datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00")) <= asked
