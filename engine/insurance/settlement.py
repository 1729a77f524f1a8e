"""The year's budget settlement of each medical community, computed from the stored ChargeItems.

One pass over the year's charge lines (a date-bounded search through the FHIR repository, so
FHIR-posted and HL7-converted lines are the same thing) sums, per community and insurance type, what counts
against the budget (the fund share, or the whole amount when the year's ``basis`` says so), and
per community what was spent at primary institutions. Lines that cannot be settled (no
institution, an institution outside the site, no insurance type, no fund share...) are not
dropped silently: they are counted by reason, with their amounts, in the report. Then
``engine.insurance.tiers.settle`` turns each budget and its spending into the labelled steps.

``huren settle YEAR`` and ``GET /reports/settlement`` both call ``settlement_report`` and show
the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from typing import Any

from engine.errors import FhirError, Gone, NotFound
from engine.insurance.charges import (
    COUNTED_STATUSES,
    ChargeLine,
    OrganizationCodes,
    in_currency,
    in_force,
    latest_lines,
    line_identity,
    line_key,
    line_price,
    local_date,
    money,
    read_line,
    site_zone,
    stored_at,
)
from engine.insurance.reading import charges_between, undated_charges
from engine.insurance.rules import SettlementRules, YearRules
from engine.insurance.tiers import ZERO, fen, pct, settle
from engine.merge_rules import NOT_THE_FEED
from engine.recognition.facts import local_instant
from engine.repository.port import WriterMarks
from mappings.site import Site

EXCLUSIONS = {
    "status": "status is not billable or billed",
    "no-date": "no occurrence date",
    "no-amount": "no amount (priceOverride or the charge-amount extension)",
    "currency": "amount in another currency than the settlement's",
    "no-institution": "no performing institution",
    "unknown-institution": "performing institution not in the site's institutions",
    "no-region": "the institution's community has no budget this year",
    "no-insurance-type": "no insurance type (extension, or the account's Coverage type in force -- not one a "
                         "later cover of another type ended, unless stated again after it)",
    "ambiguous-insurance-type": "two active Coverages of different types in force on the line's day, "
                                "neither known to have replaced the other (same or unreadable start)",
    "unbudgeted-type": "insurance type without a budget for the community",
    "no-fund-share": "no fund share (the year is settled on the fund share)",
    "superseded": "another version of the same charge line (its number and sign) was stored later",
}


class SettlementUnavailable(FhirError):
    """The rules cannot settle this request (no rules for the year, or the community)."""

    status, code = 404, "not-found"


@dataclass
class _Tally:
    lines: int = 0
    spending: Decimal = ZERO
    amount: Decimal = ZERO


@dataclass
class _Community:
    by_type: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    total: Decimal = ZERO
    primary: Decimal = ZERO


def year_charges(repository: Any, year: int) -> Iterator[dict[str, Any]]:
    """The ChargeItems whose ``occurrence`` overlaps ``year`` (``reading.charges_between``), then
    the undated ones (``occurrence:missing``, reported as not counted)."""
    yield from charges_between(repository, date(year, 1, 1), date(year, 12, 31))
    yield from undated_charges(repository)


def settlement_report(repository: Any, site: Site, rules: SettlementRules, year: int,
                      community: str | None = None) -> dict[str, Any]:
    years = rules.for_year(year, community)
    if not years:
        who = f" budgeting community {community!r}" if community else ""
        raise SettlementUnavailable(f"no settlement rules for {year}{who} in {rules.path}")
    region_of = {c: yr for yr in rules.for_year(year) for c in yr.budgets}
    organization = OrganizationCodes(repository)

    accounts: dict[str, list[_Cover]] = {}
    said: dict[str, str] = {}  # Coverage/x -> when huren last heard it stated (``_last_said``), per report

    def coverage_type(refs: list[str], day: str | None, tz: str, when: str | None = None) -> str | None:
        """The insurance type of the first account's first Coverage the rules map that is in force
        on the line's day, at its time where the period states instants (``charges.in_force``: a
        resident who became an employee mid-year is the resident fund's before and the employee
        fund's after, money25) and that no later cover of another type ended (``_ended``)."""
        for ref in refs:
            if ref not in accounts:
                accounts[ref] = _account_types(repository, ref, rules.coverage_types)
            covers = accounts[ref]
            found = [c for c in covers if in_force(c.period, day, tz, when)]
            if found and day is not None and len(covers) > len(found):
                heard = partial(_last_said, repository, covers=covers, said=said)
                ended = [_ended(c, covers, found, day, tz, when, heard) for c in found]
                if AMBIGUOUS in ended:
                    return AMBIGUOUS
                # every cover in force was ended: this account knows none for the day (the next may)
                found = [c for c, end in zip(found, ended, strict=True) if not end]
            if found:
                return _one_type([(c.itype, c.period) for c in found], tz)
        return None

    tallies: dict[str, _Community] = defaultdict(_Community)
    excluded: dict[str, _Tally] = defaultdict(_Tally)
    counted = 0
    prefix = f"{year:04d}-"
    zone = site_zone(site)  # once per report: each institution's zone looked up once
    for resource, reason in _one_version_each(year_charges(repository, year)):
        line = read_line(resource, organization, coverage_type if rules.coverage_types else _no_type, zone)
        if line.day is not None and not line.day.startswith(prefix):
            continue  # the search's margin day of the next or previous year
        reason = reason or _exclusion(line, site, region_of, rules.currency)
        if reason:
            t = excluded[reason]
            t.lines += 1
            t.amount += line.amount or ZERO
            continue
        inst = site.institution(line.institution or "")
        assert inst is not None and line.insurance_type is not None and line.amount is not None
        yr = region_of[inst.community]
        value = line.amount if yr.basis == "amount" else line.fund_share
        assert value is not None
        c = tallies[inst.community]
        t = c.by_type[line.insurance_type]
        t.lines += 1
        t.spending += value
        t.amount += line.amount
        c.total += value
        if yr.primary_care.is_primary(inst.code, inst.grade):
            c.primary += value
        counted += 1

    regions = []
    for yr in years:
        communities = [_community_report(name, yr, tallies.get(name) or _Community(), rules)
                       for name in sorted(yr.budgets) if community is None or name == community]
        regions.append({"region": yr.region, "name": rules.region_names.get(yr.region, yr.region), "year": yr.year,
                        "basis": yr.basis, "communities": communities})
    return {
        "report": "settlement",
        "year": year,
        "currency": rules.currency,
        "rules": rules.path,
        "regions": regions,
        "charges": {
            "counted": counted,
            "excluded": [{"reason": k, "why": EXCLUSIONS[k], "lines": v.lines, "amount": fen(v.amount)}
                         for k, v in sorted(excluded.items())],
        },
    }


def _one_version_each(charges: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each ChargeItem read, with "superseded" for one that an identical line (its number and
    sign, ``charges.line_key``) stored later replaces: a line re-sent under another id, or with a
    corrected amount, was settled twice (the money at stake counted it once). The rule is
    ``charges.latest_lines``, the money at stake's, over the same lines (counted statuses: the
    recognition keeps no row of another). A line without a number is its own line."""
    numbered: list[tuple[str, str, dict[str, Any]]] = []
    for charge in charges:
        ident = line_identity(charge)
        if ident is None or charge.get("status") not in COUNTED_STATUSES:
            yield charge, None
        else:
            amount = money(line_price(charge).get("value"))
            numbered.append((line_key(f"ChargeItem/{charge.get('id')}", ident, amount), stored_at(charge), charge))
    numbered.sort(key=lambda v: str(v[2].get("id")))
    kept = {id(c) for c in latest_lines(numbered)}
    for _, _, charge in numbered:
        yield charge, None if id(charge) in kept else "superseded"


def _no_type(refs: list[str], day: str | None, tz: str, when: str | None = None) -> None:
    return None


# R4 FinancialResourceStatusCodes: of active | cancelled | draft | entered-in-error only ``active`` is
# "currently in-force". A cancelled Coverage ("withdrawn, rescinded or reversed") covered nothing, a
# draft is not complete, one entered in error never was: none gives a line its type (a cancelled
# cover still gave its fund the line: review of money25). A Coverage stating no status (R4 requires one)
# is not known to be in force either: the line is listed ``no-insurance-type``, never guessed.
IN_FORCE_STATUS = frozenset({"active"})


@dataclass(frozen=True)
class _Cover:
    """One active Coverage of an Account the rules map: its insurance type, ``Coverage.period``, its
    reference and ``meta.lastUpdated`` (when huren last stored a change of it)."""

    itype: str
    period: Any
    ref: str
    updated: str


def _account_types(repository: Any, ref: str, codes: Mapping[str, str]) -> list[_Cover]:
    """The insurance types of an Account's Coverages the rules map (``coverage_types``), in the
    account's order, each with its ``Coverage.period``; a Coverage not ``active`` gives none
    (``IN_FORCE_STATUS``), nor one deleted or missing: an Account or a Coverage deleted
    (``DELETE /fhir/Coverage/x``, Gone) is no cover, and the year's settlement still answers (it was a
    410 for the whole report: review of money25)."""
    try:
        account = repository.read("Account", ref.split("/", 1)[1])
    except (NotFound, Gone):
        return []
    out: list[_Cover] = []
    for cov in account.get("coverage") or ():
        cref = ((cov or {}).get("coverage") or {}).get("reference")
        if not isinstance(cref, str) or not cref.startswith("Coverage/"):
            continue
        try:
            coverage = repository.read("Coverage", cref.split("/", 1)[1])
        except (NotFound, Gone):
            continue
        if coverage.get("status") not in IN_FORCE_STATUS:
            continue
        for coding in (coverage.get("type") or {}).get("coding") or ():
            if str(coding.get("code")) in codes:
                out.append(_Cover(codes[str(coding.get("code"))], coverage.get("period"), cref,
                                  str((coverage.get("meta") or {}).get("lastUpdated") or "")))
                break
    return out


def _end_day(period: Any, zone: str) -> str | None:
    """A Coverage period's end as its local day, or its text at a coarser precision (``2026-08``);
    None when open."""
    end = period.get("end") if isinstance(period, dict) else None
    if not isinstance(end, str) or len(end) < 4:
        return None
    return (local_date(end, zone) or end[:10]) if len(end) > 10 else end


def _ended(cover: _Cover, covers: list[_Cover], found: list[_Cover], day: str, zone: str, when: str | None,
           said: Callable[[str], str]) -> bool | str:
    """Did a later cover of another type END ``cover`` before the line's ``day``, so that it does not
    come back when that cover ends? (rvlast25a: an open 城乡居民 cover, then 职工 07-01..08-31: a
    September line went back to the resident fund.) A patient has one basic fund at a time, so a cover
    of another type starting later ends the earlier one at its start (moneyfix25b: ``_one_type`` decides
    the days both claim); after that cover ends, nothing says the patient re-enrolled -- unless the
    earlier cover was stated again AFTER the later one was last stated (a BAR naming the resident cover
    open once more: ``said``, huren's arrival order, as the store itself applies messages). Then the
    HIS's last word is that it is open, and it stands.

    True: ended (the line has no known cover from it); ``AMBIGUOUS``: a start not stated to the day
    leaves it unsure whether the other cover started later; False: not ended. A cover of another type
    still in force on ``day`` is ``_one_type``'s; one that ended before ``cover`` started ends nothing."""
    mine = _start_day(cover.period, zone)
    verdict: bool | str = False
    for other in covers:
        if other.itype == cover.itype or other in found:
            continue
        theirs, their_end = _start_day(other.period, zone), _end_day(other.period, zone)
        if mine is not None and their_end is not None and their_end < mine[:len(their_end)]:
            continue  # over before this cover began
        if not in_force({"start": (other.period or {}).get("start")}, day, zone, when):
            continue  # starts after the line (at its time where the start is an instant): no switch yet
        if mine is not None and theirs is not None and theirs <= mine:
            continue  # started no later: it did not end this one
        if said(cover.ref) > said(other.ref):
            continue  # stated open again after the other was last stated: the HIS's last word
        if mine is None or theirs is None:
            verdict = AMBIGUOUS
        else:
            return True
    return verdict


_HEARD_PAGE = 50  # Provenances naming one cover read at a time, newest first


def _last_said(repository: Any, ref: str, covers: list[_Cover], said: dict[str, str]) -> str:
    """When huren last heard Coverage ``ref`` stated: its last change (``meta.lastUpdated``) or the
    last message naming it (its Provenance's ``meta.lastUpdated``: a BAR re-stating an unchanged cover
    makes no new version, but its Provenance names the version it stated), as a UTC instant of fixed
    width, remembered per report. Read only for the few accounts where a later cover ended another.
    Only a Provenance the feed stored counts (the store's writer mark, ``WriterMarks``; writer30): a
    FHIR client's Provenance naming the cover (an old card scanned into the record) is no message
    of the HIS stating it. One stored before the mark (writer not known) counts, as it did."""
    if ref not in said:
        own = next((c.updated for c in covers if c.ref == ref), "")
        said[ref] = max((local_instant(t, "UTC") or "" for t in (own, _feed_said(repository, ref)) if t),
                        default="")
    return said[ref]


def _feed_said(repository: Any, ref: str) -> str:
    """The newest ``meta.lastUpdated`` of a Provenance version naming ``ref`` that a feed stored ("" when
    none). A Provenance whose current version a client wrote (an edit of the feed's, rvwriter30) still
    says what the feed's own earlier version said, dated by that version; one stored before the mark
    (writer not known) counts, as it did. Pages are newest first by the current version's time, which no
    earlier version of it passes: once a feed-written current version is found, nothing later is newer."""
    marks: WriterMarks = repository
    offset = 0
    best = ""
    while True:
        page = repository.search("Provenance", [("target", ref), ("_sort", "-_lastUpdated"),
                                                ("_count", str(_HEARD_PAGE)), ("_offset", str(offset)),
                                                ("_total", "none")])
        found = [p for p in page.resources if isinstance(p.get("id"), str)]
        writers = marks.writers("Provenance", [p["id"] for p in found])
        for p in found:
            if p["id"] not in writers:
                continue
            if writers[p["id"]] not in NOT_THE_FEED:
                return max(best, str((p.get("meta") or {}).get("lastUpdated") or ""), key=_utc)
            fed = [when for when, writer in marks.version_writers("Provenance", p["id"])
                   if writer not in NOT_THE_FEED]
            if fed:
                best = max(best, fed[0], key=_utc)
        if len(page.resources) < _HEARD_PAGE:
            return best
        offset += _HEARD_PAGE


def _utc(when: str) -> str:
    """A lastUpdated as a UTC instant of fixed width, to compare ("" stays lowest)."""
    return (local_instant(when, "UTC") or "") if when else ""


# a line two Coverages of different types claim, neither known to be the later (moneyfix25b)
AMBIGUOUS = "\x00ambiguous"


def _start_day(period: Any, zone: str) -> str | None:
    """A Coverage period's start as its local day (``YYYY-MM-DD``); None when not stated to the day."""
    start = period.get("start") if isinstance(period, dict) else None
    if not isinstance(start, str) or len(start) < 10:
        return None
    return (local_date(start, zone) or None) if len(start) > 10 else start[:10]


def _one_type(found: list[tuple[str, Any]], zone: str) -> str:
    """The insurance type of a line that active Coverages ``found`` (in the Account's order) are all in
    force for. One type: it. Coverages of different types (second review of money25: the HIS first
    sent the resident cover open-ended and after the switch a BAR^P05 names only the employee cover
    from 07-01; the Account keeps both, and the first listed took every line after the switch): the
    cover that started later wins -- a patient has one basic fund at a time (城乡居民 and 职工 are
    exclusive), so a cover starting on 07-01 ends the earlier open one there, whether or not the HIS
    sent the earlier one's end. Only when that is sure: every Coverage starts on a stated day and one
    type's start is strictly later than every other type's. Otherwise (the same start -- a corrected
    plan sent after the wrong one, which HL7 cannot retract --, or a start not stated to the day) the
    line is ``AMBIGUOUS``: listed ``ambiguous-insurance-type``, never the first listed's."""
    types = {itype for itype, _ in found}
    if len(types) == 1:
        return found[0][0]
    starts = [(_start_day(period, zone), itype) for itype, period in found]
    if any(day is None for day, _ in starts):
        return AMBIGUOUS
    latest = max(day for day, _ in starts if day is not None)
    winners = {itype for day, itype in starts if day == latest}
    return next(iter(winners)) if len(winners) == 1 else AMBIGUOUS


def _exclusion(line: ChargeLine, site: Site, region_of: dict[str, YearRules], currency: str) -> str | None:
    if line.status not in COUNTED_STATUSES:
        return "status"
    if line.day is None:
        return "no-date"
    if line.amount is None:
        return "no-amount"
    if not in_currency(line, currency):
        return "currency"
    if line.institution is None:
        return "no-institution"
    inst = site.institution(line.institution)
    if inst is None:
        return "unknown-institution"
    yr = region_of.get(inst.community)
    if yr is None:
        return "no-region"
    if line.insurance_type is None:
        return "no-insurance-type"
    if line.insurance_type == AMBIGUOUS:
        return "ambiguous-insurance-type"
    if line.insurance_type not in yr.budgets[inst.community]:
        return "unbudgeted-type"
    if yr.basis == "fund_share" and line.fund_share is None:
        return "no-fund-share"
    return None


def _community_report(name: str, yr: YearRules, tally: _Community, rules: SettlementRules) -> dict[str, Any]:
    settlements = []
    for itype, budget in sorted(yr.budgets[name].items()):
        t = tally.by_type.get(itype) or _Tally()
        outcome = settle(budget, t.spending, yr.prepayment, yr.overspend, yr.surplus)
        settlements.append({"insurance_type": itype, "name": rules.insurance_types.get(itype, itype),
                            "lines": t.lines, "charged": fen(t.amount), **outcome.as_json()})
    total, primary = fen(tally.total), fen(tally.primary)
    # shown to the hundredth of a percent, rounded down, and met when the exact share is at least the
    # minimum: 159.99 of 1000.00 (15.999 %) rounded half up showed 16 % and "met" a 16 % minimum
    share = (primary / total).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR) if total else None
    pc = yr.primary_care
    return {
        "community": name,
        "settlements": settlements,
        "totals": {key: sum((s[key] for s in settlements), ZERO)
                   for key in ("budget", "spending", "prepaid", "fund_pays", "balance")},
        "primary_care": {
            "spending": primary, "of": total, "share": share, "min_share": pc.min_share,
            "met": total > 0 and primary >= pc.min_share * total,
            "label": (f"spending at primary institutions: {pct(share)} of {total} (at least {pct(pc.min_share)})"
                      if share is not None else "no spending counted"),
        },
    }


_WHO_PAYS = {"fund-pays": "the fund pays the community", "community-returns": "the community returns to the fund",
             "settled": "nothing further"}


def _year_end_lines(settlements: list[dict[str, Any]], net: Decimal) -> list[str]:
    """Each settlement's year-end, fund by fund: each insurance type is its own fund (职工医保 and
    居民医保 are separate pools), so who pays whom is said per fund. Their sum is printed only as a
    net, said to be one: "year-end 3110.00" had read as a payment, while the residents' fund pays
    3600.00 and 490.00 goes back to the employees' fund -- no fund pays 3110.00."""
    out = ["  year-end by fund:"]
    for s in settlements:
        amount = "" if s["direction"] == "settled" else f" {abs(s['balance'])}"
        out.append(f"    {s['insurance_type']} ({s['name']}): {_WHO_PAYS[s['direction']]}{amount}")
    if len(settlements) > 1:
        out.append(f"    (net of the funds' year-ends {net}: an arithmetic net, paid by no fund)")
    return out


def to_text(report: dict[str, Any]) -> str:
    """The CLI's rendering: every step of every settlement, one line each."""
    cur = report["currency"]
    out = [f"Budget settlement {report['year']} ({report['rules']})"]
    for region in report["regions"]:
        out.append(f"\nregion {region['region']} {region['name']}  (spending = {region['basis']})")
        for c in region["communities"]:
            out.append(f"\n community {c['community']}")
            for s in c["settlements"]:
                out.append(f"  {s['insurance_type']} {s['name']}: {s['lines']} charge lines, {cur} {s['charged']} charged")
                for step in s["steps"]:
                    extra = f"  ({step['share']} × {step['of']})" if "share" in step and "of" in step else ""
                    out.append(f"    {step['label']:<64} {step['amount']:>16}{extra}")
            pc = c["primary_care"]
            out.append(f"  {pc['label']}: {'met' if pc['met'] else 'NOT met'}")
            t = c["totals"]
            out.append(f"  totals: budget {t['budget']}  spending {t['spending']}  prepaid {t['prepaid']}  "
                       f"fund pays {t['fund_pays']}")
            out.extend(_year_end_lines(c["settlements"], t["balance"]))
    ch = report["charges"]
    out.append(f"\n{ch['counted']} charge lines counted")
    for ex in ch["excluded"]:
        out.append(f"  not counted: {ex['lines']} lines, {cur} {ex['amount']}: {ex['why']}")
    return "\n".join(out) + "\n"
