"""The charge lines of a repeated test and of the settlement (nineteenth round, moneymend19, the
review of money19): HL7 results over a real MLLP socket, charge lines through ``PUT
/fhir/ChargeItem``, the settlement through ``GET /reports/settlement``.

- A test billed ¥0 (one billable line of 0.0: a waived test) cost ¥0; it was priced at the
  catalogue's ¥20 because some line had to be above zero.
- A credit carrying the charge's number (a reversal keeping FT1-2) is another line than the
  charge: the test cost ¥0, not ¥30 or ¥20 by storage order.
- A line re-sent under another id with a corrected amount: the latest stored stands, whatever the
  ids' order; the settlement counts it once, as the money at stake does (it counted every copy).
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from engine.settings import Settings
from tests import test_money19_charge_lines
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer
from tests.test_money19_charge_lines import flagged, put_line
from tests.test_recognition_policy_e2e import not_payable

engine = test_money19_charge_lines.engine  # the fixture: the policy community on each store


def test_a_test_billed_zero_cost_zero(engine: Engine, mllp: int) -> None:
    flag = flagged(engine, mllp)
    assert flag["price_source"] == "catalogue" and stored_fen(flag["price"]) > 0
    http = TestClient(create_app(engine))
    put_line(engine, http, "charge-b1", flag["patient"], flag["result"], 0.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (0.0, "charge"), flag


@pytest.mark.parametrize("first", ["charge", "credit"])
def test_a_credit_carrying_the_charge_number_takes_it_back(engine: Engine, mllp: int, first: str) -> None:
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    lines = [("charge-b1", 30.0), ("credit-b1", -30.0)]
    for cid, amount in lines if first == "charge" else lines[::-1]:
        put_line(engine, http, cid, flag["patient"], flag["result"], amount, ident="T-9001")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (0.0, "charge"), flag


@pytest.mark.parametrize(("later_id", "later_amount"), [("charge-a", 30.0), ("charge-z", 25.0)])
def test_a_line_sent_again_with_a_corrected_amount_is_the_latest(engine: Engine, mllp: int, later_id: str,
                                                                  later_amount: float) -> None:
    """The corrected version is stored after the first, under an id sorting before and after it."""
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    put_line(engine, http, "charge-m", flag["patient"], flag["result"], 55.0 - later_amount, ident="T-1")
    put_line(engine, http, later_id, flag["patient"], flag["result"], later_amount, ident="T-1")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (later_amount, "charge"), flag


def employee(report: dict[str, Any]) -> dict[str, Any]:
    [community] = report["regions"][0]["communities"]
    return next(s for s in community["settlements"] if s["insurance_type"] == "employee")


@pytest.mark.parametrize("store", [{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def test_the_settlement_counts_each_line_once_as_the_money_at_stake(tmp_path: Path, store: dict[str, str]) -> None:
    """A line re-sent under another id with a corrected fund share, and a credit carrying its
    number: the settlement counts the correction and the credit, the first version is shown as
    superseded (it counted all three)."""
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    (site / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **store)) as eng:
        http = TestClient(create_app(eng))
        auth = {"Authorization": "Bearer " + eng.auth.issue_system_token("his-billing", "system/*.cruds"),
                "Content-Type": "application/fhir+json"}
        number = {"identifier": [{"system": "urn:fnxrmyy:ft1", "value": "T-1"}]}

        def put(cid: str, amount: str, fund: str) -> dict[str, Any]:
            line = {**charge(cid, "2026-02-01T09:00:00+08:00", ident("FNXRMYY"), amount, fund, "employee"), **number}
            res = http.put(f"/fhir/ChargeItem/{cid}", content=body(line), headers=auth)
            assert res.status_code in (200, 201), res.text
            return http.get("/reports/settlement?year=2026", headers=insurer(eng)).json()

        put("t1-z", "100.00", "80.00")
        report = put("t1-a", "100.00", "70.00")  # the same line again, its fund share corrected
        emp = employee(report)
        assert (D(str(emp["spending"])), emp["lines"]) == (D("70.00"), 1), emp
        excluded = {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}
        assert excluded == {"superseded": (1, D("100.00"))}, excluded
        report = put("t1-credit", "-100.00", "-70.00")  # its reversal, keeping its number
        emp = employee(report)
        assert (D(str(emp["spending"])), emp["lines"]) == (D("0.00"), 2), emp
