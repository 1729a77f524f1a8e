"""rvrvpay26 (review of paymend26): billed lines summed as decimals, rounded half up to the fen by
``insurance.tiers.fen`` -- HL7 over MLLP, ChargeItems PUT over HTTP, the deductions CSV. Guards."""

from __future__ import annotations

from decimal import Decimal as D

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_probepay26_money import _charge, _deductions, _repeat, _uphold, engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import flags
from tests.test_recognition_e2e import Sender


def test_rvrvpay26_two_billed_lines_sum_to_the_fen_half_up(engine: Engine, mllp: int) -> None:  # noqa: F811
    """A blood count billed in two lines, 1.005 and 1.00 (2.005 in all): the money at stake is 2.01
    (half up, the settlement's rule); summed as floats and rounded by ``round`` it was 2.00."""
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPB", "B1", "20260310090000+0800", "20260312080000+0800", "20260312100000+0800")
    http = TestClient(create_app(engine))
    _charge(engine, http, "ci-b1a", "1.005")
    _charge(engine, http, "ci-b1b", "1.00")
    [f] = flags(engine, "flagged")
    assert (f["price_source"], D(str(f["price"]))) == ("charge", D("2.01")), f
    _uphold(http, engine)
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    assert total == sum((D(r[9]) for r in rows), D(0)) == D("2.01"), (rows, total)


def test_rvrvpay26_charge_row_keeps_the_decimal_text(engine: Engine, mllp: int) -> None:  # noqa: F811
    """The stored charge row keeps the amount as sent (text), never a float."""
    hl7 = Sender(mllp)
    _repeat(hl7, "HOSPB", "B1", "20260310090000+0800", "20260312080000+0800", "20260312100000+0800")
    http = TestClient(create_app(engine))
    _charge(engine, http, "ci-b1", "18.345")
    [row] = engine.recognition.charges.find({})
    assert row["amount"] == "18.345", row
    [f] = flags(engine, "flagged")
    assert D(str(f["price"])) == D("18.35"), f
