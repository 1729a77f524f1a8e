"""A record citing a confidential result is as confidential as that result, as it is written.

A hospital's system labels a laboratory result R (or V) after the feed wrote it -- a FHIR PUT of the
result with ``meta.security`` -- and the records citing it stayed unlabelled: the feed's
DiagnosticReport (``result``), a panel (``Observation.hasMember``), a calculated value
(``derivedFrom``), a diagnosis (``Condition.evidence.detail``). Each showed the withheld result's id
to everyone the label withholds it from who is not a resident (a hospital system bound to an
institution, a clinician's session), and a search by that reference answered 1 where a made-up id
answered 0 (twenty-fifth round, probep25; twenty-seventh round, privprobe27 finding 2). Judging the
citing record at read time was built twice and withdrawn twice for its cost (every shown report
needs a read of its results: a report read 56 -> ~200 us, a search of 50 reports ~2.5x).

So the label is decided when a record is written, as a document's text takes the document's
(``engine.document_labels``), and reads cost nothing: v3's "high water mark" -- a record derived
from others is as confidential as the most confidential of them (``confidentiality.carried``).

- **The mark** (``ResultLabels.mark``, ``FhirRepository.add_mark`` for DiagnosticReport, Observation
  and Condition): a record citing results is labelled the most confidential of itself and them, the
  cited ones read from this write group's pending versions first (an ORU^R01 writes its results
  before its report: the report's mark scans ~20 pending entries and reads nothing), then one
  ``read_many`` for the rest. An Observation citing nothing costs two ``dict.get``.
- **The rise** (``ResultLabels.written``, a batch write hook): a result (an Observation, or a report
  cited as evidence) stored with a label higher than its previous version's gives that label to the
  records already citing it, found by the indexed references (``result``, ``has-member``,
  ``derived-from``, ``evidence-detail``; one search per parameter for a whole write group), each
  written again as a derived write of the group -- which rises in turn, so a panel's report follows
  its member. Only a rise: a result lowered leaves what cites it as it is; lowering a citing record
  is a PUT of that record (and no PUT lowers it below what it still cites).
- **The backfill** (``ResultLabels.backfill``, once per store, a marker as ``DeletedLabels`` keeps):
  every labelled result stored before this version gives its label to what cites it.

Which references cite a result is data (twenty-eighth round, privleft28):
``mappings/access/result_citations.yaml`` -- beside the four above, an order's ``supportingInfo`` and
``reasonReference``, a procedure's ``report``, a document's ``context.related``, an encounter's,
imaging study's, immunization's and medication record's reasons and supporting information, a
diagnosis's ``stage.assessment``, an observation's ``focus``: each showed a withheld result's id (and
what the record says of it) to a reader the label withholds the result from. A path no search
parameter indexes (and a contained record's citation) is noted as the citing record is written in a narrow
record, the ``result_citers`` collection (result -> citing record, replaced on each version: a dropped citation
goes), from which the rise reads the citing records of a rising result: cost the citing records', whatever the
store holds and whoever's compartment they are in (twenty-eighth round, labelfix28; privfix28 scanned the
person's records of the type and every record naming no patient). No citing record is left out since
labelfix28 (a referral, a Task: privacy first); backbone elements nesting in themselves are read at any depth.

Why ``DiagnosticReport.result`` is indexed for it (``conformance/searchparams/enabled.yaml``): the
rise must find every report citing the result. Finding them by the result's ``basedOn`` (the order,
``DiagnosticReport?based-on=``) misses a report a FHIR client wrote without ``basedOn`` and one whose
order differs from its result's -- a report still showing the id, the finding itself. One reference
row per result of a report (12 for a 12-result ORU^R01, ~6 % of its index rows; measured in the
README) buys an exact answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from engine import fhirjson
from engine.auth.confidentiality import SYSTEM, carried, labels
from engine.document_labels import Documents
from engine.merge_rules import API
from engine.repository.indexing import parse_reference
from engine.repository.port import Store, is_new_store
from mappings.sitefiles import safe_load

log = logging.getLogger(__name__)

# the references through which a record cites a result, as data (``mappings/access/result_citations.yaml``)
CITATIONS_FILE = Path(__file__).resolve().parent.parent / "mappings" / "access" / "result_citations.yaml"


class Citation(NamedTuple):
    """One reference path of a citing type: ``path`` the element names down to the Reference,
    ``cites`` the result types it may name, ``param`` its indexed search parameter (or None)."""

    path: tuple[str, ...]
    cites: frozenset[str]
    param: str | None


def _document(path: Path) -> dict[str, Any]:
    # (``sitefiles.safe_load``, the one reader of shipped data files: libyaml's parser, parsed once a process --
    # both loaders below read this file at import, in every process: each CLI run, server and test worker)
    return safe_load(path.read_text(encoding="utf-8")) or {}


def load_left_out(path: Path = CITATIONS_FILE) -> tuple[dict[str, str], dict[str, str]]:
    """What ``result_citations.yaml`` leaves out on purpose: R4 paths that may name a result but
    give no label (path -> the reason), and citing types whose records of one kind give none
    (type -> the condition's name, e.g. ``ServiceRequest: referral``). Each has its reason in the
    file; a test holds the paths and the list complete for R4's references to a result."""
    doc = _document(path)
    paths: dict[str, str] = {}
    for group in doc.get("left_out") or ():
        reason = str(group.get("reason") or "").strip()
        if not reason:
            raise ValueError(f"{path.name}: left_out {group.get('paths')} gives no reason")
        paths.update(dict.fromkeys(group["paths"], reason))
    when = {str(t): str(entry["when"]) for t, entry in (doc.get("left_out_when") or {}).items()}
    return paths, when


def load_citations(path: Path = CITATIONS_FILE) -> dict[str, tuple[Citation, ...]]:
    """The citing types and their paths as ``result_citations.yaml`` states them (checked: a path
    naming a type that is no result is a mistake of the file, refused at start)."""
    doc = _document(path)
    out: dict[str, tuple[Citation, ...]] = {}
    for rtype, entries in (doc.get("citations") or {}).items():
        made = []
        for entry in entries:
            cites = frozenset(entry["cites"])
            if not cites or not cites <= {"Observation", "DiagnosticReport"}:
                raise ValueError(f"{path.name}: {rtype}.{entry['path']} cites {sorted(cites)}: results only")
            made.append(Citation(tuple(entry["path"].split(".")), cites, entry.get("param")))
        out[rtype] = tuple(made)
    return out


# citing type -> its paths (R4: DiagnosticReport.result, Observation.hasMember / .derivedFrom /
# .focus, Condition.evidence.detail, ServiceRequest.supportingInfo, Procedure.report,
# DocumentReference.context.related... -- a DocumentReference named in ``derivedFrom`` is
# ``document_labels'``)
CITATIONS: dict[str, tuple[Citation, ...]] = load_citations()
# the records of a citing type that give no label, by a condition the engine names (``ResultLabels``)
LEFT_OUT_WHEN: dict[str, str] = load_left_out()[1]
# cited type -> the (citing type, citation) pairs that can name it
CITED_BY: dict[str, tuple[tuple[str, Citation], ...]] = {
    cited: tuple((ctype, c) for ctype, paths in CITATIONS.items() for c in paths if cited in c.cites)
    for cited in ("Observation", "DiagnosticReport")
}
# the first element of each path: a record holding none of them cites nothing (the mark's first look)
# (and a record's own extensions: an ``extension[].valueReference`` naming a result, twenty-ninth round)
_EXTENSIONS = ("extension", "modifierExtension")
_HEADS: dict[str, tuple[str, ...]] = {t: (*dict.fromkeys(c.path[0] for c in paths), "contained", *_EXTENSIONS)
                                       for t, paths in CITATIONS.items()}
_RESULTS = frozenset({"Observation", "DiagnosticReport"})
# the list's fingerprint: a store backfilled under another list is backfilled again, once
_FINGERPRINT = hashlib.sha256(json.dumps(
    {"citers": 1,  # (labelfix28: the narrow record of unindexed citations, filled by the backfill)
     # (twenty-ninth round, party29: a record's extensions citing a result, and the contained citations of
     # records stored before the twenty-eighth round, in the narrow record: backfilled once more)
     "extensions": 1, "contained": 1,
     **{t: [[".".join(c.path), sorted(c.cites), c.param] for c in paths] for t, paths in sorted(CITATIONS.items())}},
    sort_keys=True).encode()).hexdigest()[:16]
_RANK = {"V": 2, "R": 1}
_VALUES_AT_ONCE = 100  # references OR-ed in one search of the rise (a group's risen results)
_AT_ONCE = "1000"  # citing records read in one page
# the store's marker that the results labelled before this version have given their label on
MARKER_COLLECTION = "result_labels"
_BACKFILLED = "-backfilled"
# the narrow record (twenty-eighth round, labelfix28): one document per (citing record, result) cited
# through a path no search parameter indexes (or from a contained record), kept at write time
CITERS_COLLECTION = "result_citers"


class Results(Documents, Protocol):
    """The repository as the result labels use it: reads (pending, ``read_many``), searches and
    derived writes (``Documents``), and its store for the backfill's marker."""

    store: Store
    base_url: str

    def search(self, rtype: str | None, params: Sequence[tuple[str, str]],  # type: ignore[override]
               compartment: Collection[str] | None = None) -> Any: ...


def _rank(resource: dict[str, Any] | None) -> int:
    """0 unlabelled (or N, M...), 1 R, 2 V. A record without ``meta.security`` answers without
    looking further: every result of a feed is one."""
    if resource is None:
        return 0
    meta = resource.get("meta")
    if not meta or not isinstance(meta, dict) or not meta.get("security"):
        return 0
    return max((_RANK.get(c, 0) for c in labels(resource)), default=0)


def _references(node: Any, path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The Reference dicts at ``path`` below ``node`` (each step a list or a single element). A
    backbone step R4 nests in itself -- ``Composition.section.section``, ``QuestionnaireResponse.item.item``
    (and ``item.answer.item``), ``RequestGroup.action.action`` -- is read at every depth: a sub-section
    naming an R result is as confidential as a section naming it (twenty-eighth round, labelfix28,
    rvprivfix28 finding 2)."""
    nodes = [node]
    last = len(path) - 1
    for i, step in enumerate(path):
        nxt: list[Any] = []
        todo = list(nodes)
        while todo:
            n = todo.pop()
            found = n.get(step) if isinstance(n, dict) else None
            items = found if isinstance(found, list) else [] if found is None else [found]
            nxt.extend(items)
            if i < last:  # a backbone element: its nested repeats of the same element, at any depth
                todo.extend(x for x in items if isinstance(x, dict) and step in x)
                if step == "answer":  # an answer's own items (QuestionnaireResponse.item.answer.item) and theirs
                    todo.extend(y for x in items if isinstance(x, dict) and isinstance(x.get("item"), list)
                                for y in x["item"])
                    if isinstance(n, dict) and isinstance(n.get("item"), list) and n is not node:
                        todo.extend(n["item"])
        if not nxt:
            return []
        nodes = nxt
    return [r for r in nodes if isinstance(r, dict)]


def _extension_references(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``valueReference`` of ``node``'s own extensions (``extension``, ``modifierExtension``), at
    any depth of extensions nesting in extensions (a complex extension's parts). An extension on
    an element inside the record (``code.extension``) is not read: finding one means walking every
    record a feed writes (~40 us a result measured, against the mark's ~1 us), and none of huren's
    writers puts a reference there (README, twenty-ninth round, party29; a strict xfail says so)."""
    out: list[dict[str, Any]] = []
    todo = [e for key in _EXTENSIONS if isinstance(node.get(key), list) for e in node[key]]
    while todo:
        ext = todo.pop()
        if not isinstance(ext, dict):
            continue
        ref = ext.get("valueReference")
        if isinstance(ref, dict):
            out.append(ref)
        if isinstance(ext.get("extension"), list):
            todo.extend(ext["extension"])
    return out


def results_cited(resource: dict[str, Any], base_url: str = "",
                  only: dict[str, tuple[Citation, ...]] | None = None) -> list[tuple[str, str]]:
    """The results ``resource`` is built from, as ``(type, id)`` (its own left out; a versioned
    reference names the record by its id): the references ``CITATIONS`` lists, to a type that
    path may name. The one reading of what a record takes a result's label from -- the mark, the
    rise, the writers' refusal (``ScopedRepository``) and the tests read it here."""
    rtype = resource.get("resourceType")
    if rtype not in CITATIONS:
        return []
    # ``only``: the record's own paths of that list (the rise's narrow record: the unindexed ones);
    # a contained record's every citation is its container's, none of them indexed
    paths = CITATIONS[rtype] if only is None else only.get(rtype, ())  # type: ignore[index]
    own = (resource.get("resourceType"), resource.get("id"))
    out: dict[tuple[str, str], None] = {}
    # a contained record's citations are its container's: the container carries what it contains
    # (a report whose result is a contained panel ``derivedFrom`` an R result; twenty-eighth
    # round, privfix28). One level: R4 forbids a contained resource to contain others.
    inner = resource.get("contained")
    pairs = [(resource, c) for c in paths]
    if isinstance(inner, list):
        pairs += [(r, c) for r in inner if isinstance(r, dict)
                  for c in CITATIONS.get(r.get("resourceType"), ())]  # type: ignore[arg-type]
    found: list[tuple[dict[str, Any], frozenset[str]]] = []
    for node, citation in pairs:
        if citation.path[0] in node:
            found.extend((ref, citation.cites) for ref in _references(node, citation.path))
    # an extension naming a result (``extension[].valueReference``, any depth of extension nesting), on
    # the record or on a record it contains: not indexed, so always the narrow record's (twenty-ninth round)
    for node in (resource, *(inner if isinstance(inner, list) else ())):
        if isinstance(node, dict) and ("extension" in node or "modifierExtension" in node):
            found.extend((ref, _RESULTS) for ref in _extension_references(node))
    for ref, cites in found:
        text = ref.get("reference")
        if not isinstance(text, str):
            continue
        head, _, rid = text.partition("/")
        if head in cites and rid and "/" not in rid:  # "Observation/<id>": a feed's every reference
            key: tuple[str, str] | None = (head, rid)
        else:  # versioned, absolute: the indexer's (cached) reading
            key = parse_reference(text, base_url)
        if key is not None and key[0] in cites and key != own:
            out[key] = None
    return list(out)


def _default_conditions() -> dict[str, Callable[[dict[str, Any]], bool]]:
    """The conditions as the shipped rules define them (a repository opened without an engine:
    the engine gives its site's referral rules)."""
    from engine.referral.rules import load
    from engine.referral.workflow import is_referral

    workflow = load().workflow
    return {"referral": lambda r: is_referral(r, workflow)}


class ResultLabels:
    """The mark, the rise and the backfill (see the module docstring) over one repository."""

    def __init__(self, repository: Results, conditions: dict[str, Callable[[dict[str, Any]], bool]] | None = None) -> None:
        """``conditions``: the predicates ``LEFT_OUT_WHEN`` names (``referral``: the referral
        workflow's own test, ``engine.referral.workflow.is_referral``); one the file names and
        the engine does not give is refused at start. A path whose parameter the deployment
        disables is read from the narrow record (nothing to refuse: labelfix28)."""
        self.repository = repository
        given = conditions if conditions is not None else _default_conditions()
        missing = sorted({c for c in LEFT_OUT_WHEN.values() if c not in given})
        if missing:
            raise ValueError(f"{CITATIONS_FILE.name}: left_out_when names {missing}, which the engine does not define")
        self._left_out = {t: given[c] for t, c in LEFT_OUT_WHEN.items()}
        params = getattr(repository, "params", None)
        # the paths the rise finds by their search parameter, and the others (the narrow record's)
        self._indexed: dict[str, tuple[Citation, ...]] = {}
        self._unindexed: dict[str, tuple[Citation, ...]] = {}
        for ctype, paths in CITATIONS.items():
            on = tuple(c for c in paths if c.param is not None and (params is None or params.get(ctype, c.param) is not None))
            self._indexed[ctype] = on
            self._unindexed[ctype] = tuple(c for c in paths if c not in on)
        # the first elements of those paths (and ``contained``): a record holding none of them is not
        # in the narrow record (a feed's every result and report: one ``in`` look-up)
        self._narrow_heads: dict[str, tuple[str, ...]] = {
            t: (*dict.fromkeys(c.path[0] for c in paths), "contained", *_EXTENSIONS)
            for t, paths in self._unindexed.items()}
        self._citers = repository.store.collection(CITERS_COLLECTION)
        self._citers.ensure_index(["result"])
        self._citers.ensure_index(["citer"])

    def left_out(self, resource: dict[str, Any]) -> bool:
        """Whether ``resource`` is of the kind ``left_out_when`` leaves unlabelled (a referral)."""
        test = self._left_out.get(resource.get("resourceType"))  # type: ignore[arg-type]
        return test is not None and test(resource)

    # -- the mark ------------------------------------------------------------------------------------
    def mark(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` labelled as the most confidential of itself and the results it cites
        (``carried``); ``resource`` itself when none of them outranks it -- so its own label, and
        a label of another kind (N, a site's own), are never touched by a record citing nothing
        higher. A mark runs on what a writer sends and again on what the merge rules combined
        (``FhirRepository.add_mark``): cheap, and a function of the resource alone."""
        heads = _HEADS.get(resource.get("resourceType"))  # type: ignore[arg-type]
        if not heads:
            return resource
        for head in heads:
            if head in resource:
                break
        else:
            return resource  # every result and order of a feed: a look-up per path (~0.3 us)
        keys = results_cited(resource, self.repository.base_url)
        if not keys or self.left_out(resource):
            return resource
        cited = self._cited(keys)
        own = _rank(resource)
        if not cited or max(_rank(c) for c in cited) <= own:
            return resource
        return carried(resource, [resource, *cited])

    def _cited(self, keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The cited records as this write group holds them (combined, not yet put: a report's
        results written before it in one message), the rest as stored (or staged: ``read_many``)."""
        wanted = {rid: rtype for rtype, rid in keys}  # by id first: one string look-up an entry
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for version, _ in reversed(self.repository.pending()):
            rtype = wanted.get(version["id"])
            if rtype is not None and rtype == version["resourceType"] and (rtype, version["id"]) not in found:
                found[(rtype, version["id"])] = version
                if len(found) == len(keys):
                    return list(found.values())
        rest = [k for k in keys if k not in found]
        if rest:
            found.update(self.repository.read_many(rest))
        return list(found.values())

    # -- the rise ------------------------------------------------------------------------------------
    def written(self, pairs: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[list[dict[str, Any]]]:
        """The batch write hook (``FhirRepository.add_batch_hook``): a citing record's unindexed
        citations kept in the narrow record; the results of this write group stored with a higher
        label than they had give it to the records citing them."""
        risen: dict[tuple[str, str], dict[str, Any]] = {}
        heads = self._narrow_heads
        for stored, previous in pairs:
            rtype = stored.get("resourceType")
            own = heads.get(rtype)  # type: ignore[arg-type]
            if own is not None:
                for h in own:  # (a loop, not ``any``: ~0.3 us a version less on a feed's path)
                    if h in stored or (previous is not None and h in previous):
                        self._note(stored, previous)
                        break
            meta = stored.get("meta")
            if not meta or "security" not in meta:
                continue  # (every version a feed writes but a labelled document's text: one look-up)
            if rtype in CITED_BY:
                rank = _rank(stored)
                if rank and rank > _rank(previous):
                    risen[(rtype, stored["id"])] = stored
        if risen:
            self.raise_citing(risen)
        return [[] for _ in pairs]

    def _narrow(self, resource: dict[str, Any] | None) -> list[tuple[str, str]]:
        """What ``resource`` cites through a path no search parameter indexes, or from a contained
        record: what the rise cannot find by a search. A record holding none of its heads: nothing."""
        if resource is None:
            return []
        heads = self._narrow_heads.get(resource.get("resourceType"))  # type: ignore[arg-type]
        if not heads or not any(h in resource for h in heads):
            return []  # every result and report of a feed: its citations are indexed, or it has none
        return results_cited(resource, self.repository.base_url, only=self._unindexed)

    def _note(self, stored: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """The narrow record of ``stored``'s version: its unindexed citations replace its previous
        version's (a dropped citation goes). A version citing nothing so, after one that cited
        nothing so: no store call (an ORU^R01's every record)."""
        now = self._narrow(stored)
        before = self._narrow(previous)
        if now == before:
            return
        citer = f"{stored['resourceType']}/{stored['id']}"
        keep = {f"{t}/{i}" for t, i in now}
        for doc in self._citers.find({"citer": citer}):
            if doc.get("result") not in keep:
                self._citers.delete(doc["_id"])
        for ref in keep:
            self._citers.replace({"_id": f"{citer}>{ref}", "citer": citer, "result": ref})

    def raise_citing(self, risen: dict[tuple[str, str], dict[str, Any]]) -> int:
        """Every record citing one of ``risen`` written again with the label of the most
        confidential of those it cites, when that outranks its own; each write a derived write,
        whose own rise follows. Returns how many were written.

        Found by the path's indexed parameter (one search per parameter and up to
        ``_VALUES_AT_ONCE`` results); a path no parameter indexes (``ServiceRequest.supportingInfo``,
        ``Procedure.report``...) and a contained record's citation by the narrow record kept as the
        citing record was written (``CITERS_COLLECTION``, one indexed look-up per ``_VALUES_AT_ONCE``
        results): the cost is the citing records', whatever the store holds and whoever's record they
        are (a newborn's order citing the mother's result; twenty-eighth round, labelfix28 -- privfix28
        read the person's every record of the type, and every record naming no patient)."""
        targets: dict[tuple[str, str], dict[str, None]] = {}
        for rtype, rid in risen:
            for ctype, citation in CITED_BY[rtype]:
                if citation in self._indexed[ctype]:
                    targets.setdefault((ctype, citation.param), {})[f"{rtype}/{rid}"] = None  # type: ignore[index]
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for (ctype, param), found in targets.items():
            values = list(found)
            for start in range(0, len(values), _VALUES_AT_ONCE):
                for record in self._found(ctype, [(param, ",".join(values[start:start + _VALUES_AT_ONCE]))]):
                    seen.setdefault((ctype, record["id"]), record)
        refs = [f"{t}/{i}" for t, i in risen]
        citers: dict[tuple[str, str], None] = {}
        for start in range(0, len(refs), _VALUES_AT_ONCE):
            for doc in self._citers.find({"result": {"$in": refs[start:start + _VALUES_AT_ONCE]}}):
                ctype, _, cid = str(doc["citer"]).partition("/")
                if (ctype, cid) not in seen:
                    citers[(ctype, cid)] = None
        if citers:
            for key, record in self.repository.read_many(list(citers)).items():
                seen.setdefault(key, record)
        written = 0
        for record in seen.values():
            if self.left_out(record):
                continue
            sources = [risen[k] for k in results_cited(record, self.repository.base_url) if k in risen]
            if sources and max(_rank(s) for s in sources) > _rank(record):
                self.repository.update(carried(record, [record, *sources]), source=API)
                written += 1
        return written

    def _found(self, rtype: str, asked: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every stored ``rtype`` matching ``asked`` (all pages)."""
        out: list[dict[str, Any]] = []
        for page in self._pages(rtype, asked):
            out.extend(page)
        return out

    def _pages(self, rtype: str, asked: list[tuple[str, str]]) -> Any:
        """The stored ``rtype`` matching ``asked``, a page of ``_AT_ONCE`` at a time."""
        done = 0
        while True:
            page = self.repository.search(rtype, [*asked, ("_count", _AT_ONCE), ("_offset", str(done))])
            if page.resources:
                yield page.resources
            done += len(page.resources)
            if not page.has_next or not page.resources:
                return

    def _holding(self, rtype: str, marks: tuple[bytes, ...]) -> Any:
        """The stored ``rtype`` records whose JSON holds one of ``marks``, parsed only then: a pass over
        a type of a feed's bulk (every result, every report) reads bytes, not dicts. A repository
        without a raw backend (none in huren) is read as pages of records."""
        backend, parser = getattr(self.repository, "backend", None), getattr(self.repository, "parser", None)
        if backend is None or parser is None:
            for page in self._pages(rtype, []):
                yield from (r for r in page if any(k in r for k in ("contained", *_EXTENSIONS)))
            return
        done = 0
        while True:
            query = parser.parse(rtype, []).query
            query.limit, query.offset = int(_AT_ONCE), done
            recs = backend.search(query)
            for rec in recs:
                if rec.body is not None and any(m in rec.body for m in marks):
                    yield fhirjson.loads(rec.body)
            done += len(recs)
            if len(recs) < int(_AT_ONCE):
                return

    # -- the backfill --------------------------------------------------------------------------------
    def backfill(self) -> int:
        """Once per store (a marker says it is done): every result stored labelled R or V before
        this version gives its label to the records citing it, as a rise would have. One search
        per result type; on a store with no labelled result, two searches and the marker.
        Idempotent: a record already labelled so is not written again."""
        coll = self.repository.store.collection(MARKER_COLLECTION)
        marker = coll.get(_BACKFILLED)
        if marker is not None and marker.get("citations") == _FINGERPRINT:
            return 0  # (a marker of the twenty-seventh round's list names none: backfilled again once)
        codes = f"{SYSTEM}|R,{SYSTEM}|V"
        written = 0
        with self.repository.store.transaction():
            if is_new_store(self.repository.store):  # nothing stored yet: the marker alone
                coll.replace({"_id": _BACKFILLED, "written": 0, "citations": _FINGERPRINT})
                return 0
            # the narrow record of what was stored before it was kept: one paged pass over the types
            # citing through an unindexed path, and over the others' records holding a contained record
            # or an extension (stored before the twenty-eighth round, a report's contained panel citing a
            # result was in no record: the rise missed it; twenty-ninth round, party29)
            for ctype in sorted(self._unindexed):
                if self._unindexed[ctype]:
                    for page in self._pages(ctype, []):
                        for record in page:
                            self._note(record, None)
                else:
                    for record in self._holding(ctype, (b'"contained"', b'xtension"')):
                        self._note(record, None)
            for rtype in CITED_BY:
                labelled = {(rtype, r["id"]): r for r in self._found(rtype, [("_security", codes)])}
                if labelled:
                    written += self.raise_citing(labelled)
            coll.replace({"_id": _BACKFILLED, "written": written, "citations": _FINGERPRINT})
        if written:
            log.info("result labels: %d records citing a labelled result labelled as it", written)
        return written
