"""Referral routes: the pre-arrival summary and the per-month referral report.

- ``GET /fhir/ServiceRequest/{id}/$summary`` (and ``GET /fhir/Task/{id}/$summary`` for the Task
  carrying the referral): a ``document`` Bundle, Composition first, read through the caller's
  ``ScopedRepository`` like every FHIR route (a resident sees only a referral of their own records;
  anything else is the same 404 as a missing one).
- ``GET /reports/referrals?from=YYYY-MM&to=YYYY-MM&institution=CODE``: counts and ratios per
  institution and month, JSON, for auditors (the same check as the duplicate-test reports; an
  auditor bound to a remit sees only its institutions' referrals).
- ``GET /reports/remote-reading?from=YYYY-MM&to=YYYY-MM&centre=CODE``: remote reading turnaround
  and workload per centre and month, and the overdue reads (same check).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from engine import fhirjson
from engine.api.formats import fhir_negotiation
from engine.api.outcomes import fhir_response
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.auth.policy import audit_remit, require_auditor, require_in_remit
from engine.errors import NotFound
from engine.periods import month_range
from engine.referral.reading import reading_report
from engine.referral.report import referral_report
from engine.referral.service import focus_of
from engine.referral.summary import SummaryBuilder
from engine.repository.scoped import ScopedRepository

router = APIRouter(tags=["referral"])


async def _summary(sr_id: str, request: Request, repo: ScopedRepository) -> Response:
    engine = engine_of(request)
    builder = SummaryBuilder(engine.referrals, engine.settings.fhir_base_url)
    bundle = await run_in_threadpool(builder.build, sr_id, repo)
    resources = [e["resource"] for e in bundle["entry"][1:]]
    subject = bundle["entry"][0]["resource"]["subject"]["reference"].split("/", 1)[1]
    note(request, action="operation", resources=resources, patient_ids=[subject],
         detail={"operation": "$summary"})
    return fhir_response(bundle)


@router.get("/fhir/ServiceRequest/{rid}/$summary", dependencies=[Depends(fhir_negotiation)])
async def service_request_summary(rid: str, request: Request,
                                  repo: ScopedRepository = Depends(get_repo)) -> Response:
    return await _summary(rid, request, repo)


@router.get("/fhir/Task/{rid}/$summary", dependencies=[Depends(fhir_negotiation)])
async def task_summary(rid: str, request: Request, repo: ScopedRepository = Depends(get_repo)) -> Response:
    task = await run_in_threadpool(repo.read, "Task", rid)
    focus = focus_of(task)
    if focus is None:
        raise NotFound(f"Task/{rid} is not focused on a referral ServiceRequest")
    return await _summary(focus.split("/", 1)[1], request, repo)


@router.get("/reports/remote-reading")
def remote_reading_report(
    request: Request,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    centre: str | None = None,
    caller: Caller = Depends(get_caller),
) -> Response:
    """Turnaround and workload per reading centre and month, and the overdue reads."""
    remit = _report_remit(request, caller, start, end, centre, "centre")
    report = reading_report(engine_of(request).referrals.reading.rows, start=start or None, end=end or None,
                            centre=centre or None, within=remit)
    return _report_response(request, "remote-reading", report)


def _report_remit(request: Request, caller: Caller, start: str | None, end: str | None,
                  named: str | None, what: str) -> frozenset[str] | None:
    """The checks every referral report makes first: an auditor, months ``YYYY-MM``, a named
    institution inside the caller's remit (else 404); returns the remit (None: everything)."""
    require_auditor(caller)
    for name, value in (("from", start), ("to", end)):
        if value:
            month_range(value, name)
    engine = engine_of(request)
    if named:
        require_in_remit(caller, named, engine.site, engine.settings.site, what)
    return audit_remit(caller, engine.site, engine.settings.site)


def _report_response(request: Request, name: str, report: dict[str, Any]) -> Response:
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": name, "rows": len(report["rows"])})
    return Response(fhirjson.dumps(report), media_type="application/json")


@router.get("/reports/referrals")
def referrals_report(
    request: Request,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    institution: str | None = None,
    caller: Caller = Depends(get_caller),
) -> Response:
    remit = _report_remit(request, caller, start, end, institution, "institution")
    report = referral_report(engine_of(request).referrals.rows, start=start or None, end=end or None,
                             institution=institution or None, within=remit)
    return _report_response(request, "referrals", report)
