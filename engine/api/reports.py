"""``GET /reports/duplicates`` (JSON or CSV) and ``POST /reports/duplicates/{id}/review`` for auditors.

Filters: ``from`` / ``to`` (the repeated test's day, inclusive), ``institution`` (the repeating
institution), ``item``, ``category`` (检验 / 检查), ``status`` (flagged, upheld, overturned,
justified, void); ``_format=csv`` or an ``Accept`` weighing ``text/csv`` above JSON (``formats.prefers``) for CSV (every row); ``_count`` (default
100 in JSON) / ``_offset`` page the rows (newest day first, then by flag id: a fixed order across
pages); totals always cover every matching flag the caller may be shown. A flag whose DetectedIssue
is withheld from the caller for a label (``FlagScreen``) is not listed nor totalled: ``totals.restricted``
says how many and the money at stake; its drill-down and review answer 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from engine import fhirjson
from engine.api.decision_body import decision_body, reason_in
from engine.api.formats import accept_of, prefers, require_body_served
from engine.api.ui_words import site_names
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.policy import audit_remit, require_auditor, require_in_remit
from engine.bounds import int_query
from engine.errors import BadRequest, Forbidden, Gone, NotFound
from engine.insurance.tiers import stored_fen
from engine.periods import parse_day
from engine.recognition.pairs import cited, derive, of_flag
from engine.recognition.reports import FlagScreen, ReportFilter, duplicates_report, to_csv
from engine.recognition.review_note import review_note
from engine.recognition.reviews import REVIEW_WHY
from engine.repository.scoped import ScopedRepository

router = APIRouter()


def report_filter(start: str | None, end: str | None, institution: str | None, item: str | None,
                  category: str | None, status: str | None, remit: frozenset[str] | None = None) -> ReportFilter:
    return ReportFilter(start=parse_day(start, "from"), end=parse_day(end, "to"), institution=institution or None,
                        item=item or None, category=category or None, status=status or None, institutions=remit)


def _remit(request: Request, caller: Caller) -> frozenset[str] | None:
    engine = engine_of(request)
    return audit_remit(caller, engine.site, engine.settings.site)


@router.get("/reports/duplicates")
def duplicates(
    request: Request,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    institution: str | None = None,
    item: str | None = None,
    category: str | None = None,
    status: str | None = None,
    fmt: str | None = Query(None, alias="_format"),
    count: int | None = int_query(None, alias="_count", le=10000),
    offset: int = int_query(0, alias="_offset"),
    caller: Caller = Depends(get_caller),
) -> Response:
    require_auditor(caller)
    flt = report_filter(start, end, institution, item, category, status, _remit(request, caller))
    wants_csv = (fmt or "").lower() in ("csv", "text/csv") or (
        fmt is None and prefers(accept_of(request), "text/csv", "application/json"))
    # JSON pages 100 rows unless asked; CSV is the full export
    limit = count if count is not None else (None if wants_csv else 100)
    engine = engine_of(request)
    report = duplicates_report(engine.recognition, flt, limit=limit, offset=offset,
                               screen=FlagScreen(engine.repository, caller))
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": "duplicates", "rows": len(report["rows"])})
    if wants_csv:
        return Response(to_csv(report, site_names(engine_of(request))), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="duplicates.csv"'})
    if fmt not in (None, "json", "application/json"):
        raise BadRequest("_format must be json or csv", expression=["_format"])
    return Response(fhirjson.dumps(report), media_type="application/json")


@router.get("/reports/duplicates/{flag_id}")
def duplicate(flag_id: str, request: Request, caller: Caller = Depends(get_caller),
              repo: ScopedRepository = Depends(get_repo)) -> Response:
    """One flag with its evidence: the DetectedIssue and the two results it is about. The evidence
    is read as the caller: a resource their scopes do not let them read is null ("not available")."""
    require_auditor(caller)
    recognition = engine_of(request).recognition
    row = recognition.flags.get(flag_id)
    engine = engine_of(request)
    if row is None:
        raise NotFound(f"no duplicate flag {flag_id}")
    # the remit first (its 403 says the same of every flag outside it, labelled or not); then a flag
    # the reader may not be shown (its DetectedIssue withheld for a label: FlagScreen) is no flag
    require_in_remit(caller, row.get("inst"), engine.site, engine.settings.site)
    screen = FlagScreen(engine.repository, caller)
    if screen.hides(row):
        raise NotFound(f"no duplicate flag {flag_id}")
    paired = _pairs(recognition, row, screen)
    # the flag is within the caller's remit: so are its DetectedIssue and the records it is about
    repo.vouch([f"DetectedIssue/{flag_id}", *(row[k] for k in ("result", "prior", "order") if row.get(k)),
                *(r for p in paired["pairs"] for r in cited(p))])

    def read(rtype: str, rid: str) -> dict[str, Any] | None:
        try:
            return repo.read(rtype, rid)
        except (NotFound, Gone, Forbidden):
            return None

    if row.get("contradicted"):  # the recorded sentence stays; beside it, what the page says (复核提示)
        zone = engine.site.institutions[row["inst"]].timezone if row.get("inst") in engine.site.institutions else None
        row = {**row, "contradicted_note": review_note(row["contradicted"], site_names(engine), zone)}
    # the price as the amount it is, a JSON number with its fen (0.10); the row keeps it as text
    row = {**row, "price": stored_fen(row.get("price"))}
    evidence: dict[str, Any] = {"flag": row, "detectedIssue": read("DetectedIssue", flag_id)}
    for key in ("result", "prior", "order"):
        ref = row.get(key)
        if ref:
            rtype, rid = ref.split("/", 1)
            evidence[key + "Resource"] = read(rtype, rid)
    evidence["orderInstitution"] = _order_shown(evidence, row, recognition)
    # what was compared, analyte by analyte, each side read as the caller (null: not available), with
    # the institution that performed it (the index's: a result names its performer by reference only);
    # and every other result of the analyte on each side (``result_also`` / ``prior_also``: a re-run,
    # a measurement the other side did not report), read the same way, for the page to draw (evpage34)
    names, index = paired["names"], recognition.index

    def side(ref: str | None) -> tuple[dict[str, Any] | None, str | None]:
        """A result as the caller may read it, and where it was performed (only with the result)."""
        resource = read(*ref.split("/", 1)) if ref else None
        doc = index.get(ref) if resource is not None else None
        return resource, (doc or {}).get("inst")

    def shown(p: dict[str, Any]) -> dict[str, Any]:
        (mine, mine_at), (theirs, theirs_at) = side(p.get("result")), side(p.get("prior"))
        also = {key: [{"reference": r, "resource": res, "institution": at}
                      for r in p.get(src) or () for res, at in (side(r),)]
                for key, src in (("resultAlso", "result_also"), ("priorAlso", "prior_also"))}
        return {**p, "analyte_name": names.get(p.get("analyte")) if p.get("analyte") else None,
                "resultResource": mine, "priorResource": theirs, "resultInstitution": mine_at,
                "priorInstitution": theirs_at, **also}

    evidence["pairs"] = [shown(p) for p in paired["pairs"]]
    evidence["unpaired"] = [{"analyte": a, "analyte_name": names.get(a)} for a in paired["unpaired"]]
    evidence["notDone"] = [{"analyte": a, "analyte_name": names.get(a)} for a in paired["not_done"]]
    evidence["pairsSource"] = paired["source"]
    note(request, action="report-view", resources=[f"DetectedIssue/{flag_id}"],
         patient_ids=[row["patient"].split("/", 1)[1]] if row.get("patient") else [],
         detail={"report": "duplicate-evidence"})
    return Response(fhirjson.dumps(evidence), media_type="application/json")


def _order_shown(evidence: dict[str, Any], row: dict[str, Any], recognition: Any) -> str | None:
    """Where the order the flag charges was placed (its order-time check's institution), for the page
    to say which order it is (rv36b note 10: number, test, institution, date); ``orderResource`` is
    set to null (shown as not available) unless the order is the flag's person's -- by its check row
    (the person the link was made by, ``repeats._checked_for``), else by its subject being the flag's
    patient. An evidence page says nothing of another person, whatever a flag stored earlier names."""
    order = evidence.get("orderResource")
    if order is None:
        return None
    check = recognition.checks.get(row["order"])
    if check is not None:
        mine = check.get("person") == row.get("person")
    else:
        mine = (order.get("subject") or {}).get("reference") == row.get("patient")
    if not mine:
        evidence["orderResource"] = None
        return None
    return (check or {}).get("inst")


def _pairs(recognition: Any, row: dict[str, Any], screen: FlagScreen) -> dict[str, Any]:
    """The flag's evidence pairs (``engine.recognition.pairs``): as recorded; for a panel flag stored
    before they were kept, paired now by the decision's rule over the index ("derived"), or none
    ("before-pairs": the page says its result and prior are not known to be one analyte). With
    ``not_done``: the panel's analytes the repeat did not result (neither paired nor unpaired).

    A derived pair names results the flag's DetectedIssue does not cite, so ``screen`` (the reader's)
    did not judge them: when one is withheld from this reader for a label, nothing is derived (a
    recorded pair is cited, and a flag citing such a result is not shown at all)."""
    item = recognition.rules.items.get(row.get("item") or "")
    panel = tuple(item.analytes) if item is not None else ()
    paired = of_flag(row, panel, recognition)  # a recorded pair checked like with like as read (evpfix34)
    if paired["source"] == "before-pairs":
        derived = derive(recognition, row)
        refs = [r for p in (derived or {}).get("pairs") or () for r in cited(p)]
        if derived is not None and not (screen.active and screen.scoped.label_withholds(refs)):
            paired = derived
    said = {p["analyte"] for p in paired["pairs"] if p.get("analyte")} | set(paired["unpaired"])
    not_done = [a for a in panel if a not in said] if said else []
    return {**paired, "not_done": not_done, "names": dict(item.analytes) if item is not None else {}}


_REVIEW_SHAPE = '{"decision": "upheld" | "overturned", "reason": "..."}'


@router.post("/reports/duplicates/{flag_id}/review")
async def review(flag_id: str, request: Request, caller: Caller = Depends(get_caller)) -> Response:
    """Body: ``{"decision": "upheld" | "overturned", "reason": "..."}``, read by ``decision_body`` as the owner
    decision's is: the decision and the reason JSON strings only (a list or ``true`` had been kept as its Python
    text: rv41i MED 1); a refused one is 400 naming ``decision`` or ``reason``, before the flag is looked up."""
    require_auditor(caller, review=True)
    require_body_served(request)
    body = decision_body(await request.body(), shape=_REVIEW_SHAPE)
    decision = body.get("decision")
    if not isinstance(decision, str):  # (a list or object is no decision: never its str())
        raise BadRequest(f"decision must be 'upheld' or 'overturned': {_REVIEW_SHAPE}", expression=["decision"])
    reason = reason_in(body, why=REVIEW_WHY)
    recognition = engine_of(request).recognition
    flag = recognition.flags.get(flag_id)
    engine = engine_of(request)
    if flag is not None:  # an unknown flag gets the review's own 404
        require_in_remit(caller, flag.get("inst"), engine.site, engine.settings.site)
        # one the reviewer may not be shown (FlagScreen) is refused as a missing one: no one decides
        # a flag whose evidence they cannot see
        if FlagScreen(engine.repository, caller).hides(flag):
            raise NotFound(f"no duplicate flag {flag_id}")
    row = recognition.review(flag_id, decision, reason, by=caller.label)
    note(request, action="review", resources=[f"DetectedIssue/{flag_id}"],
         patient_ids=[row["patient"].split("/", 1)[1]] if row.get("patient") else [],
         detail={"decision": row["status"], "reason": row["reviews"][-1]["reason"]})
    return Response(fhirjson.dumps(row), media_type="application/json")
