"""The settlement arithmetic on worked examples, at every tier boundary, and the rules file's checks."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.insurance import rules as settlement_rules
from engine.insurance.rules import Prepayment, Tier
from engine.insurance.tiers import fen, segments, settle
from mappings.site import DEFAULTS_DIR, SiteError

OVER = (Tier(D("0.05"), D("0.70")), Tier(D("0.10"), D("0.60")), Tier(None, D("0")))
SURPLUS = (Tier(D("0.10"), D("0.80")), Tier(D("0.15"), D("0.60")), Tier(None, D("0")))
PRE = Prepayment(D("0.60"), D("0.05"), 12)
B = D("1000000.00")

SHIPPED = DEFAULTS_DIR / "insurance" / "settlement.yaml"
REQUIRED_LINE = "# fund_pays: required — the reform text's figure for overspend below 5 %"


def site_with_rules(folder: Path, below_5: str = "0.70", text: str | None = None) -> Path:
    """A HUREN_SITE folder whose insurance/settlement.yaml is the shipped one with the required share set."""
    (folder / "insurance").mkdir(parents=True, exist_ok=True)
    body = text if text is not None else SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, f"fund_pays: {below_5}")
    (folder / "insurance" / "settlement.yaml").write_text(body, "utf-8")
    return folder


def steps(outcome, key):
    return [s.amount for s in outcome.steps if s.key == key]


@pytest.mark.parametrize(
    ("spending", "fund_share", "tiers", "bears"),
    [
        ("1000000.00", "0.00", None, "0.00"),  # 0 %: neither over nor under
        ("1050000.00", "35000.00", ["35000.00", "0.00", "0.00"], "15000.00"),  # exactly 5 %: all in the first tier
        ("1050000.01", "35000.01", ["35000.00", "0.01", "0.00"], "15000.00"),  # a fen past 5 %: 0.006 → 0.01
        ("1100000.00", "65000.00", ["35000.00", "30000.00", "0.00"], "35000.00"),  # exactly 10 %
        ("1100000.01", "65000.00", ["35000.00", "30000.00", "0.00"], "35000.01"),  # a fen past 10 %: fund pays nothing
        ("1120000.00", "65000.00", ["35000.00", "30000.00", "0.00"], "55000.00"),  # 12 %
        ("10000000.00", "65000.00", ["35000.00", "30000.00", "0.00"], "8935000.00"),  # huge: 900 % over
    ],
)
def test_overspend_tiers_accumulate_segment_by_segment(spending, fund_share, tiers, bears):
    out = settle(B, D(spending), PRE, OVER, SURPLUS)
    assert out.fund_share_of_overspend == D(fund_share)
    assert out.community_bears == D(bears)
    assert out.overspend + out.budget == D(spending) or out.overspend == 0
    if tiers is not None:
        assert [str(a) for a in steps(out, "overspend-tier")] == tiers
        assert out.fund_pays == B + D(fund_share)
    assert out.prepaid == D("600000.00")
    assert out.balance == out.fund_pays - D("600000.00")
    assert out.overspend == out.fund_share_of_overspend + out.community_bears


@pytest.mark.parametrize(
    ("spending", "retained", "tiers", "returned"),
    [
        ("1000000.00", "0.00", ["0.00", "0.00", "0.00"], "0.00"),  # 0 %
        ("950000.00", "40000.00", ["40000.00", "0.00", "0.00"], "10000.00"),  # 5 % under
        ("900000.00", "80000.00", ["80000.00", "0.00", "0.00"], "20000.00"),  # exactly 10 %
        ("899999.99", "80000.01", ["80000.00", "0.01", "0.00"], "20000.00"),  # a fen past 10 %: 0.006 → 0.01
        ("850000.00", "110000.00", ["80000.00", "30000.00", "0.00"], "40000.00"),  # exactly 15 %
        ("849999.99", "110000.00", ["80000.00", "30000.00", "0.00"], "40000.01"),  # a fen past 15 %: returns
        ("0.00", "110000.00", ["80000.00", "30000.00", "0.00"], "890000.00"),  # nothing spent
    ],
)
def test_surplus_retained_by_tiers(spending, retained, tiers, returned):
    out = settle(B, D(spending), PRE, OVER, SURPLUS)
    assert [str(a) for a in steps(out, "surplus-tier")] == tiers
    assert out.retained == D(retained)
    assert out.returned == D(returned)
    assert out.fund_pays == D(spending) + D(retained)
    assert out.surplus == out.retained + out.returned


def test_year_end_settlement_pays_or_claws_back():
    under = settle(B, D("0.00"), PRE, OVER, SURPLUS)
    assert under.balance == D("-490000.00")  # paid 110000 for the year, prepaid 600000: 多还
    assert steps(under, "year-end") == [D("-490000.00")]
    assert "多还" in under.steps[-1].label
    over = settle(B, D("1100000.00"), PRE, OVER, SURPLUS)
    assert over.balance == D("465000.00")  # 1065000 − 600000: 少补
    assert "少补" in over.steps[-1].label
    even = settle(D("1200000.00"), D("720000.00"), PRE, OVER, SURPLUS)
    # surplus 40 %: keeps 80 % of 10 % + 60 % of 5 % = 96000 + 36000; pays 720000 + 132000 = 852000
    assert even.fund_pays == D("852000.00") and even.balance == D("132000.00")


def test_prepayment_rounds_each_month_to_the_fen_and_is_capped():
    out = settle(D("333333.33"), D("333333.33"), PRE, OVER, SURPLUS)
    assert steps(out, "prepayment-monthly") == [D("16666.67")]  # 16666.6665 half up
    assert steps(out, "prepayment-ceiling") == [D("200000.00")]  # 199999.998
    assert out.prepaid == D("200000.00")  # 12 × 16666.67 = 200000.04, capped
    six = settle(B, B, Prepayment(D("0.60"), D("0.05"), 6), OVER, SURPLUS)
    assert six.prepaid == D("300000.00")


def test_every_step_is_money_to_the_fen_and_the_fund_share_never_falls_as_spending_rises():
    previous = D(-1)
    for cents in range(0, 15_000_001, 250_007):  # 0 … 150 000 yuan over, odd steps
        out = settle(B, B + D(cents) / 100, PRE, OVER, SURPLUS)
        assert all(s.amount == fen(s.amount) for s in out.steps)
        assert out.fund_share_of_overspend >= previous
        previous = out.fund_share_of_overspend


def test_segments_reject_a_negative_excess():
    with pytest.raises(ValueError):
        segments(D("-1"), B, OVER)


def test_shipped_rules_fail_without_the_required_share(tmp_path):
    with pytest.raises(SiteError) as err:
        settlement_rules.load(None)
    msg = str(err.value)
    assert str(SHIPPED) in msg
    assert "regions.funing.years.2026.overspend[0].fund_pays" in msg
    assert "required" in msg and "no default" in msg
    assert err.value.line is not None
    assert SHIPPED.read_text("utf-8").splitlines()[err.value.line - 1].strip().startswith(("- up_to", "#", "fund"))


def test_site_rules_override_the_shipped_file(tmp_path):
    site = site_with_rules(tmp_path / "site", "0.85")
    loaded = settlement_rules.load(site)
    yr = loaded.for_year(2026, "funing")[0]
    assert yr.overspend[0] == Tier(D("0.05"), D("0.85"))
    assert yr.budgets["funing"]["employee"] == D("36000000.00")
    assert yr.primary_care.min_share == D("0.16")
    assert loaded.path == str(site / "insurance" / "settlement.yaml")
    assert loaded.for_year(2025) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("fund_pays: 0.60", "fund_pays: 1.60"), "regions.funing.years.2026.overspend[1].fund_pays"),
        (("up_to: 0.15", "up_to: 0.08"), "regions.funing.years.2026.surplus[1].up_to"),
        (('employee: "36000000.00"', 'employee: "36000000.001"'), "regions.funing.years.2026.budgets.funing.employee"),
        (('employee: "36000000.00"', 'staff: "36000000.00"'), "regions.funing.years.2026.budgets.funing.staff"),
        (("min_share: 0.16", "min_share: lots"), "regions.funing.years.2026.primary_care.min_share"),
    ],
)
def test_rule_mistakes_name_file_line_and_field(tmp_path, change, field):
    text = SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, "fund_pays: 0.7")
    assert change[0] in text
    site = site_with_rules(tmp_path / "site", text=text.replace(change[0], change[1], 1))
    with pytest.raises(SiteError) as err:
        settlement_rules.load(site)
    assert field in str(err.value)
    assert str(site / "insurance" / "settlement.yaml") in str(err.value)
    assert err.value.line is not None
