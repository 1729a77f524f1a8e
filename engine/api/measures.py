"""``GET /fhir/Measure/{id}/$evaluate-measure``: any published indicator as a summary MeasureReport.

Parameters (FHIR names): ``periodStart`` / ``periodEnd`` (days, inclusive), ``reporter`` (an
institution code: the report for that institution), and ``subject`` (a medical community code: the
report for its institutions). The recognition rate is the auditors' report's figure; the insurer's
indicators (cost, out-of-pocket, county treatment, referrals, spending growth, duplicate tests) need
a period and are computed by ``engine.insurance.indicators``. Registered before the generic FHIR
router so that ``$evaluate-measure`` is not taken for a resource id.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from engine import fhirjson
from engine.api.formats import fhir_negotiation
from engine.api.outcomes import FHIR_JSON
from engine.audit.note import note
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller
from engine.auth.policy import audit_remit, require_auditor, require_in_remit, require_insurance_report
from engine.errors import BadRequest, NotFound
from engine.insurance.indicators import INSURER_INDICATORS, Period, Scope, evaluate, scopes
from engine.periods import parse_day
from engine.recognition import measure as recognition_measure
from engine.recognition.reports import FlagScreen

router = APIRouter()
INSURER_READS = ("ChargeItem", "Encounter")  # what the insurer's indicators are computed from


@router.get("/fhir/Measure/{measure_id}/$evaluate-measure", dependencies=[Depends(fhir_negotiation)])
def evaluate_measure(measure_id: str, request: Request, caller: Caller = Depends(get_caller),
                     periodStart: str | None = None, periodEnd: str | None = None,  # noqa: N803 (FHIR names)
                     reporter: str | None = None, subject: str | None = None) -> Response:
    require_auditor(caller)  # every indicator is a cross-patient figure: decided before anything is looked up
    engine = engine_of(request)
    m = engine.measures.by_id.get(measure_id)
    if m is None:
        raise NotFound(f"no such Measure to evaluate (huren evaluates {', '.join(sorted(engine.measures.by_id))})")
    start, end = parse_day(periodStart, "periodStart"), parse_day(periodEnd, "periodEnd")
    site, site_dir = engine.site, engine.settings.site
    if m.indicator == recognition_measure.INDICATOR:
        if subject:
            raise BadRequest("the recognition rate is evaluated per ordering institution (reporter), not per subject",
                             expression=["subject"])
        remit = audit_remit(caller, site, site_dir)
        if remit is not None and reporter is None:
            raise BadRequest("name the institution (reporter) whose rate you audit", expression=["reporter"])
        if reporter:
            require_in_remit(caller, reporter, site, site_dir, "institution")
        report = recognition_measure.measure_report(engine.recognition, m, start, end, reporter or None,
                                                    screen=FlagScreen(engine.repository, caller))
    elif m.indicator in INSURER_INDICATORS:
        require_insurance_report(caller, *INSURER_READS)
        if start is None or end is None:
            raise BadRequest("periodStart and periodEnd are required for this measure", expression=["periodStart"])
        if reporter and subject:
            raise BadRequest("give reporter (an institution) or subject (a community), not both", expression=["subject"])
        scope = scopes(site, community=subject or None, institution=reporter or None,
                       remit=audit_remit(caller, site, site_dir))
        if len(scope) != 1:  # the whole site, or a community only partly in the caller's remit: one report
            scope = [Scope(None, None, frozenset().union(*(s.institutions for s in scope)))]
        [report] = evaluate(engine, engine.measures, [m], Period(start, end), scope,
                            FlagScreen(engine.repository, caller))
    else:
        raise NotFound(f"huren computes no indicator {m.indicator!r}")
    note(request, action="report-view", query=str(request.url.query) or None,
         detail={"report": "measure", "measure": measure_id})
    return Response(fhirjson.dumps(report), media_type=FHIR_JSON)
