"""The money at stake when a repeated test has several charge lines (nineteenth round, money19):
HL7 results over a real MLLP socket, the charge lines through ``PUT /fhir/ChargeItem``.

DOMAIN.md: the money at stake is the price of what was repeated, the billed charge line when one
exists. The first line found was taken: a charge and its credit (a refund) made it -¥30 or ¥30
(whichever the store returned first) for a test the fund paid nothing for, a test billed in two
lines was priced at one of them. Now the counted lines of the test (billable, billed) are summed,
each line once (the same line sent again under another id, by its identifier), a credit taking back
what it credits; only credits leave the catalogue price.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from engine.settings import Settings
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, not_payable, order, result, ts


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC) on each store."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng


def flagged(engine: Engine, mllp: int) -> dict[str, Any]:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(2)))
    hl7.send(order("HOSPB", "B1", CBC, ts(0)))
    hl7.send(result("HOSPB", "B1", CBC, ts(0, 10)))
    [flag] = not_payable(engine)
    return flag


def put_line(engine: Engine, http: TestClient, cid: str, patient: str, service: str, amount: float,
             ident: str | None = None) -> None:
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": cid, "status": "billable",
        "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
        "subject": {"reference": patient}, "quantity": {"value": 1},
        "priceOverride": {"value": amount, "currency": "CNY"}, "service": [{"reference": service}]}
    if ident:
        charge["identifier"] = [{"system": "urn:hospb:ft1", "value": ident}]
    res = http.put(f"/fhir/ChargeItem/{cid}", json=charge, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text


@pytest.mark.parametrize("first", ["charge", "credit"])
def test_a_charge_and_its_credit_leave_nothing_at_stake(engine: Engine, mllp: int, first: str) -> None:
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    lines = [("charge-b1", 30.0), ("credit-b1", -30.0)]
    for cid, amount in (lines if first == "charge" else lines[::-1]):
        put_line(engine, http, cid, flag["patient"], flag["result"], amount)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (0.0, "charge")


def test_a_test_billed_in_two_lines_is_at_stake_whole(engine: Engine, mllp: int) -> None:
    """The panel and an add-on, two lines naming the report: one test, ¥25 billed."""
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    put_line(engine, http, "charge-b1", flag["patient"], flag["result"], 20.0)
    put_line(engine, http, "charge-b2", flag["patient"], flag["result"], 5.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (25.0, "charge")


def test_one_line_stored_twice_is_counted_once(engine: Engine, mllp: int) -> None:
    """A feed that sends the same line again under another id (the same FT1-2 number)."""
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    put_line(engine, http, "charge-b1", flag["patient"], flag["result"], 23.0, ident="T-9001")
    put_line(engine, http, "charge-b1-again", flag["patient"], flag["result"], 23.0, ident="T-9001")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (23.0, "charge")


def test_a_credit_alone_leaves_the_catalogue_price(engine: Engine, mllp: int) -> None:
    flag = flagged(engine, mllp)
    catalogue = stored_fen(flag["price"])
    put_line(engine, TestClient(create_app(engine)), "credit-b1", flag["patient"], flag["result"], -30.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (catalogue, "catalogue")


def test_a_line_naming_an_observation_before_its_report_is_found(engine: Engine, mllp: int) -> None:
    """``ChargeItem.service`` = [the count's observation, its report]: the observation is no index
    entry of its own (the report stands for it), and the line was kept under it, never found."""
    flag = flagged(engine, mllp)
    report = engine.repository.read("DiagnosticReport", flag["result"].split("/")[1])
    observation = report["result"][0]["reference"]
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge = {"resourceType": "ChargeItem", "id": "charge-b1", "status": "billed",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": flag["patient"]}, "quantity": {"value": 1},
              "priceOverride": {"value": 27.0, "currency": "CNY"},
              "service": [{"reference": observation}, {"reference": flag["result"]}]}
    res = TestClient(create_app(engine)).put("/fhir/ChargeItem/charge-b1", json=charge,
                                             headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (27.0, "charge")
