"""rvlast25a: review probes of moneyfix25b (two active Coverages of different types on a line's day).
Real bytes: BAR/DFT over POST /hl7v2, the settlement at GET /reports/settlement."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import settlement
from tests.test_moneyfix25_rv_coverage import EMPLOYEE, RESIDENT, _dft, _types, world
from tests.test_moneyfix25b_rv_probes import _bar

__all__ = ["world"]

SEPT = "FT1|1|T-C001||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY"
AUG = "FT1|1|T-C002||20260815100000||CG|DRUG-7^头孢曲松^L||1|1||30.00&CNY"


def _excluded(report: dict[str, Any]) -> dict[str, tuple[int, D]]:
    return {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}


def test_guard_the_later_cover_takes_the_overlap_day_by_day(world: Any) -> None:
    """Resident open from 2025, employee 07-01..08-31: August is the employee fund's (the later start)."""
    engine, http = world
    assert post_hl7(http, _bar("M1", "P01", RESIDENT.format(start="20250101", end=""))) == "AA"
    assert post_hl7(http, _bar("M2", "P05", EMPLOYEE.format(n=1, start="20260701", end="20260831"))) == "AA"
    assert post_hl7(http, _dft("M3", AUG)) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("30.00"))}


def test_a_cover_the_later_one_ended_does_not_come_back_unsaid(world: Any) -> None:
    """The moneyfix25b rule: a cover from 07-01 ENDS the earlier open one there (one basic fund at a time).
    The employee cover then ends 08-31; nothing says the patient re-enrolled as a resident. September
    is therefore not sure -- it must not be settled to the resident fund the switch ended (LOW/MED:
    the earlier open cover silently resumed; mended by money29, ``settlement._ended``): it is listed
    no-insurance-type, its 40.00 exact."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", RESIDENT.format(start="20250101", end=""))) == "AA"
    assert post_hl7(http, _bar("N2", "P05", EMPLOYEE.format(n=1, start="20260701", end="20260831"))) == "AA"
    assert post_hl7(http, _dft("N3", SEPT)) == "AA"
    report = settlement(engine, http, 2026)
    assert "resident" not in _types(report)
    assert _excluded(report) == {"no-insurance-type": (1, D("40.00"))}
