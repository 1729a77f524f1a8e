"""The recognition rate (互认率) published as a FHIR ``Measure`` and evaluated into a ``MeasureReport``.

The Measure is a proportion (its definition is data: ``recognition/measures.yaml``): the
denominator is every order that had a recognisable prior result when it was placed; the numerator
those recognised (cancelled, answered "recognise" in CDS, or never resulted within the item's
window). Stratified by ordering institution, department, ordering doctor and month. The figures are
the auditors' report's (``reports.recognition_rates``), so the API, the CLI, the page and the
MeasureReport can never disagree; the Measure and MeasureReport are shaped by ``engine.measures``,
like every other indicator.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from engine.measures import Figure, MeasureDef, Measures
from engine.measures import measure_report as build_report
from engine.recognition.reports import FlagScreen, ReportFilter, recognition_rates

MEASURE_ID = "huren-recognition-rate"
INDICATOR = "recognition-rate"


def figure(row: dict[str, Any]) -> Figure:
    n, d = int(row["recognised"]), int(row["recognisable"])
    return Figure(Decimal(n), Decimal(d), {"initial-population": d, "denominator": d, "numerator": n})


def measure_report(recognition: Any, measure: MeasureDef, start: date | None, end: date | None,
                   institution: str | None = None, *, screen: FlagScreen | None = None) -> dict[str, Any]:
    """A summary MeasureReport for the period (and, if given, one ordering institution); ``screen``:
    the reader's, as the auditors' report takes it (the review of labelslast20: the MeasureReport
    counted an order whose evidence the screened report left out)."""
    flt = ReportFilter(start=start, end=end, institution=institution)
    dims = tuple(s.key for s in measure.stratifiers) or ("inst",)
    strata = recognition_rates(recognition, flt, tuple(dict.fromkeys(("inst", *dims))), screen=screen)
    whole = Figure()
    for row in strata["inst"].values():
        whole.add(figure(row))
    return build_report(measure, whole, {by: {k: figure(r) for k, r in rows.items()} for by, rows in strata.items()},
                        start=start, end=end, reporter=("urn:huren:institution", institution) if institution else None)


def definition(measures: Measures) -> MeasureDef | None:
    found = measures.by_indicator(INDICATOR)
    return found[0] if found else None
