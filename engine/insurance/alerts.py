"""Warning thresholds on the indicators (``insurance/thresholds.yaml``) and the alerts they raise.

An alert is a FHIR ``Flag``, chosen over the alternatives on purpose:

- ``DetectedIssue`` is about a patient's care (R4: "an actual or potential clinical issue with or
  between one or more active or proposed clinical actions for a patient"); in huren it is the
  duplicate-test flag an auditor upholds or overturns. An indicator alert concerns no patient;
- a status on a ``MeasureReport`` group does not exist in R4 (only an extension could carry it),
  and the report is the evidence, not the warning;
- ``Flag`` is the resource for "a warning about an entity to be aware of": its ``subject`` may be an
  ``Organization`` (the institution, or the community by its identifier), it has a ``period`` (the
  report's), ``status`` ``active`` while the threshold is crossed and ``inactive`` once a later
  evaluation of the same period no longer crosses it, and the core extension ``flag-detail`` points
  at the MeasureReport that shows the figures.

Ids are deterministic (measure, threshold, subject, period), so re-evaluating a month updates its
alerts instead of adding copies; so are the MeasureReports' (``report_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.measures import FIGURES_EXT, Figure, MeasureDef, Measures
from engine.measures import score as unrounded
from engine.repository.ids import deterministic_id
from mappings.site import DEFAULTS_DIR
from mappings.sitefiles import check, find_file, locate, read_yaml

FILE = "insurance/thresholds.yaml"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
FLAG_PRIORITY = "http://hl7.org/fhir/StructureDefinition/flag-priority"
ALERT_EXT = "urn:huren:StructureDefinition:indicator-alert"
ALERT_SYSTEM = "urn:huren:indicator-alert"
PRIORITY = {"warning": ("PM", "Medium priority"), "alert": ("PH", "High priority")}
AT = ("community", "institution")
_NUMBER = {"type": ["number", "string"]}
SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["thresholds"], "additionalProperties": False,
    "properties": {"thresholds": {"type": "array", "items": {
        "type": "object", "required": ["measure", "level", "text"], "additionalProperties": False,
        "properties": {
            "measure": {"type": "string"}, "above": _NUMBER, "below": _NUMBER,
            "level": {"enum": list(PRIORITY)},
            "at": {"type": "array", "minItems": 1, "items": {"enum": list(AT)}},
            "text": {"type": "object", "required": ["zh", "en"], "additionalProperties": False,
                     "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
        }}}},
}


@dataclass(frozen=True)
class Threshold:
    measure: str
    comparator: str  # above | below
    value: Decimal
    level: str
    at: frozenset[str]
    text_zh: str
    text_en: str

    def crossed(self, score: Decimal | None) -> bool:
        if score is None:
            return False
        return score > self.value if self.comparator == "above" else score < self.value

    @property
    def key(self) -> str:
        """What the alert's id is made of: not the value, so a changed threshold updates (or retires)
        the alert it raised before."""
        return f"{self.measure}:{self.comparator}"


def load(site_dir: Path | str | None, measures: Measures) -> list[Threshold]:
    folders = [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else [])
    doc = read_yaml(find_file(FILE, folders))
    data = check(doc, SCHEMA)
    out = []
    for i, t in enumerate(data["thresholds"]):
        if t["measure"] not in measures.by_id:
            raise locate(doc, ["thresholds", i, "measure"], f"no Measure {t['measure']!r} (measures.yaml defines "
                                                            f"{', '.join(sorted(measures.by_id))})")
        sides = [k for k in ("above", "below") if k in t]
        if len(sides) != 1:
            raise locate(doc, ["thresholds", i], "give exactly one of above or below")
        try:
            value = Decimal(str(t[sides[0]]).strip())
        except InvalidOperation:
            raise locate(doc, ["thresholds", i, sides[0]], f"{t[sides[0]]!r} is not a number") from None
        if any(o.measure == t["measure"] and o.comparator == sides[0] for o in out):
            raise locate(doc, ["thresholds", i], f"a second '{sides[0]}' threshold on {t['measure']}: one per side")
        out.append(Threshold(t["measure"], sides[0], value, t["level"], frozenset(t.get("at") or AT),
                             t["text"]["zh"], t["text"]["en"]))
    return out


def report_id(measure: str, reporter: dict[str, Any] | None, period: dict[str, str]) -> str:
    who = (reporter or {}).get("identifier") or {}
    return deterministic_id(str(who.get("value") or "site"), "MeasureReport",
                            f"{measure}|{who.get('system') or ''}|{period.get('start')}|{period.get('end')}")


def _score(group: dict[str, Any], m: MeasureDef) -> Decimal | None:
    """The unrounded score, from the figures the group carries (a threshold is tested on it)."""
    ext = next((e for e in group.get("extension") or () if e.get("url") == FIGURES_EXT), None)
    if ext is None:
        return None
    parts = {p["url"]: Decimal(str(p["valueDecimal"])) for p in ext["extension"] if "valueDecimal" in p}  # not the units
    return unrounded(m, Figure(parts["numerator"], parts.get("denominator", Decimal(0))))


def alerts(report: dict[str, Any], m: MeasureDef, thresholds: list[Threshold], *,
           institution_names: dict[str, str]) -> list[dict[str, Any]]:
    """Every threshold of ``m`` checked on the report: the whole (``community``, or the institution
    the report is for) and each institution stratum (``institution``). One Flag per check, active
    when crossed and inactive when not, so that publishing a re-evaluation retires an old alert."""
    out = []
    reporter = (report.get("reporter") or {}).get("identifier") or {}
    whole_is_institution = reporter.get("system") == "urn:huren:institution"
    period = report["period"]
    group = report["group"][0]
    for t in (t for t in thresholds if t.measure == m.id):
        checks: list[tuple[str, str, dict[str, Any]]] = []
        if reporter and (("institution" if whole_is_institution else "community") in t.at):
            checks.append((reporter["system"], reporter["value"], group))
        if "institution" in t.at and not whole_is_institution:
            for s in group.get("stratifier") or ():
                if s["code"][0].get("text") == "institution":
                    checks += [("urn:huren:institution", st["value"]["text"], st) for st in s["stratum"]]
        for system, value, g in checks:
            score = _score(g, m)
            out.append(_flag(t, m, system, value, period, score, report_id(m.id, report.get("reporter"), period),
                             institution_names.get(value, value), g.get("measureScore")))
    return out


def _flag(t: Threshold, m: MeasureDef, system: str, value: str, period: dict[str, str], score: Decimal | None,
          report: str, display: str, shown: dict[str, Any] | None) -> dict[str, Any]:
    code, name = PRIORITY[t.level]
    fid = deterministic_id(value, "Flag", f"{t.key}|{system}|{period.get('start')}|{period.get('end')}")
    detail = [{"url": "measure", "valueCanonical": m.url}, {"url": "comparator", "valueCode": t.comparator},
              {"url": "threshold", "valueDecimal": t.value}, {"url": "level", "valueCode": t.level}]
    if shown is not None:
        detail.append({"url": "score", "valueQuantity": shown})
    return {
        "resourceType": "Flag", "id": fid,
        "status": "active" if t.crossed(score) else "inactive",
        "extension": [{"url": FLAG_DETAIL, "valueReference": {"reference": f"MeasureReport/{report}"}},
                      {"url": FLAG_PRIORITY, "valueCodeableConcept": {"coding": [{
                          "system": "http://hl7.org/fhir/flag-priority-code", "code": code, "display": name}]}},
                      {"url": ALERT_EXT, "extension": detail}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "admin",
                                  "display": "Administrative"}]}],
        "code": {"coding": [{"system": ALERT_SYSTEM, "code": f"{m.id}-{t.comparator}", "display": t.text_en}],
                 "text": f"{t.text_zh} {t.text_en}"},
        "subject": {"type": "Organization", "identifier": {"system": system, "value": value}, "display": display},
        "period": {k: v for k, v in period.items() if k in ("start", "end")},
    }
