"""Direction of a referral (by institution grade) and the deductible its admission pays.

Reform texts: an upward referral admission pays only the difference between the two hospitals'
deductibles; a downward one pays none. Amounts are ``Decimal`` from the data file's exact text, so
a report's sums are exact in yuan and fen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.fhirjson import number
from engine.referral.rules import DeductibleRules

# the extension that shows a referral's deductible: on the referral ServiceRequest (server-computed,
# like the HR mark) and on the Composition of its pre-arrival summary
URL = "urn:huren:fhir:extension:referral-deductible"
# higher rank = higher level of care; 基层 (primary) reads as 一级
GRADE_RANK = {"三级": 3, "二级": 2, "一级": 1, "基层": 1}
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Deductible:
    direction: str  # upward | downward | lateral | unknown
    sending: Decimal | None  # the sending institution's deductible
    receiving: Decimal | None
    due: Decimal | None  # what the referred admission pays; None when a grade is unknown
    rule: str | None  # difference | none | full


def grade_of(code: str | None, rules: DeductibleRules, site_grade: Callable[[str], str | None]) -> str | None:
    """The site's institutions file says an institution's grade; the deductibles file fills gaps."""
    if not code:
        return None
    return site_grade(code) or rules.grade_of.get(code)


def direction(from_grade: str | None, to_grade: str | None) -> str:
    a, b = GRADE_RANK.get(from_grade or ""), GRADE_RANK.get(to_grade or "")
    if a is None or b is None:
        return "unknown"
    return "upward" if b > a else "downward" if b < a else "lateral"


def amount(code: str | None, grade: str | None, rules: DeductibleRules) -> Decimal | None:
    if code and code in rules.institutions:
        return rules.institutions[code]
    return rules.grades.get(grade or "")


def compute(from_code: str | None, to_code: str | None, from_grade: str | None, to_grade: str | None,
            rules: DeductibleRules) -> Deductible:
    way = direction(from_grade, to_grade)
    sending, receiving = amount(from_code, from_grade, rules), amount(to_code, to_grade, rules)
    rule = rules.pays.get(way)
    due: Decimal | None
    if rule == "none":
        due = ZERO
    elif receiving is None or rule is None:
        due = None
    elif rule == "full":
        due = receiving
    else:  # difference
        due = None if sending is None else max(ZERO, receiving - sending)
    return Deductible(way, sending, receiving, due.quantize(ZERO) if due is not None else None, rule)


def extension(due: Deductible) -> dict[str, Any]:
    """``URL`` with sub-extensions direction, rule, and the sending, receiving and due amounts
    (``valueMoney`` in CNY, the exact decimal text); an amount that is unknown is left out."""
    parts: list[dict[str, Any]] = [{"url": "direction", "valueCode": due.direction}]
    if due.rule:
        parts.append({"url": "rule", "valueCode": due.rule})
    for name, value in (("sending", due.sending), ("receiving", due.receiving), ("due", due.due)):
        if value is not None:
            # a FhirDecimal keeps the exact text ("600.00") through storage, hashing and JSON
            parts.append({"url": name, "valueMoney": {"value": number(str(value)), "currency": "CNY"}})
    return {"url": URL, "extension": parts}
