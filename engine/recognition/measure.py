"""The recognition rate (互认率) published as a FHIR ``Measure`` and evaluated into a ``MeasureReport``.

The Measure is a proportion: the denominator is every order that had a recognisable prior result
when it was placed; the numerator those recognised (cancelled, answered "recognise" in CDS, or
never resulted within the item's window). Stratified by ordering institution, department,
ordering doctor and month. The figures are the auditors' report's (``reports.recognition_rate``),
so the API, the CLI, the page and the MeasureReport can never disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from engine.recognition.reports import ReportFilter, recognition_rates

MEASURE_ID = "huren-recognition-rate"
MEASURE_URL = "urn:huren:Measure/recognition-rate"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
STRATA = (("inst", "institution", "ordering institution (机构)"), ("dept", "department", "department (科室)"),
          ("doctor", "doctor", "ordering doctor (开单医生)"), ("month", "month", "month of the order (月份)"))


def _population(code: str, count: int | None = None) -> dict[str, Any]:
    pop: dict[str, Any] = {"code": {"coding": [{"system": POPULATION, "code": code}]}}
    if count is not None:
        pop["count"] = count
    return pop


def _criteria(text: str) -> dict[str, Any]:
    """Population criteria: the definition's name and, in words, what it counts. huren computes them
    itself (no CQL Library is evaluated); the name is the CQL-style identifier a Library would use."""
    name = text.split(" (")[0].split(",")[0]
    return {"language": "text/cql", "name": "".join(w.capitalize() for w in name.split()[:4] if w.isalnum())[:64] or "Criteria",
            "expression": f'"{name}"', "description": text}


def measure_resource() -> dict[str, Any]:
    return {
        "resourceType": "Measure",
        "id": MEASURE_ID,
        "url": MEASURE_URL,
        "name": "RecognitionRate",
        "title": "检查检验结果互认率 Mutual recognition rate",
        "status": "active",
        "description": "Orders placed while a recognisable prior result existed (denominator) that were "
                       "recognised: cancelled, answered 'recognise' at order time, or never resulted within "
                       "the item's validity window (numerator).",
        "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": "proportion"}]},
        "improvementNotation": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                                            "code": "increase"}]},
        "group": [{
            "population": [
                {**_population("initial-population"), "description": "orders with a recognisable prior result at order time",
                 "criteria": _criteria("ServiceRequest placed while a recognisable prior result existed")},
                {**_population("denominator"), "description": "the initial population",
                 "criteria": _criteria("the initial population")},
                {**_population("numerator"), "description": "cancelled, recognised in CDS, or never resulted in the window",
                 "criteria": _criteria("ServiceRequest revoked (ORC-1 CA/OC), answered 'recognise' in CDS Hooks, "
                                       "or without a result within the item's window")},
            ],
            "stratifier": [{"code": {"text": name}, "description": text, "criteria": _criteria(text)}
                           for _, name, text in STRATA],
        }],
    }


def _score(recognised: int, recognisable: int) -> dict[str, Any]:
    return {"value": round(recognised / recognisable, 4) if recognisable else 0, "unit": "1",
            "system": "http://unitsofmeasure.org", "code": "1"}


def _populations(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [_population("initial-population", row["recognisable"]), _population("denominator", row["recognisable"]),
            _population("numerator", row["recognised"])]


def measure_report(recognition: Any, start: date | None, end: date | None, institution: str | None = None) -> dict[str, Any]:
    """A summary MeasureReport for the period (and, if given, one ordering institution)."""
    flt = ReportFilter(start=start, end=end, institution=institution)
    strata = recognition_rates(recognition, flt, tuple(by for by, _, _ in STRATA))
    total = {"recognisable": sum(r["recognisable"] for r in strata["inst"].values()),
             "recognised": sum(r["recognised"] for r in strata["inst"].values())}
    period: dict[str, str] = {}
    if start:
        period["start"] = start.isoformat()
    if end:
        period["end"] = end.isoformat()
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": MEASURE_URL,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "period": period or {"end": date.today().isoformat()},
        "group": [{
            "population": _populations(total),
            "measureScore": _score(total["recognised"], total["recognisable"]),
            "stratifier": [{
                "code": [{"text": name}],
                "stratum": [{"value": {"text": key}, "population": _populations(row),
                             "measureScore": _score(row["recognised"], row["recognisable"])}
                            for key, row in strata[by].items()],
            } for by, name, _ in STRATA],
        }],
    }
    if institution:
        report["reporter"] = {"identifier": {"system": "urn:huren:institution", "value": institution}}
    return report
