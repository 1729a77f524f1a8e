"""The settlement arithmetic: prepayment, tiers accumulated segment by segment, 多还少补.

Pure functions over ``decimal.Decimal``: no store, no floats. Each money figure is rounded to the
fen (0.01 yuan) with ROUND_HALF_UP where it is produced, and that rounded figure is the one shown
and added up, so every step of the shown settlement adds up exactly.

Tiers are accumulated segment by segment (分段累计): an overspend of 12 % of the budget is split
into its part up to 5 %, its part from 5 % to 10 % and its part above 10 %, and each part is shared
at its own tier's rate (not the whole 12 % at the top tier's rate). Because every tier applies to
its own segment only, the result is continuous at the boundaries: exactly 5 % over lies wholly
in the first segment, and a cent more puts that cent in the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.insurance.rules import Prepayment, Tier

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def fen(value: Decimal) -> Decimal:
    """Money rounded to the fen, half up (0.005 → 0.01)."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def stored_fen(value: Any) -> Decimal:
    """An amount as a store keeps it, to the fen: decimal text (``"10.00"``, how recognition stores
    a flag's price and a tally's money since moneyleft27), or a number an earlier release stored
    (a float read by its shortest text, ``30.1`` → 30.10, never its binary value). None, "" or
    anything not a finite number: 0.00.

    Why text, not integer fen: a row of an earlier release holds yuan as a float (30.0); an
    integer in the same field could not be told from it (3000 fen or 3000 yuan?), and text is
    read back exactly by both backends (SQLite JSON, Mongo)."""
    if value is None or isinstance(value, bool) or value == "":
        return ZERO
    try:
        out = value if isinstance(value, Decimal) else Decimal(str(value))
    except (ArithmeticError, ValueError):
        return ZERO
    return fen(out) if out.is_finite() else ZERO


def fen_text(value: Decimal) -> str:
    """The stored form of an amount: its decimal text to the fen (``"0.10"``)."""
    return str(fen(value))


def pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f} %"


@dataclass(frozen=True)
class Step:
    """One labelled line of a settlement: what was computed, from what, and the amount."""

    key: str
    label: str
    amount: Decimal
    share: Decimal | None = None  # the rate applied, when the step applies one
    base: Decimal | None = None  # the amount the rate was applied to

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.key, "label": self.label, "amount": self.amount}
        if self.share is not None:
            out["share"] = self.share
        if self.base is not None:
            out["of"] = self.base
        return out


@dataclass(frozen=True)
class Segment:
    low: Decimal  # fraction of the budget where the segment starts
    high: Decimal | None  # where it ends (None: open)
    part: Decimal  # the money of the excess inside this segment
    share: Decimal  # the tier's share
    amount: Decimal  # fen(part × share)

    @property
    def span(self) -> str:
        return f"{pct(self.low)}–{pct(self.high)}" if self.high is not None else f"above {pct(self.low)}"


def segments(excess: Decimal, budget: Decimal, tiers: Sequence[Tier]) -> list[Segment]:
    """``excess`` (≥ 0, money beyond or below the budget) split over the tiers' segments; segment
    bounds are ``up_to × budget`` rounded to the fen. Segments the excess does not reach are kept
    with a zero part, so a report shows every tier."""
    if excess < 0:
        raise ValueError("the excess must not be negative")
    out: list[Segment] = []
    low, low_money, left = Decimal(0), ZERO, excess
    for tier in tiers:
        high_money = fen(tier.up_to * budget) if tier.up_to is not None else None
        width = high_money - low_money if high_money is not None else left
        part = min(left, width)
        out.append(Segment(low, tier.up_to, fen(part), tier.share, fen(part * tier.share)))
        left -= part
        if tier.up_to is not None:
            low, low_money = tier.up_to, high_money  # type: ignore[assignment]
    return out


def prepayment_steps(budget: Decimal, rules: Prepayment) -> tuple[list[Step], Decimal]:
    """Monthly prepayment (``monthly`` × budget each month for ``months`` months), capped at
    ``ceiling`` × budget for the year."""
    monthly = fen(budget * rules.monthly)
    ceiling = fen(budget * rules.ceiling)
    paid = min(monthly * rules.months, ceiling)
    steps = [
        Step("prepayment-monthly", f"monthly prepayment: {pct(rules.monthly)} of the budget", monthly,
             rules.monthly, budget),
        Step("prepayment-ceiling", f"prepayment ceiling: {pct(rules.ceiling)} of the budget", ceiling,
             rules.ceiling, budget),
        Step("prepaid", f"prepaid in {rules.months} months (at most the ceiling)", paid),
    ]
    return steps, paid


@dataclass(frozen=True)
class Outcome:
    """What the year comes to for one community and insurance type."""

    budget: Decimal
    spending: Decimal
    prepaid: Decimal
    fund_pays: Decimal  # the fund's payment for the year (before prepayments)
    balance: Decimal  # fund_pays − prepaid: > 0 the fund still owes, < 0 it claws back
    overspend: Decimal
    fund_share_of_overspend: Decimal
    community_bears: Decimal
    surplus: Decimal
    retained: Decimal
    returned: Decimal
    steps: tuple[Step, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "budget": self.budget, "spending": self.spending, "prepaid": self.prepaid, "fund_pays": self.fund_pays,
            "balance": self.balance, "direction": direction(self.balance),
            "overspend": self.overspend, "fund_share_of_overspend": self.fund_share_of_overspend,
            "community_bears": self.community_bears, "surplus": self.surplus, "retained": self.retained,
            "returned_to_fund": self.returned, "steps": [s.as_json() for s in self.steps],
        }


def direction(balance: Decimal) -> str:
    if balance > 0:
        return "fund-pays"  # 少补: the fund pays the rest
    if balance < 0:
        return "community-returns"  # 多还: the community returns the excess prepayment
    return "settled"


def settle(budget: Decimal, spending: Decimal, prepayment: Prepayment, overspend: Sequence[Tier],
           surplus: Sequence[Tier]) -> Outcome:
    """The year-end settlement of one budget, every step shown.

    Overspend (spending above budget): the fund pays the budget plus its tiers' share of the
    overspend; the community bears the rest. Surplus (spending below budget): the fund pays the
    spending plus the part of the surplus the community keeps; the rest stays with the fund. The
    year-end balance is that payment minus what was prepaid.
    """
    budget, spending = fen(budget), fen(spending)
    steps: list[Step] = [Step("budget", "annual budget", budget), Step("spending", "spending counted", spending)]
    pre_steps, prepaid = prepayment_steps(budget, prepayment)
    steps += pre_steps
    over = max(spending - budget, ZERO)
    under = max(budget - spending, ZERO)
    fund_over = community_bears = retained = returned = ZERO
    if over > 0:
        fund_over = _tiered(steps, "overspend", over, budget, overspend, "the fund pays")
        community_bears = over - fund_over
        steps.append(Step("fund-share-of-overspend", "the fund's share of the overspend", fund_over))
        steps.append(Step("community-bears", "the community bears", community_bears))
        fund_pays = budget + fund_over
        steps.append(Step("fund-pays", "the fund pays for the year: budget + its share of the overspend", fund_pays))
    else:
        retained = _tiered(steps, "surplus", under, budget, surplus, "the community keeps")
        returned = under - retained
        steps.append(Step("retained", "the community keeps (结余留用)", retained))
        steps.append(Step("returned-to-fund", "stays with the fund", returned))
        fund_pays = spending + retained
        steps.append(Step("fund-pays", "the fund pays for the year: spending + the surplus kept", fund_pays))
    balance = fund_pays - prepaid
    label = {"fund-pays": "year-end settlement (少补): the fund pays the community",
             "community-returns": "year-end settlement (多还): the community returns",
             "settled": "year-end settlement: nothing further"}[direction(balance)]
    steps.append(Step("year-end", label, balance))
    return Outcome(budget, spending, prepaid, fund_pays, balance, over, fund_over, community_bears, under,
                   retained, returned, tuple(steps))


def _tiered(steps: list[Step], kind: str, excess: Decimal, budget: Decimal, tiers: Sequence[Tier],
            who: str) -> Decimal:
    """Append the ``kind`` (overspend / surplus) step and one step per tier segment; return the
    sum of the segments' shares."""
    steps.append(Step(kind, f"{kind}: {pct(_ratio(excess, budget))} of the budget", excess, _ratio(excess, budget),
                      budget))
    total = ZERO
    for seg in segments(excess, budget, tiers):
        steps.append(Step(f"{kind}-tier", f"{kind} {seg.span}: {who} {pct(seg.share)}", seg.amount, seg.share, seg.part))
        total += seg.amount
    return total


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    """A share shown to the hundredth of a percent (0.123456 → 0.1235); the arithmetic never
    uses it, the segments are cut in money."""
    return (part / whole).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
