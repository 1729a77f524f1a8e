"""The insurer's reports: ``GET /reports/settlement`` (the year's budget settlement), the
monthly deduction lists ``GET /reports/deductions`` (CSV, or a signed FHIR Bundle), suspected
split admissions ``GET /reports/split-admissions`` and the month's indicators with their alerts
``GET /reports/indicators`` (a Bundle of MeasureReports and Flags).

All are cross-patient figures for the bureau's auditors and insurer systems: the access policy's
insurance-report rule (``engine.auth.policy.require_insurance_report``) decides who may see them,
and a staff member bound to a remit (``engine.auth.policy.audit_remit``) sees only its institutions.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from engine import fhirjson
from engine.api.formats import accept_of, prefers
from engine.api.outcomes import FHIR_JSON
from engine.api.ui_words import site_names
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller
from engine.auth.policy import audit_remit, require_in_remit, require_insurance_report
from engine.errors import BadRequest, FhirError, Forbidden
from engine.insurance import rules as settlement_rules
from engine.insurance.charges import site_zone
from engine.insurance.deductions import deduction_list, sign_bundle, to_bundle, to_csv
from engine.insurance.indicators import Period, indicators, scopes
from engine.insurance.settlement import settlement_report
from engine.insurance.split_admissions import load_rule, split_admissions
from engine.periods import parse_day
from engine.recognition.reports import FlagScreen
from mappings.site import SiteError

router = APIRouter()


class RulesUnusable(FhirError):
    """The deployment's rules cannot be used (e.g. the required overspend share is unset). A 409:
    the request is fine but conflicts with the server's current settings, which the diagnostics
    name by file name, line and field; the route answers once the site sets them.

    Said in Chinese first, then in English, and without the server's paths (moneyleft27: the body
    carried ``/srv/huren/site/insurance/settlement.yaml:51``, the server's layout told to every
    auditor's client; the administrator reads the full path with ``huren settle`` on the server)."""

    status, code = 409, "business-rule"

    def __init__(self, zh: str, en: str, exc: SiteError) -> None:
        name = _no_paths(Path(exc.path).name)
        field = f"{exc.where}: " if exc.where else ""
        super().__init__(f"{zh}，暂时无法生成（{name}" + (f" 第 {exc.line} 行" if exc.line else "")
                         + f"）。请联系系统管理员补全或更正设置。 {en} cannot be used: {name}"
                         + (f":{exc.line}" if exc.line else "") + f": {field}{_no_paths(exc.problem)}")


_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\][^\s,;:'\"()]+")


def _no_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (a file's or folder's name)."""
    return _PATH.sub(lambda m: PurePath(m.group()).name or "", text)


@router.get("/reports/settlement")
def settlement(request: Request, year: int = Query(..., ge=1900, le=9999), community: str | None = None,
               caller: Caller = Depends(get_caller)) -> Response:
    require_insurance_report(caller, "ChargeItem")
    engine = engine_of(request)
    try:
        rules = settlement_rules.load(engine.settings.site)
    except SiteError as exc:
        raise RulesUnusable("结算规则设置不完整或有误", "the settlement rules", exc) from exc
    if community is not None and not community.strip():
        raise BadRequest("community must not be empty", expression=["community"])
    remit = audit_remit(caller, engine.site, engine.settings.site)
    if remit is not None:  # a bound auditor settles only a community wholly in their remit
        members = {c for c, inst in engine.site.institutions.items() if inst.community == community}
        if community is None or not members or not members <= remit:
            raise Forbidden("name a medical community (community=) wholly within your remit")
    report = settlement_report(engine.repository, engine.site, rules, year, community)
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": "settlement", "year": year})
    return Response(fhirjson.dumps(report), media_type="application/json")


@router.get("/reports/deductions")
def deductions(request: Request, institution: str = Query(..., min_length=1), month: str = Query(...),
               fmt: str | None = Query(None, alias="_format"), caller: Caller = Depends(get_caller)) -> Response:
    """The institution's deduction list for ``month`` (YYYY-MM): a signed FHIR Bundle (default,
    ``_format=json``) or CSV (``_format=csv`` or an ``Accept`` weighing
    ``text/csv`` above the Bundle's JSON: ``formats.prefers``; ``text/csv;q=0`` is never the unsigned CSV)."""
    require_insurance_report(caller)
    engine = engine_of(request)
    require_in_remit(caller, institution, engine.site, engine.settings.site, "institution")
    dl = deduction_list(engine.recognition, engine.repository, institution, month,
                        screen=FlagScreen(engine.repository, caller))
    wants_csv = (fmt or "").lower() in ("csv", "text/csv") or (
        fmt is None and prefers(accept_of(request), "text/csv", "application/fhir+json", "application/json"))
    if not wants_csv and dl.restricted_count:
        # A signed payment document is whole: the same List (institution|month) totalled 60.00 for
        # an auditor some labels are withheld from and 80.00 for the system (the review of
        # labelsmend20). It is refused to a reader it would leave an upheld flag out for (the CSV
        # already says how many), so every signed list served is the same for every reader; the
        # CSV stays a partial working view with its restricted summary.
        raise Forbidden("扣款清单须由可查看全部记录的账户生成（本月有当前账户无权查看的受限记录）；可改用 _format=csv 查看"
                        " (the signed deduction list must be generated by an account shown every record)")
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": "deductions", "institution": institution, "month": month, "rows": len(dl.rows)})
    name = f"deductions-{dl.id}"
    if wants_csv:
        return Response(to_csv(dl, site_names(engine)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt not in (None, "json", "application/json", "application/fhir+json"):
        raise BadRequest("_format must be json or csv", expression=["_format"])
    bundle = to_bundle(dl, engine.repository, engine.settings.fhir_base_url, site_names(engine))
    return Response(sign_bundle(bundle, engine.audit.keys), media_type=FHIR_JSON,
                    headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


@router.get("/reports/split-admissions")
def split_admission_report(request: Request, start: str | None = Query(None, alias="from"),
                           end: str | None = Query(None, alias="to"),
                           caller: Caller = Depends(get_caller)) -> Response:
    """Suspected split admissions (分解住院): readmissions admitted from ``from`` to ``to``."""
    require_insurance_report(caller, "Encounter")
    engine = engine_of(request)
    try:
        rule = load_rule(engine.settings.site)
    except SiteError as exc:
        raise RulesUnusable("分解住院规则设置有误", "the split-admission rule", exc) from exc
    report = split_admissions(engine.repository, engine.identity, rule, parse_day(start, "from"), parse_day(end, "to"),
                              site_zone(engine.site))
    remit = audit_remit(caller, engine.site, engine.settings.site)
    if remit is not None:  # a bound auditor sees the readmissions at their institutions
        report["pairs"] = [p for p in report["pairs"] if p["readmission"]["institution"] in remit]
        report["count"] = len(report["pairs"])
    patients = {p[k]["patient"].split("/", 1)[1] for p in report["pairs"] for k in ("first", "readmission")}
    note(request, action="report-view", query=str(request.url.query) or None, patient_ids=sorted(patients),
         detail={"report": "split-admissions", "pairs": report["count"]})
    return Response(fhirjson.dumps(report), media_type="application/json")


@router.get("/reports/indicators")
def indicator_report(request: Request, month: str = Query(...), community: str | None = None,
                     institution: str | None = None, caller: Caller = Depends(get_caller)) -> Response:
    """The month's indicators: a ``collection`` Bundle of one MeasureReport per indicator and
    community (or institution), then the alerts (``Flag``, active) their thresholds raise."""
    require_insurance_report(caller, "ChargeItem", "Encounter")
    engine = engine_of(request)
    period = Period.month(month)
    try:
        scope = scopes(engine.site, community=community or None, institution=institution or None,
                       remit=audit_remit(caller, engine.site, engine.settings.site))
        reports, flags = indicators(engine, period, scope, FlagScreen(engine.repository, caller))
    except SiteError as exc:
        raise RulesUnusable("指标定义或阈值设置有误", "the indicator definitions or thresholds", exc) from exc
    active = [f for f in flags if f["status"] == "active"]
    base = engine.settings.fhir_base_url.rstrip("/")
    bundle = {"resourceType": "Bundle", "type": "collection", "total": len(reports) + len(active),
              "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in reports + active]}
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": "indicators", "month": month, "alerts": len(active)})
    return Response(fhirjson.dumps(bundle), media_type=FHIR_JSON)
