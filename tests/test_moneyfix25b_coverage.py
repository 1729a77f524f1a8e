"""moneyfix25b: two active Coverages of different types in force on a line's day (second review of money25).

The cover that started later wins when that is sure; otherwise the line is listed
``ambiguous-insurance-type`` -- never the first listed Coverage's. Real bytes: BAR/DFT over POST /hl7v2,
the settlement at GET /reports/settlement.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import settlement
from tests.test_moneyfix25_rv_coverage import EMPLOYEE, RESIDENT, _dft, _types, world
from tests.test_moneyfix25b_rv_probes import _bar

__all__ = ["world"]

SEPT = "FT1|1|T-C001||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY"


def _excluded(report: dict[str, Any]) -> dict[str, tuple[int, D]]:
    return {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}


def test_the_later_started_cover_takes_the_line_whatever_the_order_sent(world: Any) -> None:
    """The employee cover (from 07-01) sent FIRST, the open resident cover (from 2025) after: still the
    employee fund's in September (the later start, not the later message nor the first listed)."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", EMPLOYEE.format(n=1, start="20260701", end=""))) == "AA"
    assert post_hl7(http, _bar("S2", "P05", RESIDENT.format(start="20250101", end=""))) == "AA"
    assert post_hl7(http, _dft("S3", SEPT)) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("40.00"))}


def test_a_corrected_plan_of_the_same_start_is_listed_ambiguous_not_the_wrong_one(world: Any) -> None:
    """The wrong plan (resident, open) then the corrected one (employee, open) from the same start: which
    one holds is not sure, so the line is no fund's -- listed ambiguous -- rather than the wrong one's
    (before: resident, the first listed)."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end=""))) == "AA"
    assert post_hl7(http, _bar("S2", "P05", EMPLOYEE.format(n=1, start="20250101", end=""))) == "AA"
    assert post_hl7(http, _dft("S3", SEPT)) == "AA"
    report = settlement(engine, http, 2026)
    assert _types(report) == {}
    assert _excluded(report)["ambiguous-insurance-type"] == (1, D("40.00"))


def test_a_cover_with_no_start_against_another_type_is_ambiguous(world: Any) -> None:
    """A resident cover with no start (IN1-12 empty) and an employee one from 07-01: the resident one's
    start is unknown, so which is later is not sure -- listed ambiguous."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="", end=""))) == "AA"
    assert post_hl7(http, _bar("S2", "P05", EMPLOYEE.format(n=1, start="20260701", end=""))) == "AA"
    assert post_hl7(http, _dft("S3", SEPT)) == "AA"
    report = settlement(engine, http, 2026)
    assert _types(report) == {}
    assert _excluded(report)["ambiguous-insurance-type"] == (1, D("40.00"))


def test_guard_two_covers_of_the_same_type_are_not_ambiguous(world: Any) -> None:
    """Two employee covers (IN1|1 from 2025, IN1|2 from 07-01) both in force: one type, the employee fund's."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", EMPLOYEE.format(n=1, start="20250101", end=""),
                               EMPLOYEE.format(n=2, start="20260701", end=""))) == "AA"
    assert post_hl7(http, _dft("S3", SEPT)) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("40.00"))}
