"""Searches run for a caller: the parsed query (``engine.repository.search``) executed by the
backend, paged and counted, ``_include`` / ``_revinclude`` and chains resolved, ``_elements``
applied, and -- for a caller confined to a compartment -- every match, include and count
decided by its ``Access``; also a conditional create's or update's one match.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from engine import fhirjson
from engine.errors import BadRequest, PreconditionFailed
from engine.repository.contracts import Access
from engine.repository.core import RepositoryCore
from engine.repository.indexing import parse_reference
from engine.repository.query import Clause, Query, RefCond
from engine.repository.search import CHAIN_LIMIT, ChainResolver, ParsedSearch

INCLUDE_LIMIT = 1000
CONFINED_SCAN_CHUNK = 500
CONFINED_SCAN_LIMIT = 10_000
# search parameters that shape a search's answer, not what it matches (left out of a conditional match)
_ANSWER_SHAPING = frozenset({"_count", "_offset", "_summary", "_elements", "_sort", "_total", "_include",
                             "_revinclude", "_format", "_pretty", "_contained", "_containedType"})


def condition_pairs(query: str) -> list[tuple[str, str]]:
    """The (name, value) pairs a conditional interaction (``If-None-Exist``, ``PUT Type?search``, a
    Bundle's ``ifNoneExist``) matches on: what shapes an answer, not the match, is dropped --
    ``_summary=count`` answered no match (a conditional create then made a duplicate), ``_count=1``
    would hide a second one. The one reading of a condition: the matcher's, and the key of
    MongoDB's claim (``condition_text``), so two spellings that match alike claim alike
    (twenty-ninth round, claimfix29)."""
    return [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True) if k not in _ANSWER_SHAPING]


def condition_text(query: str) -> str:
    """``condition_pairs`` as one canonical text: sorted, each pair once (``a=1&b=2``, ``b=2&a=1``,
    ``?a=1&_count=1`` and ``a=1&a=1`` are one condition: a conjunction in which order and repeats
    change nothing). What a condition *is* for a claim and for a transaction's two entries of one
    condition (``Bundles``). Encoded, so a value holding ``&`` or ``=`` stays one value."""
    return urlencode(sorted(set(condition_pairs(query))))


_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def only_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    """``resource`` with only the top-level ``elements`` asked for (``_elements``, on a search and on
    a read alike), tagged ``SUBSETTED`` as R4 requires of a resource that is not whole -- once: a
    resource already withheld from (``ScopedRepository``) carries the tag already. An element kept
    keeps its ``_element`` sibling: FHIR JSON's id and extensions of a primitive (``_birthDate``, the
    patient-birthTime) are part of that element, not another one (twenty-seventh round, convfix27)."""
    keep = {"resourceType", "id", "meta", *elements, *("_" + e for e in elements)}
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(isinstance(t, dict) and t.get("system") == _SUBSETTED["system"] and t.get("code") == "SUBSETTED"
               for t in tags):
        tags.append(dict(_SUBSETTED))
    meta["tag"] = tags
    out["meta"] = meta
    return out


def read_elements(pairs: Iterable[tuple[str, str]]) -> list[str] | None:
    """The elements a read or vread asks for (``_elements``; ``None``: the whole resource), with
    ``_summary`` read as a search reads it: ``false`` is the whole resource, any other value a 400
    naming it -- a read that ignored either would answer a whole resource as though it were the
    subset asked for (or a subset as though whole). One rule for a read over HTTP and a Bundle's
    read entry alike."""
    elements: list[str] | None = None
    for key, value in pairs:
        if key == "_summary" and value != "false":
            raise BadRequest(f"_summary={value[:40]} is not supported on a read (use _elements, or false)",
                             code="not-supported", expression=["_summary"])
        if key == "_elements":
            elements = [*(elements or []), *(e.strip() for e in value.split(",") if e.strip())]
    return elements


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


class Searching(RepositoryCore):
    """Search, includes, compartments and conditional matches (see module docstring)."""

    def _chain_resolver(self, access: Access | None) -> ChainResolver:
        """Resolves a chained parameter's inner search -- as the caller, when there is one.

        A chain is a search of its own: ``AuditEvent?patient.identifier=<number>`` must not tell a
        resident whether someone else has that number, so the inner search sees only what the
        caller may read (anything else resolves to no id, as if it did not exist).
        """

        def resolve(target: str, pairs: list[tuple[str, str]]) -> list[str]:
            comp = None
            left_out: list[tuple[str, str]] | None = []
            if access is not None:
                access.require(target, "s")
                comp = access.compartment
                left_out = access.label_params(target)  # records labelled beyond the caller: none
            parsed = self.parser.parse(target, [*pairs, *(left_out or ())], compartment=comp)
            parsed.query.limit, parsed.query.offset = CHAIN_LIMIT + 1, 0
            recs = self.backend.search(parsed.query)
            if access is None or (comp is None and not access.screened and left_out is not None):
                return [r.id for r in recs]
            return [r.id for r in recs  # narrowed to the compartment, or screened: each admitted
                    if access.admit(fhirjson.loads(r.body), inside=True) is not None]  # type: ignore[arg-type]

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
        if access is not None and (access.compartment is not None or access.screened):
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
        """A search for a caller confined to a compartment (or ``screened``, a remit-bound one:
        the query is not narrowed then): every match goes through ``access.admit``.

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
            definition = self.params.definition(src, param)  # enabled for search or not: no index read
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
        return only_elements(resource, elements)

    def _conditional_match(
        self, rtype: str, query: str, what: str, access: Access | None = None
    ) -> dict[str, Any] | None:
        pairs = condition_pairs(query)
        if not pairs:
            raise BadRequest(f"{what} needs search parameters", expression=[what])
        pairs.append(("_count", "2"))
        # as the caller: their own search decides what matches (scopes, compartment, remit, content)
        found = self.search(rtype, pairs).resources if access is None else access.conditional_matches(rtype, pairs)
        if len(found) > 1:
            raise PreconditionFailed(f"{what} '{query}' matches more than one {rtype}")
        return found[0] if found else None

    # -- compartments ------------------------------------------------------------------------------
    def in_compartment(self, resource: dict[str, Any], patient_ids: Iterable[str]) -> bool:
        """Is ``resource`` in the Patient compartment of any of ``patient_ids``?"""
        return bool(self.indexer.compartments(resource) & set(patient_ids))
