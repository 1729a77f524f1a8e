"""The decision of DOMAIN.md, as a pure function over plain facts.

A prior result R is recognisable for a new order O when all hold: same person; same recognition
item; R is final; R's institution had QC passed for that item on R's date; O's date minus R's
date is within the item's window; the item's scope covers both institutions. Nothing here reads
storage: the service gathers the candidates (one indexed range query) and asks this module.

``decide`` then says what a repeat means for payment under the payer's policy (policy.yaml): not
payable, a justified re-test, self-pay, a reason the records contradict, or — when the prior result
is recognisable only through a wider HR scope or the grades make recognition optional — a repeat
that counts for the recognition rate with nothing at stake.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TypeVar

from engine.recognition.rules import (
    CHECK_AGE,
    CHECK_HELD,
    CHECK_QC,
    COMMUNITY,
    PAYABLE,
    SELF_PAY,
    RecognitionItem,
    Rules,
)

# Statuses of a result that is final: DiagnosticReport/Observation final, amended, corrected,
# appended (a correction replaces the earlier version in place, so the stored status is the one
# that counts); ImagingStudy "available". Preliminary, registered, partial, cancelled,
# entered-in-error and unknown never are.
FINAL_STATUSES = frozenset({"final", "amended", "corrected", "appended", "available"})

# When several resources of one institution describe the same test on the same day (a report, its
# observations, the imaging study), the report stands for them (``entry_rank``).
_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}


def entry_rank(ref: str) -> tuple[int, str]:
    """A result's place among the entries of one test: by kind -- the report first, then the imaging
    study, then an observation -- then by reference. The one ranking of the decision (which entry of
    a prior test stands for it), of the flag's repeated result (``repeats``: the test's first entry)
    and of the evidence (``pairs``: the entry a side shows), so that the three always agree."""
    return _PREFERENCE.get(ref.split("/", 1)[0], 9), ref


@dataclass(frozen=True)
class PriorResult:
    """What the decision needs of a stored result (DiagnosticReport, Observation, ImagingStudy)."""

    ref: str  # "DiagnosticReport/abc"
    person: str | None  # validated national resident ID (NNCHN) of the subject
    item: str
    institution: str
    day: date  # the result's date, at the issuing institution
    status: str
    patient: str | None = None  # "Patient/..." at the issuing institution
    order: str | None = None  # "ServiceRequest/..." the result fulfils, if known
    analytes: tuple[str, ...] = ()  # analytes of a panel item it reports; () = the whole panel
    held: str | None = None  # instant huren has held it final since (ISO, UTC)
    # instant an ID-number correction made it ``person``'s (ISO, UTC); None: theirs since it was held
    owned: str | None = None
    # whose it has been, from when: ((person, since), ...) oldest first, since None for the first
    # (``ResultIndex.set_person``); () when no correction ever moved it
    owners: tuple[tuple[str | None, str | None], ...] = ()
    # its effective time, when sent with a time of day (UTC, ``facts.local_instant``); None for a
    # date alone, and for an index entry stored before the fifteenth round (read as a date alone)
    at: str | None = None
    # the earliest it can have been taken when ``at`` is a date alone: its own order's time (a
    # sample is taken after it is ordered); None when that is not known either
    since: str | None = None
    # a DiagnosticReport's results ("Observation/..." refs, its ``result``): which entries of its
    # test are its own (``find_recognisable`` judges "names analytes" per report); () when it has
    # none, or for an index entry stored before the twenty-sixth round (payfix26)
    results: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def resource_type(self) -> str:
        return self.ref.split("/", 1)[0]


@dataclass(frozen=True)
class Order:
    """A new order (or, for a result that came without one, the result standing for its order)."""

    person: str | None
    item: str | None
    institution: str
    day: date
    ref: str | None = None  # "ServiceRequest/..."
    patient: str | None = None
    reasons: tuple[str, ...] = ()  # re-test reason codes recorded on the order
    reason_text: str | None = None
    analytes: tuple[str, ...] = ()  # analytes of a panel item ordered on their own; () = the whole panel
    placed: str | None = None  # instant huren first saw the order (ISO, UTC)
    # when it was placed, when sent with a time of day (UTC, ``facts.local_instant``); None: a date alone
    at: str | None = None
    # the latest it can have been placed when ``at`` is a date alone: its own result's time (an
    # order comes before the sample it asks for); None when that is not known either
    by: str | None = None


@dataclass(frozen=True)
class Recognisable:
    result: PriorResult
    item: RecognitionItem
    age_days: int  # order date - result date
    window_left: int  # days the result stays recognisable after the order date
    analytes: frozenset[str] = frozenset()  # what the order repeats of it (panel items)
    scope: str = COMMUNITY  # the scope it is recognisable through: community or an HR scope code
    held: str | None = None  # instant huren first held it final (its test's earliest)

    @property
    def partial(self) -> bool:
        """Only some analytes of the ordered panel repeat this result."""
        return bool(self.item.analytes) and self.analytes != self.item.analyte_set(())


_M = TypeVar("_M")


# Why a candidate is not recognisable (first failing condition, in the order DOMAIN.md lists them).
NOT_SAME_PERSON = "not-same-person"
NOT_SAME_ITEM = "not-same-item"
UNKNOWN_ITEM = "unknown-item"
SAME_ORDER = "same-order"
NOT_FINAL = "not-final"
QC_NOT_PASSED = "qc-not-passed"
AFTER_ORDER = "after-order"
OUTSIDE_WINDOW = "outside-window"
OUT_OF_SCOPE = "out-of-scope"
NOT_THEIRS_YET = "not-theirs-at-order-time"
# why an entry is not part of a prior test at all (another person's, item's or the order's own):
# it says nothing of what that test covered (``find_recognisable``)
_OTHER_TEST = frozenset({NOT_SAME_PERSON, NOT_THEIRS_YET, UNKNOWN_ITEM, NOT_SAME_ITEM, SAME_ORDER})
# why an entry is no result at all (cancelled, preliminary, QC failed): it names no analyte of its report
_NO_RESULT = frozenset({NOT_FINAL, QC_NOT_PASSED})


def assess(order: Order, result: PriorResult, rules: Rules) -> str | None:
    """None when ``result`` is recognisable for ``order``, else why not (one of the constants above)."""
    if not order.person or result.person != order.person:
        return NOT_SAME_PERSON
    if result.owners and order.placed and result.patient != order.patient \
            and owner_at(result.owners, order.placed) != order.person:
        # Moved to this person by an ID-number correction after the order was placed: what was
        # recognisable for the person at order time is what the ordering doctor could see, and
        # the result was then another person's (an order of the record it was filed under, moved
        # with it, saw it all along). An order without ``placed`` is being placed now. A
        # correction reversed gives the result back to the person it was filed under before it,
        # for the orders placed while it was theirs (``owner_at``).
        return NOT_THEIRS_YET
    item = rules.items.get(order.item or "")
    if item is None:
        return UNKNOWN_ITEM
    if result.item != item.code:
        return NOT_SAME_ITEM
    if order.ref is not None and result.order == order.ref:
        return SAME_ORDER
    if not result.final:
        return NOT_FINAL
    if not rules.qc_passed(result.institution, item.code, result.day):
        return QC_NOT_PASSED
    age = (order.day - result.day).days
    if age < 0 or (age == 0 and taken_before(result.at, order.at, since=result.since, by=order.by) is False):
        # the same day: a result not taken before the order was placed, as far as the bounds each
        # side has tell, is not its prior (the later test is the repeat, never the earlier); when
        # they cannot tell, it stays a same-day prior (age 0), as it was
        return AFTER_ORDER
    if age > item.window_days:
        return OUTSIDE_WINDOW
    if not rules.scope_covers(item, result.institution, order.institution, result.day):
        return OUT_OF_SCOPE
    return None


def taken_before(result_at: str | None, order_at: str | None, *, since: str | None = None,
                 by: str | None = None) -> bool | None:
    """Was a result taken before an order of its day was placed? True or False when the times
    tell, None when they cannot. ``result_at``/``order_at``: the times sent (UTC ISO, to the
    precision sent; None: a date alone); ``since``: the earliest the result can have been taken
    (its own order's time), ``by``: the latest the order can have been placed (its own result's).

    One rule for both askers -- ``assess`` when a test is decided (False: not its prior) and the
    re-decision of later tests when a prior arrives (``PriorChanges._recheck_later``: only True
    decides a test again) -- so the answer never depends on which message reached huren first.
    Equal times are not "before": which came first is not known, and a payment flag is raised
    only when it is. With bounds the two sides of a pair cannot both be "before" the other, so a
    same-day pair is never flagged both ways (a day-alone order whose own result was taken at
    09:00 was placed by 09:00: a 15:00 result is not its prior)."""
    if order_at and by and by < order_at:
        # an order sent as placed after its own result was taken (an ORC-9 entered late): it was
        # placed by then -- else a pair of such tests is each other's prior, both flagged
        order_at = by
    if result_at and order_at:
        return result_at < order_at
    earliest, latest = result_at or since, order_at or by
    if earliest and latest and earliest >= latest:
        return False
    return None


def owner_at(owners: Sequence[tuple[str | None, str | None]], instant: str) -> str | None:
    """Whose a result was at ``instant`` by its ownership history (``PriorResult.owners``): the
    person of the last change made at or before it (the first entry, ``since`` None, counts from
    the beginning).

    Why a history and not the last change alone: an ID-number correction that is itself
    reversed (HOSPA files a blood count under another number by mistake, then puts it back)
    gave the result back only from the reversal, so the first person's orders placed while it
    was filed under them -- whose doctors were shown it -- lost their flags and their place in
    the recognition rate for good."""
    person: str | None = None
    for who, since in owners:
        if since is not None and since > instant:
            break
        person = who
    return person


# what ``find_recognisable`` hands back of each prior test when asked (``sources``), keyed by the
# match's result: its recognisable entries naming analytes (its ALT, AST... results) and its entries
# that report the panel as a whole -- what the evidence pairs each repeated analyte with (``pairs``)
Sources = dict[str, tuple[Sequence[PriorResult], Sequence[PriorResult]]]


def find_recognisable(order: Order, candidates: Iterable[PriorResult], rules: Rules,
                      sources: Sources | None = None) -> list[Recognisable]:
    """Every recognisable prior result for ``order``, newest first, one per test.

    Several resources of one institution for the same item on the same day (the report and its
    observations) count once: the DiagnosticReport stands for them, then the ImagingStudy; what they
    report together (their analytes) must overlap what the order asks for.

    What a panel test covers is what it has recognisable results for (DOMAIN.md: "Items are
    defined down to the analyte; a panel is a set of analytes"): when any entry of the test names
    analytes (the report's Observations of ALT, AST...), the test covers only the analytes of
    its recognisable such entries (final, QC passed), and a report of the panel as a whole adds
    none -- a liver panel report carrying only ALT and AST results covered all six analytes, so
    a TBIL ordered after it was reminded and flagged, and a whole-panel repeat cost the panel's
    60.00 where ALT+AST (10.00) were repeated (probepay26). A test none of whose entries names
    an analyte (a report whose results are coded in no analyte's LOINC) still covers the whole
    panel, as before.

    ``sources``: filled, when given, with each match's entries (``Sources``) for the flag's evidence
    pairs (``Repeats._decide_repeat``). Asked for, not carried on every match: the order-time
    check builds a match per prior test and never reads them (two more fields of a frozen match
    were 6 % of its instructions, bench/evidence33_match.py).
    """
    item = rules.items.get(order.item or "")
    if item is None:
        return []
    best: dict[tuple[str, str, date], PriorResult] = {}
    covered: dict[tuple[str, str, date], set[str]] = {}
    candidates = list(candidates)
    # which report an entry is part of: a report is its own, an Observation the report listing it
    # (``PriorResult.results``); None when not known (no report lists it, or entries stored before
    # the reports carried their results)
    report_of = {ref: r.ref for r in candidates for ref in r.results}
    # reports (key, report) with an entry naming analytes that is a result (final, QC passed:
    # recognisable or not for this order's time, window or scope): their panel-level entries cover
    # nothing. A report none of whose results names an analyte is the whole panel, even beside a
    # report of the same test and day that names some (rvrvpay26); a cancelled or preliminary
    # entry names nothing.
    named: set[tuple[tuple[str, str, date], str | None]] = set()
    panel: dict[tuple[str, str, date], list[PriorResult]] = {}  # recognisable entries of the whole panel
    held: dict[tuple[str, str, date], str] = {}
    entries: dict[tuple[str, str, date], list[PriorResult]] = {}  # recognisable entries naming analytes
    for r in candidates:
        why = assess(order, r, rules)
        key = (r.institution, r.item, r.day)
        if why is not None:
            if r.analytes and why not in _OTHER_TEST and why not in _NO_RESULT:
                named.add((key, r.ref if r.results else report_of.get(r.ref)))
            continue
        if r.analytes:
            named.add((key, r.ref if r.results else report_of.get(r.ref)))
            covered.setdefault(key, set()).update(item.analyte_set(r.analytes))
            if sources is not None:
                entries.setdefault(key, []).append(r)
        else:
            covered.setdefault(key, set())
            panel.setdefault(key, []).append(r)
        if r.held and (key not in held or r.held < held[key]):
            held[key] = r.held
        current = best.get(key)
        if current is None or entry_rank(r.ref) < entry_rank(current.ref):
            best[key] = r
    wanted = item.analyte_set(order.analytes)
    out = []
    for key, r in best.items():
        whole = any(_whole(key, p, named, report_of) for p in panel.get(key, ()))
        overlap = (item.analyte_set(()) if whole else frozenset(covered[key])) & wanted
        if item.analytes and not overlap:
            continue  # the same panel, but none of the analytes asked for
        age = (order.day - r.day).days
        out.append(Recognisable(r, item, age, item.window_days - age, overlap,
                                rules.scope_via(item, r.institution, order.institution, r.day) or COMMUNITY,
                                held.get(key)))
        if sources is not None:
            sources[r.ref] = (entries.get(key, ()), [p for p in panel.get(key, ()) if _whole(key, p, named, report_of)])
    out.sort(key=lambda m: (-m.result.day.toordinal(), m.result.ref))
    return out


def _whole(key: tuple[str, str, date], entry: PriorResult, named: set[tuple[tuple[str, str, date], str | None]],
           report_of: dict[str, str]) -> bool:
    """Does a recognisable panel-level ``entry`` (a report of the panel as a whole) cover the whole
    panel? Yes unless its own report names analytes. Its report: itself when it lists its results,
    else the report listing it; a report not known to list its results (an entry stored before
    they were kept, or listing none) is named by any entry of its test whose report is not known
    either, as before."""
    return (key, entry.ref if entry.results else report_of.get(entry.ref)) not in named


# What a repeat means for payment (flag statuses).
NOT_PAYABLE = "flagged"  # suspected duplicate test, not payable (money at stake)
JUSTIFIED = "justified"  # re-test with a reason the payer accepts: payable, reported
SELF_PAY_STATUS = "self_pay"  # allowed, not payable by the fund: the patient pays
REPORTED = "reported"  # recognisable only through a wider scope, or optional by grade: counts for the rate
CONTRADICTED = "reason contradicted by records"


@dataclass(frozen=True)
class PaymentDecision:
    status: str  # NOT_PAYABLE | JUSTIFIED | SELF_PAY_STATUS | REPORTED
    reason: str | None = None  # the decisive re-test reason
    effect: str | None = None  # its effect under the payer's policy
    contradicted: str | None = None  # why huren's records contradict the reason (the flag stays)
    basis: str = COMMUNITY  # scope of non-payment it falls in, or why it is only reported

    @property
    def at_stake(self) -> bool:
        return self.status == NOT_PAYABLE


# Better outcomes for the ordering institution first: the decisive reason is the most favourable one.
_RANK = {JUSTIFIED: 0, SELF_PAY_STATUS: 1, NOT_PAYABLE: 2}


def decide(order: Order, match: Recognisable, rules: Rules) -> PaymentDecision:
    """The payment effect of repeating ``match`` with ``order``, under the ordering institution's payer.

    Non-payment covers repeats inside the policy's scopes (``community`` by default) that the grades
    make mandatory; any other recognisable repeat is only reported. Inside it, the reason the doctor
    recorded at order time decides: payable, self-pay, or a claim checked against huren's records
    (R08 age, R09 QC, R98 availability) that, when contradicted, leaves the flag in place, marked.
    """
    policy = rules.policy_for(order.institution)
    prior = match.result
    if match.scope not in policy.not_payable_scopes:
        return PaymentDecision(REPORTED, basis=match.scope)
    if not rules.must_recognise(match.item.code, order.institution, prior.institution):
        return PaymentDecision(REPORTED, basis="optional")
    best = PaymentDecision(NOT_PAYABLE)
    for code in order.reasons:
        known = rules.reasons.get(code)
        effect = policy.reasons.get(code)
        if known is None or effect is None or (known.text_required and not (order.reason_text or "").strip()):
            continue
        outcome = _apply(effect, code, order, match, rules)
        if best.reason is None or _RANK[outcome.status] < _RANK[best.status]:
            best = outcome
    return replace(best, basis=match.scope)


def decisive(decisions: Sequence[tuple[PaymentDecision, _M]]) -> tuple[PaymentDecision, _M]:
    """The decision that stands for a repeat with several recognisable priors (``decisions``:
    each prior's, newest first; or, for a test two orders fulfil, each order's, the earliest
    first): the least favourable to the ordering institution among those with something to
    decide (not only reported), the first on a tie; the first when every one is only reported.

    Why not simply the first: a reason is a claim about the priors the doctor could have used,
    and it may hold against one and not another. R98 "outside record not accessible" held
    against a newer prior huren received only after the order was placed, while an older one,
    recognisable and held before, contradicted it: the repeat was "justified" and paid. R08 (the
    prior too old) is contradicted by the newest prior first, so it is decided as before. And
    a test two orders fulfil on one day was decided by whichever result id sorted first, so a
    later order's R04 made the earlier, reasonless repeat payable."""
    open_ = [(d, m) for d, m in decisions if d.status != REPORTED]
    if not open_:
        return decisions[0]
    worst = max(_RANK[d.status] for d, _ in open_)
    return next((d, m) for d, m in open_ if _RANK[d.status] == worst)


def _apply(effect: str, code: str, order: Order, match: Recognisable, rules: Rules) -> PaymentDecision:
    prior, item = match.result, match.item
    if effect == PAYABLE:
        return PaymentDecision(JUSTIFIED, code, effect)
    if effect == SELF_PAY:
        return PaymentDecision(SELF_PAY_STATUS, code, effect)
    if effect == CHECK_AGE:
        limit = item.window_days * rules.policy_for(order.institution).age_fraction
        if match.age_days > limit:
            return PaymentDecision(JUSTIFIED, code, effect)
        return PaymentDecision(NOT_PAYABLE, code, effect, f"{CONTRADICTED}: the prior result was {match.age_days} "
                               f"days old, not older than {limit:g} of the item's {item.window_days}-day window")
    if effect == CHECK_QC:
        if rules.qc_passed(prior.institution, item.code, prior.day):
            return PaymentDecision(NOT_PAYABLE, code, effect, f"{CONTRADICTED}: {prior.institution} had passed "
                                   f"quality control for {item.code} on {prior.day.isoformat()}")
        return PaymentDecision(JUSTIFIED, code, effect)
    if effect == CHECK_HELD:
        if match.held and order.placed and match.held < order.placed:
            return PaymentDecision(NOT_PAYABLE, code, effect, f"{CONTRADICTED}: huren held {prior.ref} since "
                                   f"{match.held}, before the order was placed ({order.placed})")
        return PaymentDecision(JUSTIFIED, code, effect)
    raise ValueError(f"unknown reason effect {effect!r}")  # policy.json allows no other


def order_time_effect(order: Order, rules: Rules) -> tuple[str | None, str | None]:
    """The reason recorded on an order and its effect under the payer's policy, before any match is
    known (kept with the order-time check for the reports): the most favourable reason that counts."""
    policy = rules.policy_for(order.institution)
    ranked = {PAYABLE: 0, CHECK_AGE: 1, CHECK_QC: 1, CHECK_HELD: 1, SELF_PAY: 2}
    chosen: tuple[str | None, str | None] = (None, None)
    for code in order.reasons:
        known, effect = rules.reasons.get(code), policy.reasons.get(code)
        if known is None or effect is None or (known.text_required and not (order.reason_text or "").strip()):
            continue
        if chosen[1] is None or ranked[effect] < ranked[chosen[1]]:
            chosen = (code, effect)
    return chosen
