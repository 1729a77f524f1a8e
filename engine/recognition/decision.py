"""The decision of DOMAIN.md, as a pure function over plain facts.

A prior result R is recognisable for a new order O when all hold: same person; same recognition
item; R is final; R's institution had QC passed for that item on R's date; O's date minus R's
date is within the item's window; the item's scope covers both institutions. Nothing here reads
storage: the service gathers the candidates (one indexed range query) and asks this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from engine.recognition.rules import RecognitionItem, Rules

# Statuses of a result that is final: DiagnosticReport/Observation final, amended, corrected,
# appended (a correction replaces the earlier version in place, so the stored status is the one
# that counts); ImagingStudy "available". Preliminary, registered, partial, cancelled,
# entered-in-error and unknown never are.
FINAL_STATUSES = frozenset({"final", "amended", "corrected", "appended", "available"})

# When several resources of one institution describe the same test on the same day (a report, its
# observations, the imaging study), the report stands for them.
_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}


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


@dataclass(frozen=True)
class Recognisable:
    result: PriorResult
    item: RecognitionItem
    age_days: int  # order date - result date
    window_left: int  # days the result stays recognisable after the order date


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


def assess(order: Order, result: PriorResult, rules: Rules) -> str | None:
    """None when ``result`` is recognisable for ``order``, else why not (one of the constants above)."""
    if not order.person or result.person != order.person:
        return NOT_SAME_PERSON
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
    if age < 0:
        return AFTER_ORDER
    if age > item.window_days:
        return OUTSIDE_WINDOW
    if not rules.scope_covers(item, result.institution, order.institution, result.day):
        return OUT_OF_SCOPE
    return None


def find_recognisable(order: Order, candidates: Iterable[PriorResult], rules: Rules) -> list[Recognisable]:
    """Every recognisable prior result for ``order``, newest first, one per test.

    Several resources of one institution for the same item on the same day (the report and its
    observations) count once: the DiagnosticReport stands for them, then the ImagingStudy.
    """
    item = rules.items.get(order.item or "")
    if item is None:
        return []
    best: dict[tuple[str, str, date], PriorResult] = {}
    for r in candidates:
        if assess(order, r, rules) is not None:
            continue
        key = (r.institution, r.item, r.day)
        held = best.get(key)
        if held is None or (_PREFERENCE.get(r.resource_type, 9), r.ref) < (_PREFERENCE.get(held.resource_type, 9), held.ref):
            best[key] = r
    out = [
        Recognisable(r, item, (order.day - r.day).days, item.window_days - (order.day - r.day).days)
        for r in best.values()
    ]
    out.sort(key=lambda m: (-m.result.day.toordinal(), m.result.ref))
    return out


def reason_effect(order: Order, rules: Rules) -> tuple[str | None, str | None]:
    """The decisive re-test reason on an order and its effect: ``no_flag`` wins over ``justified``.

    A reason that needs text (R06) and has none does not count: the doctor has not justified it.
    Unknown codes are ignored (reported by the caller as a warning).
    """
    chosen: tuple[str | None, str | None] = (None, None)
    for code in order.reasons:
        reason = rules.reasons.get(code)
        if reason is None or (reason.text_required and not (order.reason_text or "").strip()):
            continue
        if reason.effect == "no_flag":
            return code, "no_flag"
        if chosen[0] is None:
            chosen = (code, reason.effect)
    return chosen
