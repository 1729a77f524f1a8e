"""The insurer's indicators, computed from the stored resources, per institution and month.

Each indicator of ``insurance/measures.yaml`` names the figures below; they are gathered in one
pass over what they read and kept per cell (institution, month), then summed into the report's
whole, its institution strata and its month strata (``engine.measures`` shapes the MeasureReport):

- ChargeItems (the settlement's reading: ``charges.read_line``; billable or billed lines with an
  amount): spending, the out-of-pocket part (amount − fund share) and, through
  ``ChargeItem.context``, the cost of each admission;
- inpatient Encounters (``admission_classes``) discharged in the period, at their
  ``serviceProvider``: the per-admission cost and the admissions inside the county;
- the referral rows (``engine.referral``, kept from each referral ServiceRequest and its Task):
  referrals out of the county (the receiving institution is not in ``institutions.yaml``) and the
  downward/upward counts of the referral report (``referral.report.tally``, the same ratio);
- the duplicate-test flags, through the auditors' report (``recognition.reports.duplicates_report``):
  flags still open or upheld and their money at stake.

A cell's month is the local date each resource states (a line's occurrence, a discharge, a
referral's authoring day, the repeated test's day).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from engine import fhirjson
from engine.errors import BadRequest, Gone, NotFound
from engine.insurance.alerts import alerts, report_id
from engine.insurance.alerts import load as load_thresholds
from engine.insurance.charges import (
    COUNTED_STATUSES,
    OrganizationCodes,
    context_ref,
    local_date,
    provider_of,
    read_line,
    site_zone,
)
from engine.insurance.reading import charges_between, charges_of_visits, search_pages
from engine.measures import Figure, MeasureDef, Measures, measure_report
from engine.periods import month_range
from engine.recognition.reports import FlagScreen, ReportFilter, duplicates_report
from engine.referral.report import stands, tally
from mappings.site import DEFAULT_ZONE

COMMUNITY_SYSTEM = "urn:huren:community"
INSTITUTION_SYSTEM = "urn:huren:institution"
Cell = tuple[str, str]  # (institution code, YYYY-MM)
# referrals that never were (written in error, withdrawn) count for nothing: ``referral.report.stands``


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise BadRequest("the period ends before it starts", expression=["periodEnd"])
        if (self.end - self.start).days > 400:
            raise BadRequest("the period is at most a year", expression=["periodEnd"])

    @classmethod
    def month(cls, text: str) -> Period:
        """The month ``text`` names, exactly ``YYYY-MM`` (``periods.month_range``; ``2026-1`` had been taken)."""
        return cls(*month_range(text))

    def has(self, day: str | None) -> bool:
        return day is not None and self.start.isoformat() <= day[:10] <= self.end.isoformat()

    def shifted(self, months: int) -> Period:
        return Period(_shift(self.start, months), _shift(self.end, months, last=self.end == _month_end(self.end)))

    def months(self) -> Iterator[Period]:
        first = date(self.start.year, self.start.month, 1)
        while first <= self.end:
            yield Period(max(first, self.start), min(_month_end(first), self.end))
            first = _shift(first, 1)


def _month_end(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _shift(day: date, months: int, *, last: bool = False) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 + months, 12)
    end = calendar.monthrange(y, m + 1)[1]
    return date(y, m + 1, end if last else min(day.day, end))


def _month_key(month: str, months: int) -> str:
    y, m = divmod(int(month[:4]) * 12 + int(month[5:7]) - 1 + months, 12)
    return f"{y:04d}-{m + 1:02d}"


BASELINE_MONTHS = {"previous-year": -12, "previous-month": -1}


@dataclass
class Facts:
    """Everything the indicators need, per cell, from one pass over each source."""

    spending: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    baseline: dict[str, dict[Cell, Figure]] = field(default_factory=dict)  # by baseline kind, cells moved forward
    out_of_pocket: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    admission_cost: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    county: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    out_of_county: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    two_way: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    duplicate_count: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))
    duplicate_money: dict[Cell, Figure] = field(default_factory=lambda: defaultdict(Figure))


def gather(engine: Any, period: Period, measures: Measures, screen: FlagScreen | None = None) -> Facts:
    """``screen``: the reader's -- the duplicate figures are the screened report's, so an indicator
    does not give back what the auditors' report withholds (the review of labelslast20)."""
    facts = Facts()
    site = engine.site
    repository = engine.repository
    organization = OrganizationCodes(repository)
    zone = site_zone(site)
    baselines = {m.baseline: BASELINE_MONTHS[m.baseline] for m in measures.by_indicator("spending-growth") if m.baseline}
    baseline_periods = {kind: period.shifted(months) for kind, months in baselines.items()}
    for kind in baselines:
        facts.baseline[kind] = defaultdict(Figure)

    # charge lines dated in the period or a baseline period: spending and the out-of-pocket part
    seen: set[str] = set()
    for first, last in _date_ranges([period, *baseline_periods.values()]):
        for resource in charges_between(repository, first, last):
            if resource.get("id") in seen:  # the ranges' one-day margins may meet
                continue
            seen.add(str(resource.get("id")))
            line = read_line(resource, organization, zone=zone)
            if line.status not in COUNTED_STATUSES or line.amount is None or line.day is None:
                continue
            inst = line.institution
            if inst is None or site.institution(inst) is None:
                continue
            if period.has(line.day):
                cell = (inst, line.day[:7])
                f = facts.spending[cell]
                f.numerator += line.amount
                f.count("numerator")
                if line.fund_share is not None:
                    oop = facts.out_of_pocket[cell]
                    oop.numerator += line.amount - line.fund_share
                    oop.denominator += line.amount
                    oop.count("denominator")
                    if line.amount > line.fund_share:
                        oop.count("numerator")
            for kind, months in baselines.items():
                if baseline_periods[kind].has(line.day):
                    b = facts.baseline[kind][(inst, _month_key(line.day[:7], -months))]
                    b.denominator += line.amount
                    b.count("denominator")

    # admissions discharged in the period, at the county's institutions (an Encounter's ``date`` is
    # its period: ``ge`` the day before the period starts finds every stay that ends in it)
    classes = measures.admission_classes
    admissions: list[tuple[Cell, str]] = []
    params = [("class", ",".join(sorted(classes))), ("date", f"ge{(period.start - timedelta(days=1)).isoformat()}")]
    for enc in search_pages(repository, "Encounter", params):
        if enc.get("status") in ("cancelled", "entered-in-error", "planned") or (enc.get("class") or {}).get("code") not in classes:
            continue
        end = (enc.get("period") or {}).get("end")
        inst = provider_of(enc, organization)
        if not isinstance(end, str) or inst is None or site.institution(inst) is None:
            continue
        # the discharge's day at the hospital (a stay a client ended at 2026-03-31T17:00Z ended on
        # 04-01 in Funing: April's admission, not March's)
        discharged = local_date(end, zone(inst) or DEFAULT_ZONE)
        if not period.has(discharged):
            continue
        assert discharged is not None
        admissions.append(((inst, discharged[:7]), f"Encounter/{enc['id']}"))
    # each admission's cost: its lines, whatever their dates
    stay_cost: dict[str, tuple[Decimal, int]] = {}
    for resource in charges_of_visits(repository, (ref for _, ref in admissions)):
        line = read_line(resource, organization, zone=zone)
        stay = context_ref(resource)
        if stay is None or line.status not in COUNTED_STATUSES or line.amount is None or line.day is None:
            continue
        cost, n = stay_cost.get(stay, (Decimal(0), 0))
        stay_cost[stay] = (cost + line.amount, n + 1)
    for cell, ref in admissions:
        cost, lines = stay_cost.get(ref, (Decimal(0), 0))
        a = facts.admission_cost[cell]
        a.numerator += cost
        a.denominator += 1
        a.count("measure-population")
        a.count("measure-observation", lines)
        c = facts.county[cell]
        c.numerator += 1
        c.denominator += 1
        c.count("numerator")
        c.count("denominator")

    # referrals: out of the county (at the sending institution), and the two-way counts
    rows = [r for r in engine.referrals.rows.find({"month": {"$gte": period.start.isoformat()[:7],
                                                             "$lte": period.end.isoformat()[:7]}})
            if period.has(r.get("day")) and stands(r)]
    for row in rows:
        sender, receiver = row.get("from"), row.get("to")
        if sender and site.institution(sender) is not None and receiver and site.institution(receiver) is None:
            cell = (sender, row["month"])
            o = facts.out_of_county[cell]
            o.numerator += 1
            o.count("initial-population")
            c = facts.county[cell]
            c.denominator += 1
            c.count("denominator")
            c.count("denominator-exclusion")
    for t in tally(rows, deductibles=False):
        if site.institution(t["institution"]) is None:
            continue
        cell = (t["institution"], t["month"])
        w = facts.two_way[cell]
        w.numerator += t["sent"]["downward"]
        w.denominator += t["received"]["upward"]
        w.count("numerator", t["sent"]["downward"])
        w.count("denominator", t["received"]["upward"])

    # duplicate tests: the auditors' report, month by month
    for month in period.months():
        report = duplicates_report(engine.recognition, ReportFilter(start=month.start, end=month.end), limit=0,
                                   screen=screen)
        for inst, row in report["totals"]["by_institution"].items():
            if site.institution(inst) is None:
                continue
            cell = (inst, month.start.isoformat()[:7])
            open_or_upheld = int(row.get("flagged", 0)) + int(row.get("upheld", 0))
            if open_or_upheld:
                facts.duplicate_count[cell].numerator += open_or_upheld
                facts.duplicate_count[cell].count("initial-population", open_or_upheld)
                facts.duplicate_money[cell].numerator += Decimal(str(row["money"]))
                facts.duplicate_money[cell].count("measure-population", open_or_upheld)
    return facts


def _date_ranges(periods: list[Period]) -> list[tuple[date, date]]:
    """The periods as few date ranges as cover them without the months between (a month and the
    same month a year before are two ranges, not thirteen months)."""
    out: list[tuple[date, date]] = []
    for p in sorted(periods, key=lambda p: p.start):
        if out and p.start <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], p.end))
        else:
            out.append((p.start, p.end))
    return out


def _growth_cells(facts: Facts, kind: str) -> dict[Cell, Figure]:
    out: dict[Cell, Figure] = defaultdict(Figure)
    for cell, f in facts.spending.items():
        out[cell].add(f)
    for cell, f in facts.baseline.get(kind, {}).items():
        out[cell].add(f)
    return out


def cells_for(m: MeasureDef, facts: Facts) -> Mapping[Cell, Figure]:
    by_indicator: dict[str, Mapping[Cell, Figure]] = {
        "per-admission-cost": facts.admission_cost, "out-of-pocket-share": facts.out_of_pocket,
        "county-treatment-rate": facts.county, "out-of-county-referrals": facts.out_of_county,
        "two-way-referral-ratio": facts.two_way, "duplicate-test-count": facts.duplicate_count,
        "duplicate-test-money": facts.duplicate_money,
    }
    if m.indicator == "spending-growth":
        return _growth_cells(facts, m.baseline or "previous-year")
    if m.indicator not in by_indicator:
        raise BadRequest(f"Measure/{m.id}: huren computes no indicator {m.indicator!r} ({m.file})")
    return by_indicator[m.indicator]


def figures(cells: Mapping[Cell, Figure], institutions: Iterable[str] | None) -> tuple[Figure, dict[str, dict[str, Figure]]]:
    """The whole and the institution and month strata of the cells of ``institutions`` (all: None)."""
    keep = None if institutions is None else set(institutions)
    whole = Figure()
    strata: dict[str, dict[str, Figure]] = {"institution": defaultdict(Figure), "month": defaultdict(Figure)}
    for (inst, month), f in cells.items():
        if keep is not None and inst not in keep:
            continue
        whole.add(f)
        strata["institution"][inst].add(f)
        strata["month"][month].add(f)
    return whole, strata


INSURER_INDICATORS = frozenset({"per-admission-cost", "out-of-pocket-share", "county-treatment-rate",
                                "out-of-county-referrals", "two-way-referral-ratio", "spending-growth",
                                "duplicate-test-count", "duplicate-test-money"})


def insurer_measures(measures: Measures) -> list[MeasureDef]:
    return [m for m in measures.by_id.values() if m.indicator in INSURER_INDICATORS]


@dataclass(frozen=True)
class Scope:
    """Whom a report is for: a community (its institutions), one institution, or the whole site;
    narrowed to ``remit`` (the institutions the caller may audit; None: all)."""

    system: str | None
    value: str | None
    institutions: frozenset[str]


def scopes(site: Any, *, community: str | None = None, institution: str | None = None,
           remit: frozenset[str] | None = None) -> list[Scope]:
    """One scope per community (or the one asked for), each limited to the caller's remit."""
    allowed = set(site.institutions) if remit is None else set(site.institutions) & set(remit)
    if institution is not None:
        if site.institution(institution) is None or institution not in allowed:
            raise BadRequest(f"no institution {institution!r} in this site (or outside your remit)",
                             expression=["institution"])
        return [Scope(INSTITUTION_SYSTEM, institution, frozenset({institution}))]
    communities: dict[str, set[str]] = defaultdict(set)
    for code, inst in site.institutions.items():
        communities[inst.community].add(code)
    if community is not None and community not in communities:
        raise BadRequest(f"no community {community!r} in this site", expression=["community"])
    out = []
    for name, members in sorted(communities.items()):
        if community is not None and name != community:
            continue
        if members <= allowed:
            out.append(Scope(COMMUNITY_SYSTEM, name, frozenset(members)))
        else:  # only part of the community is in the caller's remit: a report per institution of it
            out += [Scope(INSTITUTION_SYSTEM, code, frozenset({code})) for code in sorted(members & allowed)]
    return out


def evaluate(engine: Any, measures: Measures, definitions: list[MeasureDef], period: Period,
             scope_list: list[Scope], screen: FlagScreen | None = None) -> list[dict[str, Any]]:
    """A MeasureReport per definition and scope, from one gathering of the facts; each has the
    deterministic id of its measure, reporter and period (a re-evaluation replaces it)."""
    facts = gather(engine, period, measures, screen)
    reports = []
    for scope in scope_list:
        for m in definitions:
            whole, strata = figures(cells_for(m, facts), scope.institutions)
            reporter = (scope.system, scope.value) if scope.system and scope.value else None
            report = measure_report(m, whole, strata, start=period.start, end=period.end, reporter=reporter)
            reports.append({"resourceType": "MeasureReport", "id": report_id(m.id, report.get("reporter"), report["period"]),
                            **{k: v for k, v in report.items() if k != "resourceType"}})
    return reports


def indicators(engine: Any, period: Period, scope_list: list[Scope],
               screen: FlagScreen | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The insurer's MeasureReports for each scope and the alert Flags of the thresholds (active
    when crossed, inactive when not)."""
    measures = engine.measures
    definitions = insurer_measures(measures)
    thresholds = load_thresholds(engine.settings.site, measures)
    reports = evaluate(engine, measures, definitions, period, scope_list, screen)
    names = {code: inst.name for code, inst in engine.site.institutions.items()}
    by_url = {m.url: m for m in definitions}
    flags = [flag for r in reports for flag in alerts(r, by_url[r["measure"]], thresholds, institution_names=names)]
    return reports, flags


def publish(engine: Any, reports: list[dict[str, Any]], flags: list[dict[str, Any]]) -> tuple[int, int]:
    """Store the reports and the alerts: every active one, and inactive ones only to retire an alert
    stored before (so a month without alerts stores no Flags). Returns (reports, active alerts)."""
    repository = engine.repository
    for r in reports:
        repository.update(fhirjson.loads(fhirjson.dumps(r)))
    active = 0
    for f in flags:
        if f["status"] == "inactive":
            try:
                if repository.read("Flag", f["id"]).get("status") != "active":
                    continue
            except (NotFound, Gone):
                continue
        else:
            active += 1
        repository.update(fhirjson.loads(fhirjson.dumps(f)))
    return len(reports), active


def to_text(reports: list[dict[str, Any]], flags: list[dict[str, Any]]) -> str:
    """The CLI's rendering: one line per report (with its institution strata), then the alerts."""
    out = []
    for r in reports:
        who = ((r.get("reporter") or {}).get("identifier") or {}).get("value") or "site"
        g = r["group"][0]
        s = g.get("measureScore") or {}
        out.append(f"{r['measure'].rsplit('/', 1)[-1]:<34} {who:<10} {_shown(s)}")
        for strat in g.get("stratifier") or ():
            if strat["code"][0].get("text") == "institution":
                for st in strat["stratum"]:
                    out.append(f"{'':<34}   {st['value']['text']:<10} {_shown(st.get('measureScore') or {})}")
    active = [f for f in flags if f["status"] == "active"]
    out.append(f"\n{len(active)} alerts")
    for f in active:
        out.append(f"  {f['subject']['identifier']['value']:<10} {f['code']['text']}")
    return "\n".join(out) + "\n"


def _shown(q: dict[str, Any]) -> str:
    return f"{q['value']} {q.get('unit') if q.get('unit') != '1' else ''}".rstrip() if "value" in q else "—"
