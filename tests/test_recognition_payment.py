"""The payment effect of a repeat, table-driven: every reason × payer policy × scope × grade ×
panel/analyte case, through ``find_recognisable`` then ``decide`` over rules loaded from files
(the shipped defaults plus a site folder holding a second community's policy)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from engine.recognition.decision import (
    CONTRADICTED,
    JUSTIFIED,
    NOT_PAYABLE,
    REPORTED,
    SELF_PAY_STATUS,
    Order,
    PriorResult,
    decide,
    find_recognisable,
)
from engine.recognition.rules import Institution, Rules, load_rules, rule_folders

PERSON = "320922198001010012"
DAY = date(2026, 3, 20)
ALL = frozenset({"all"})


def inst(code: str, community: str, grade: str) -> Institution:
    return Institution(code, community=community, qc_passed=ALL, qc_until=date(2026, 12, 31), grade=grade)


INSTITUTIONS = {
    "A": inst("A", "funing", "三级"),  # county people's hospital
    "B": inst("B", "funing", "二级"),  # county TCM hospital
    "T": inst("T", "funing", "一级"),  # township health centre
    "S": inst("S", "sheyang", "二级"),  # a hospital of the neighbouring community
}
QC = """\
- {institution: A, item: all, passed: true, from: 2026-01-01, until: 2026-12-31, hr: [YC]}
- {institution: S, item: all, passed: true, from: 2026-01-01, until: 2026-12-31, hr: [YC]}
"""
# sheyang's fund pays for legal assessments, patient requests and old results, and refuses repeats
# of results recognisable anywhere in the city (YC HR), not only inside its community
POLICY_SHEYANG = """\
communities:
  sheyang:
    reasons: {R05: payable, R07: payable, R08: payable}
    not_payable_scopes: [community, YC]
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Rules:
    site: Path = tmp_path_factory.mktemp("site")
    (site / "qc.yaml").write_text(QC, encoding="utf-8")
    shipped = (Path(__file__).resolve().parent.parent / "mappings" / "recognition" / "policy.yaml").read_text("utf-8")
    (site / "policy.yaml").write_text(shipped.replace("communities: {}\n", POLICY_SHEYANG), encoding="utf-8")
    return load_rules(rule_folders(site), INSTITUTIONS)


def decided(rules: Rules, *, orderer: str = "B", issuer: str = "A", item: str = "CBC", age: int = 3,
            reasons: tuple[str, ...] = (), text: str | None = None, ordered: tuple[str, ...] = (),
            prior: tuple[str, ...] = (), held_before: bool = True):
    prior_result = PriorResult(ref="DiagnosticReport/p", person=PERSON, item=item, institution=issuer,
                               day=DAY - timedelta(days=age), status="final", analytes=prior,
                               held="2026-03-18T01:00:00Z")
    o = Order(person=PERSON, item=item, institution=orderer, day=DAY, ref="ServiceRequest/o", reasons=reasons,
              reason_text=text, analytes=ordered,
              placed="2026-03-20T01:00:00Z" if held_before else "2026-03-17T01:00:00Z")
    matches = find_recognisable(o, [prior_result], rules)
    if not matches:
        return None, None
    return decide(o, matches[0], rules), matches[0]


# reason (and free text) → (status, contradicted?) under funing's (the shipped default) policy and
# under sheyang's; the prior blood count is 3 days old (window 7: not older than half of it), its
# issuer passed QC on its date, and huren held it before the order was placed
REASONS = [
    # reasons, text, funing, sheyang
    ((), None, (NOT_PAYABLE, False), (NOT_PAYABLE, False)),
    (("R01",), None, (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R02",), None, (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R03",), None, (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R04",), None, (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R05",), None, (SELF_PAY_STATUS, False), (JUSTIFIED, False)),
    (("R06",), None, (NOT_PAYABLE, False), (NOT_PAYABLE, False)),  # R06 without its free text does not count
    (("R06",), "术后复查需要", (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R07",), None, (SELF_PAY_STATUS, False), (JUSTIFIED, False)),
    (("R08",), None, (NOT_PAYABLE, True), (JUSTIFIED, False)),  # 3 days is not older than 3.5
    (("R09",), None, (NOT_PAYABLE, True), (NOT_PAYABLE, True)),  # QC passed on the prior's date
    (("R98",), None, (NOT_PAYABLE, True), (NOT_PAYABLE, True)),  # huren held it before the order
    (("R99",), None, (JUSTIFIED, False), (JUSTIFIED, False)),
    (("R77",), None, (NOT_PAYABLE, False), (NOT_PAYABLE, False)),  # unknown code
    (("R07", "R01"), None, (JUSTIFIED, False), (JUSTIFIED, False)),  # the most favourable counts
]
REASON_CASES = [
    pytest.param(orderer, issuer, reasons, text, expected, id=f"{'+'.join(reasons) or 'none'}{'-text' if text else ''}-{policy}")
    for reasons, text, funing, sheyang in REASONS
    for policy, orderer, issuer, expected in (("funing", "B", "A", funing), ("sheyang", "S", "S", sheyang))
]


@pytest.mark.parametrize(("orderer", "issuer", "reasons", "text", "expected"), REASON_CASES)
def test_reason_by_policy(rules: Rules, orderer: str, issuer: str, reasons: tuple[str, ...], text: str | None,
                          expected: tuple[str, bool]) -> None:
    decision, _ = decided(rules, orderer=orderer, issuer=issuer, reasons=reasons, text=text)
    assert decision is not None
    assert (decision.status, decision.contradicted is not None) == expected
    if decision.contradicted:
        assert decision.contradicted.startswith(CONTRADICTED)
    assert decision.at_stake == (expected[0] == NOT_PAYABLE)


@pytest.mark.parametrize(
    ("reasons", "kw", "expected"),
    [
        (("R08",), {"age": 4}, JUSTIFIED),  # older than half of the 7-day window
        (("R08",), {"age": 3}, NOT_PAYABLE),
        (("R98",), {"held_before": False}, JUSTIFIED),  # huren got the prior only after the order
        (("R98",), {"held_before": True}, NOT_PAYABLE),
    ],
    ids=["R08-old-enough", "R08-too-recent", "R98-not-held-yet", "R98-held"],
)
def test_checkable_reasons_against_records(rules: Rules, reasons: tuple[str, ...], kw: dict, expected: str) -> None:
    decision, _ = decided(rules, reasons=reasons, **kw)
    assert decision is not None and decision.status == expected


SCOPE_CASES = [
    # (orderer, issuer, item, status, basis): whose fund, which scope, which grades
    pytest.param("B", "A", "CBC", NOT_PAYABLE, "community", id="same-community"),
    pytest.param("A", "A", "CBC", NOT_PAYABLE, "community", id="same-institution"),
    pytest.param("B", "S", "CBC", REPORTED, "YC", id="city-HR-only-funing-does-not-refuse"),
    pytest.param("S", "A", "CBC", NOT_PAYABLE, "YC", id="city-HR-sheyang-extends-non-payment"),
    pytest.param("A", "T", "CT-CHEST", REPORTED, "optional", id="三级-recognising-一级-CT-is-optional"),
    pytest.param("B", "T", "CT-CHEST", NOT_PAYABLE, "community", id="二级-must-recognise-一级-CT"),
    pytest.param("T", "A", "CT-CHEST", NOT_PAYABLE, "community", id="一级-must-recognise-三级-CT"),
    pytest.param("A", "T", "CBC", NOT_PAYABLE, "community", id="三级-must-recognise-一级-blood-count"),
]


@pytest.mark.parametrize(("orderer", "issuer", "item", "status", "basis"), SCOPE_CASES)
def test_scope_and_grade(rules: Rules, orderer: str, issuer: str, item: str, status: str, basis: str) -> None:
    decision, _ = decided(rules, orderer=orderer, issuer=issuer, item=item)
    assert decision is not None
    assert (decision.status, decision.basis) == (status, basis)
    # a reason never turns a repeat outside non-payment into a refusal
    with_reason, _ = decided(rules, orderer=orderer, issuer=issuer, item=item, reasons=("R07",))
    assert with_reason is not None and (with_reason.status == REPORTED) == (status == REPORTED)


PANEL_CASES = [
    # (ordered analytes, prior analytes, recognisable?, repeated, partial, price at B)
    pytest.param(("ALT",), (), True, {"ALT"}, True, 5.0, id="ALT-after-liver-panel"),
    pytest.param((), (), True, {"ALT", "AST", "TBIL", "ALB", "ALP", "GGT"}, False, 60.0, id="panel-after-panel"),
    pytest.param((), ("ALT",), True, {"ALT"}, True, 5.0, id="panel-after-ALT-partial-overlap"),
    pytest.param(("ALT", "GGT"), (), True, {"ALT", "GGT"}, True, 13.0, id="two-analytes-after-panel"),
    pytest.param(("AST",), ("ALT",), False, set(), False, 0.0, id="AST-after-ALT-no-overlap"),
    pytest.param(("ALT",), ("ALT", "AST"), True, {"ALT"}, True, 5.0, id="ALT-after-ALT-and-AST"),
]


@pytest.mark.parametrize(("ordered", "prior", "recognisable", "repeated", "partial", "price"), PANEL_CASES)
def test_panel_and_analyte(rules: Rules, ordered: tuple[str, ...], prior: tuple[str, ...], recognisable: bool,
                           repeated: set[str], partial: bool, price: float) -> None:
    decision, match = decided(rules, item="LFT", ordered=ordered, prior=prior)
    assert (match is not None) == recognisable
    if match is None:
        return
    assert decision is not None and decision.status == NOT_PAYABLE
    assert (set(match.analytes), match.partial) == (repeated, partial)
    assert rules.repeat_price(match.item, match.analytes, "B") == price


def test_unpriced_analyte_costs_its_share_of_the_panel(rules: Rules) -> None:
    item = rules.items["LFT"]
    bare = type(rules)(**{**rules.__dict__, "prices": {k: v for k, v in rules.prices.items() if k != "ALT"}})
    assert bare.repeat_price(item, frozenset({"ALT"}), "B") == 10.0  # 60.00 / 6 analytes
