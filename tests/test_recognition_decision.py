"""DOMAIN.md's decision, table-driven: same person, same item, final, QC on the result's date, window, scope."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from engine.recognition import decision as d
from engine.recognition.decision import Order, PriorResult, find_recognisable, order_time_effect
from engine.recognition.rules import Institution, Rules, load_rules, rule_folders

PERSON = "320922198001010012"
OTHER = "320922199002020023"
DAY = date(2026, 3, 20)

INSTITUTIONS = {
    # funing medical community
    "A": Institution("A", community="funing", qc_passed=frozenset({"all"}), qc_until=date(2026, 12, 31)),
    "B": Institution("B", community="funing", qc_passed=frozenset({"all"}), qc_until=date(2026, 12, 31)),
    "NOQC": Institution("NOQC", community="funing"),
    # another community of the same city (the YC HR scope covers it)
    "S": Institution("S", community="sheyang", qc_passed=frozenset({"all"}), qc_until=date(2026, 12, 31)),
    # outside every scope but 全国HR
    "N": Institution("N", community="nanjing", qc_passed=frozenset({"all"}), qc_until=date(2026, 12, 31)),
}
QC = """\
- {institution: A, item: all, passed: true, from: 2026-01-01, until: 2026-12-31, hr: [YC]}
- {institution: B, item: CBC, passed: false, from: 2026-03-01, until: 2026-03-10, source: 2026-1 EQA failed}
- {institution: N, item: CT-CHEST, passed: true, from: 2026-01-01, until: 2026-12-31, hr: [CN]}
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Rules:
    site: Path = tmp_path_factory.mktemp("site")
    (site / "qc.yaml").write_text(QC, encoding="utf-8")
    return load_rules(rule_folders(site), INSTITUTIONS)


def result(**kw: object) -> PriorResult:
    base: dict[str, object] = dict(ref="DiagnosticReport/r1", person=PERSON, item="CBC", institution="A",
                                   day=DAY - timedelta(days=3), status="final")
    base.update(kw)
    return PriorResult(**base)  # type: ignore[arg-type]


def order(**kw: object) -> Order:
    base: dict[str, object] = dict(person=PERSON, item="CBC", institution="B", day=DAY, ref="ServiceRequest/o1")
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


CASES = [
    # (name, order changes, result changes, expected reason or None = recognisable)
    ("hospital A result, hospital B order, same community", {}, {}, None),
    ("same institution", {"institution": "A"}, {}, None),
    ("other person", {}, {"person": OTHER}, d.NOT_SAME_PERSON),
    ("result without a national ID never matches", {}, {"person": None}, d.NOT_SAME_PERSON),
    ("order without a national ID never matches", {"person": None}, {}, d.NOT_SAME_PERSON),
    ("other item", {}, {"item": "LFT"}, d.NOT_SAME_ITEM),
    ("order item unknown", {"item": "XYZ"}, {}, d.UNKNOWN_ITEM),
    ("the order's own result", {}, {"order": "ServiceRequest/o1"}, d.SAME_ORDER),
    ("preliminary", {}, {"status": "preliminary"}, d.NOT_FINAL),
    ("entered in error", {}, {"status": "entered-in-error"}, d.NOT_FINAL),
    ("cancelled", {}, {"status": "cancelled"}, d.NOT_FINAL),
    ("corrected is final", {}, {"status": "corrected"}, None),
    ("amended is final", {}, {"status": "amended"}, None),
    ("imaging study available is final", {"item": "CT-CHEST"},
     {"ref": "ImagingStudy/i1", "item": "CT-CHEST", "status": "available"}, None),
    ("imaging study registered is not", {"item": "CT-CHEST"},
     {"ref": "ImagingStudy/i1", "item": "CT-CHEST", "status": "registered"}, d.NOT_FINAL),
    ("issuer without QC", {}, {"institution": "NOQC"}, d.QC_NOT_PASSED),
    ("QC failed on the result's date", {"institution": "A"}, {"institution": "B", "day": date(2026, 3, 5)}, d.QC_NOT_PASSED),
    ("QC passed again after the failed period", {"institution": "A"}, {"institution": "B", "day": date(2026, 3, 14)}, None),
    ("QC expired before the result's date", {"day": date(2027, 1, 3)}, {"day": date(2027, 1, 1)}, d.QC_NOT_PASSED),
    ("window edge: exactly 7 days", {}, {"day": DAY - timedelta(days=7)}, None),
    ("window edge: 8 days", {}, {"day": DAY - timedelta(days=8)}, d.OUTSIDE_WINDOW),
    ("same day", {}, {"day": DAY}, None),
    ("result after the order", {}, {"day": DAY + timedelta(days=1)}, d.AFTER_ORDER),
    ("HbA1c 60-day window", {"item": "HBA1C"}, {"item": "HBA1C", "day": DAY - timedelta(days=60)}, None),
    ("electrolytes 3-day window", {"item": "ELEC"}, {"item": "ELEC", "day": DAY - timedelta(days=4)}, d.OUTSIDE_WINDOW),
    ("other community, issuer holds YC HR", {"institution": "S"}, {}, None),
    ("other community, issuer without HR", {"institution": "S"}, {"institution": "B", "day": DAY - timedelta(days=1)}, d.OUT_OF_SCOPE),
    ("outside the city, YC does not reach", {"institution": "N"}, {}, d.OUT_OF_SCOPE),
    ("全国HR item reaches everywhere", {"institution": "A", "item": "CT-CHEST"}, {"institution": "N", "item": "CT-CHEST"}, None),
    ("全国HR is per item", {"institution": "A"}, {"institution": "N"}, d.OUT_OF_SCOPE),
]


@pytest.mark.parametrize(("name", "o", "r", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decision(rules: Rules, name: str, o: dict, r: dict, expected: str | None) -> None:
    assert d.assess(order(**o), result(**r), rules) == expected
    found = find_recognisable(order(**o), [result(**r)], rules)
    assert (found != []) == (expected is None)


def test_newest_first_with_window_left(rules: Rules) -> None:
    old = result(ref="DiagnosticReport/old", day=DAY - timedelta(days=6))
    new = result(ref="DiagnosticReport/new", institution="B", day=DAY - timedelta(days=1))
    expired = result(ref="DiagnosticReport/expired", day=DAY - timedelta(days=30))
    found = find_recognisable(order(), [old, expired, new], rules)
    assert [(m.result.ref, m.age_days, m.window_left) for m in found] == [
        ("DiagnosticReport/new", 1, 6),
        ("DiagnosticReport/old", 6, 1),
    ]


def test_report_stands_for_its_observations(rules: Rules) -> None:
    obs = [result(ref=f"Observation/o{i}") for i in range(3)]
    report = result(ref="DiagnosticReport/rep")
    found = find_recognisable(order(), [*obs, report], rules)
    assert [m.result.ref for m in found] == ["DiagnosticReport/rep"]
    # observations alone still count once
    assert [m.result.ref for m in find_recognisable(order(), obs, rules)] == ["Observation/o0"]


@pytest.mark.parametrize(
    ("reasons", "text", "expected"),
    [
        ((), None, (None, None)),
        (("R01",), None, ("R01", "payable")),
        (("R08",), None, ("R08", "check_age")),
        (("R06",), None, (None, None)),  # R06 needs text
        (("R06",), "家属坚持复查", ("R06", "payable")),
        (("R07",), None, ("R07", "self_pay")),
        (("R09",), None, ("R09", "check_qc")),
        (("R98",), None, ("R98", "check_held")),
        (("R07", "R99"), None, ("R99", "payable")),  # the most favourable reason that counts
        (("R77",), None, (None, None)),
    ],
)
def test_order_time_effect(rules: Rules, reasons: tuple[str, ...], text: str | None, expected: tuple) -> None:
    assert order_time_effect(order(reasons=reasons, reason_text=text), rules) == expected
