"""Indicators as FHIR ``Measure`` definitions (data files) evaluated into ``MeasureReport``s.

One machinery for every indicator the platform publishes (the recognition rate, the insurer's
cost, referral and spending indicators): the definitions are data (``recognition/measures.yaml``,
``insurance/measures.yaml``, each replaceable through ``HUREN_SITE``), each naming the
``indicator`` whose figures huren computes; this module turns a definition into the ``Measure``
resource and a set of figures into the ``MeasureReport``, so every indicator is shaped, scored and
rounded alike.

A figure is exact: a numerator and a denominator as ``Decimal`` (money to the fen, counts as whole
numbers) plus the population counts. The score follows the definition's ``score``:

- ``quotient``: numerator ÷ denominator (a proportion, a ratio, or an average such as the cost per
  admission); no score when the denominator is 0;
- ``total``: the numerator itself (a count, or a sum of money);
- ``growth``: numerator ÷ denominator − 1 (this period's figure against the baseline's).

Both numbers behind each score travel with it (extension ``measure-figures``), so a reader can
check the arithmetic, and a threshold can be tested on the unrounded value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from engine.errors import Gone, NotFound
from engine.repository.port import is_new_store
from mappings.site import DEFAULTS_DIR
from mappings.sitefiles import check, find_file, locate, read_yaml

FILES = ("recognition/measures.yaml", "insurance/measures.yaml")
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
FIGURES_EXT = "urn:huren:StructureDefinition:measure-figures"
UCUM = "http://unitsofmeasure.org"
ISO_4217 = "urn:iso:std:iso:4217"  # a currency's code system (money: CNY)
# R5's Measure.scoringUnit for R4 (the published cross-version extension): the unit a score is to be
# read in. Only display: a report's measureScore keeps the unit it was computed in ("1"), and a
# reader converts by UCUM (0.35 "1" is 35 "%").
SCORING_UNIT_EXT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Measure.scoringUnit"
SCORING_UNITS = {"%": "percent"}
SCORES = ("quotient", "total", "growth")
ZERO = Decimal(0)

_POP_CODES = ["initial-population", "numerator", "numerator-exclusion", "denominator", "denominator-exclusion",
              "denominator-exception", "measure-population", "measure-population-exclusion", "measure-observation"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["measures"],
    "additionalProperties": False,
    "properties": {
        "admission_classes": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "measures": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "name", "title", "indicator", "scoring", "description", "populations"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"},
                "url": {"type": "string"},
                "name": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9_]{0,254}$"},
                "title": {"type": "string"},
                "indicator": {"type": "string"},
                "scoring": {"enum": ["proportion", "ratio", "continuous-variable", "cohort"]},
                "score": {"enum": list(SCORES)},
                "improvement": {"enum": ["increase", "decrease"]},
                "unit": {"type": "string"},
                "numerator_unit": {"type": "string", "minLength": 1},
                "denominator_unit": {"type": "string", "minLength": 1},
                "scoring_unit": {"enum": list(SCORING_UNITS)},
                "digits": {"type": "integer", "minimum": 0, "maximum": 8},
                "baseline": {"enum": ["previous-year", "previous-month"]},
                "description": {"type": "string"},
                "populations": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["code", "description"], "additionalProperties": False,
                    "properties": {"code": {"enum": _POP_CODES}, "description": {"type": "string"},
                                   "criteria": {"type": "string"}}}},
                "stratifiers": {"type": "array", "items": {
                    "type": "object", "required": ["key", "name", "description"], "additionalProperties": False,
                    "properties": {"key": {"type": "string"}, "name": {"type": "string"},
                                   "description": {"type": "string"}}}},
            },
        }},
    },
}


@dataclass(frozen=True)
class Population:
    code: str
    description: str
    criteria: str


@dataclass(frozen=True)
class Stratifier:
    key: str  # the dimension the figures are broken down by (the calculator's name for it)
    name: str
    description: str


@dataclass(frozen=True)
class MeasureDef:
    id: str
    url: str
    name: str
    title: str
    indicator: str  # which figures huren computes for it
    scoring: str
    score: str
    improvement: str | None
    unit: str
    digits: int
    description: str
    populations: tuple[Population, ...]
    stratifiers: tuple[Stratifier, ...]
    baseline: str | None = None
    file: str = ""
    scoring_unit: str | None = None  # the UCUM unit the score is to be read in (display only)
    # what the numerator and the denominator are in, when they are amounts (a currency: CNY) rather
    # than counts; None for a count. Stated in the report's figures (``numeratorUnit``/``denominatorUnit``)
    numerator_unit: str | None = None
    denominator_unit: str | None = None


@dataclass(frozen=True)
class Measures:
    """Every definition in force, by id, and the shared settings of the insurer's calculators."""

    by_id: Mapping[str, MeasureDef]
    admission_classes: frozenset[str] = frozenset({"IMP", "ACUTE", "NONAC"})

    def by_indicator(self, indicator: str) -> list[MeasureDef]:
        return [m for m in self.by_id.values() if m.indicator == indicator]


@dataclass
class Figure:
    """The exact numbers of one cell (a whole report, one stratum): numerator, denominator and the
    population counts by population code."""

    numerator: Decimal = ZERO
    denominator: Decimal = ZERO
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, other: Figure) -> Figure:
        self.numerator += other.numerator
        self.denominator += other.denominator
        for code, n in other.counts.items():
            self.counts[code] = self.counts.get(code, 0) + n
        return self

    def count(self, code: str, n: int = 1) -> None:
        self.counts[code] = self.counts.get(code, 0) + n


def total(figures: Iterable[Figure]) -> Figure:
    out = Figure()
    for f in figures:
        out.add(f)
    return out


def load(site_dir: Path | str | None) -> Measures:
    """The definitions of every file in ``FILES`` (a site's copy replaces the shipped one)."""
    folders = [DEFAULTS_DIR] + ([Path(site_dir)] if site_dir is not None else [])
    by_id: dict[str, MeasureDef] = {}
    classes: frozenset[str] | None = None
    for name in FILES:
        path = find_file(name, folders)
        doc = read_yaml(path)
        data = check(doc, SCHEMA)
        if data.get("admission_classes"):
            classes = frozenset(map(str, data["admission_classes"]))
        for i, m in enumerate(data["measures"]):
            if m["id"] in by_id:
                raise locate(doc, ["measures", i, "id"], f"Measure {m['id']!r} is already defined in {by_id[m['id']].file}")
            score = m.get("score", "quotient")
            if score == "growth" and not m.get("baseline"):
                raise locate(doc, ["measures", i, "baseline"], "required for score: growth (previous-year or previous-month)")
            unit = str(m.get("unit", "1"))
            by_id[m["id"]] = MeasureDef(
                id=m["id"], url=m.get("url") or f"urn:huren:Measure/{m['id']}", name=m["name"], title=m["title"],
                indicator=m["indicator"], scoring=m["scoring"], score=score, improvement=m.get("improvement"),
                unit=unit, digits=int(m.get("digits", 2 if unit != "1" else 4)), description=m["description"].strip(),
                populations=tuple(Population(p["code"], p["description"], p.get("criteria") or p["description"])
                                  for p in m["populations"]),
                stratifiers=tuple(Stratifier(s["key"], s["name"], s["description"]) for s in m.get("stratifiers") or ()),
                baseline=m.get("baseline"), file=str(path), scoring_unit=m.get("scoring_unit"),
                numerator_unit=m.get("numerator_unit"), denominator_unit=m.get("denominator_unit"))
    return Measures(by_id, classes) if classes else Measures(by_id)


def _criteria(text: str) -> dict[str, Any]:
    """Population criteria: the definition's name and, in words, what it counts. huren computes them
    itself (no CQL Library is evaluated); the name is the CQL-style identifier a Library would use."""
    name = text.split(" (")[0].split(",")[0]
    return {"language": "text/cql", "name": "".join(w.capitalize() for w in name.split()[:4] if w.isalnum())[:64] or "Criteria",
            "expression": f'"{name}"', "description": text}


def _population(code: str, count: int | None = None) -> dict[str, Any]:
    pop: dict[str, Any] = {"code": {"coding": [{"system": POPULATION, "code": code}]}}
    if count is not None:
        pop["count"] = count
    return pop


def measure_resource(m: MeasureDef) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Measure", "id": m.id, "url": m.url, "name": m.name, "title": m.title, "status": "active",
        "description": m.description,
        "scoring": {"coding": [{"system": SCORING, "code": m.scoring}]},
    }
    if m.scoring_unit:
        out["extension"] = [{"url": SCORING_UNIT_EXT, "valueCodeableConcept": {
            "coding": [{"system": UCUM, "code": m.scoring_unit, "display": SCORING_UNITS[m.scoring_unit]}]}}]
    if m.improvement:
        out["improvementNotation"] = {"coding": [{"system": IMPROVEMENT, "code": m.improvement}]}
    group: dict[str, Any] = {"population": [{**_population(p.code), "description": p.description,
                                             "criteria": _criteria(p.criteria)} for p in m.populations]}
    if m.stratifiers:
        group["stratifier"] = [{"code": {"text": s.name}, "description": s.description, "criteria": _criteria(s.description)}
                               for s in m.stratifiers]
    out["group"] = [group]
    return out


def score(m: MeasureDef, f: Figure) -> Decimal | None:
    """The unrounded score of a figure (None: undefined, a quotient or growth over nothing)."""
    if m.score == "total":
        return f.numerator
    if not f.denominator:
        return None
    q = f.numerator / f.denominator
    return q - 1 if m.score == "growth" else q


def _quantity(m: MeasureDef, value: Decimal | None) -> dict[str, Any] | None:
    if value is None:
        return None
    exp = Decimal(1).scaleb(-m.digits)
    q: dict[str, Any] = {"value": value.quantize(exp, rounding=ROUND_HALF_UP), "unit": m.unit}
    if m.unit == "1":
        q.update(system=UCUM, code="1")
    elif _money(m.unit):
        q.update(system=ISO_4217, code=m.unit)
    return q


def _money(unit: str) -> bool:
    """Whether a measure's unit is a currency: an ISO 4217 code, three capitals (CNY) -- how both a
    score (``_quantity``) and a figure's unit (``unit_coding``) read money."""
    return len(unit) == 3 and unit.isupper()


def unit_coding(unit: str) -> dict[str, str]:
    """A unit as a Coding: a currency by ISO 4217, anything else by UCUM."""
    return {"system": ISO_4217 if _money(unit) else UCUM, "code": unit}


def _scored(m: MeasureDef, f: Figure) -> dict[str, Any]:
    out: dict[str, Any] = {"population": [_population(p.code, f.counts.get(p.code, 0)) for p in m.populations]}
    q = _quantity(m, score(m, f))
    if q is not None:
        out["measureScore"] = q
    parts: list[dict[str, Any]] = [{"url": "numerator", "valueDecimal": f.numerator}]
    if m.score != "total":  # a count (duplicate tests) has no denominator: none is stated, not a 0
        parts.append({"url": "denominator", "valueDecimal": f.denominator})
    # the unit of an amount beside it (5100.50 is yuan, not admissions): FHIR's population counts are
    # whole numbers with no unit, and a part is a value or extensions, not both (ext-1), so each unit
    # is a part of its own, after the numbers (a reader taking the first two parts still reads them)
    for url, unit in (("numeratorUnit", m.numerator_unit),
                      ("denominatorUnit", m.denominator_unit if m.score != "total" else None)):
        if unit:
            parts.append({"url": url, "valueCoding": unit_coding(unit)})
    out["extension"] = [{"url": FIGURES_EXT, "extension": parts}]
    return out


def measure_report(m: MeasureDef, whole: Figure, strata: Mapping[str, Mapping[str, Figure]], *,
                   start: date | None, end: date | None,
                   reporter: tuple[str, str] | None = None) -> dict[str, Any]:
    """A summary MeasureReport: the whole period's figure, then one stratum per key of each of the
    definition's stratifiers (``strata[stratifier.key]``). ``reporter``: (identifier system, value)
    of the community or institution the report is for."""
    period: dict[str, str] = {}
    if start:
        period["start"] = start.isoformat()
    if end:
        period["end"] = end.isoformat()
    group = _scored(m, whole)
    ext = group.pop("extension")
    group = {"extension": ext, **group}
    if m.stratifiers:
        group["stratifier"] = [{
            "code": [{"text": s.name}],
            "stratum": [{"value": {"text": key}, **_scored(m, fig)} for key, fig in sorted((strata.get(s.key) or {}).items())],
        } for s in m.stratifiers]
    report: dict[str, Any] = {
        "resourceType": "MeasureReport", "status": "complete", "type": "summary", "measure": m.url,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "period": period or {"end": date.today().isoformat()},
        "group": [group],
    }
    if reporter:
        report["reporter"] = {"identifier": {"system": reporter[0], "value": reporter[1]}}
    return report


def publish(repository: Any, definitions: Sequence[MeasureDef]) -> None:
    """Store each definition's Measure (``Measure/<id>``), once per change: all of them in one
    transaction (a new data directory writes ~9 at its first start: one commit each was ~3 ms of an
    Engine open's ~50; read-only checks on later starts). A store this open made holds none: nothing
    read (``is_new_store``; ~0.15 ms of the ~2 ms a test's Engine spends here: the writes are the rest, trim42b)."""
    new = is_new_store(repository.store)
    with repository.store.transaction():
        for m in definitions:
            measure = measure_resource(m)
            try:
                current = None if new else repository.read("Measure", m.id)
            except (NotFound, Gone):
                current = None
            if current is None or {k: v for k, v in current.items() if k not in ("meta", "text")} != measure:
                repository.update(measure)

