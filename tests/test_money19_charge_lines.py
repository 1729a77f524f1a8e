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
from tests.shared_worlds44d import Own, own_sender, policy_eng, policy_mllp  # noqa: F401 -- fixtures (own's)
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, order, result, ts
from tests.test_recognition_policy_e2e import not_payable as store_not_payable


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC) on each store, a store a test: the fixture lead19,
    money20_charge_tests, moneylast19 and moneymend19 bind (this file's own tests share ``policy_eng``)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng


# one engine (the policy tests' community, shared_worlds44d.policy_eng) and MLLP listener a module and backend: each
# test sends its scenario as a resident, records, orders and control IDs of its own (shared_worlds44d.Own) and puts
# its charge lines under ids and FT1 numbers of its own, and reads its own flags -- each had opened an engine


def not_payable(own: Own) -> list[dict[str, Any]]:
    """``test_recognition_policy_e2e.not_payable`` (the flags standing ``flagged``) of this test's own records."""
    return [f for inst in ("HOSPA", "HOSPB") for f in own.flags(inst) if f["status"] == "flagged"]


def flagged(engine: Engine, mllp: int) -> dict[str, Any]:
    """HOSPA's blood count two days ago, HOSPB's repeat today: the one flag not payable (of the store: the
    modules binding this file's ``engine``, a store a test)."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(2)))
    hl7.send(order("HOSPB", "B1", CBC, ts(0)))
    hl7.send(result("HOSPB", "B1", CBC, ts(0, 10)))
    [flag] = store_not_payable(engine)
    return flag


def own_flagged(own: Own) -> dict[str, Any]:
    """``flagged`` through this test's sender on the module's store: its own flag."""
    own.send(result("HOSPA", "A1", CBC, ts(2)))
    own.send(order("HOSPB", "B1", CBC, ts(0)))
    own.send(result("HOSPB", "B1", CBC, ts(0, 10)))
    [flag] = not_payable(own)
    return flag


def put_line(engine: Engine, http: TestClient, cid: str, patient: str, service: str, amount: float,
             ident: str | None = None) -> None:
    """A charge line ``cid`` naming ``service`` through ``PUT /fhir/ChargeItem``."""
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
def test_a_charge_and_its_credit_leave_nothing_at_stake(own: Own, first: str) -> None:
    engine = own.engine
    n = own.names.number
    flag = own_flagged(own)
    http = TestClient(create_app(engine))
    lines = [(n("charge-b1"), 30.0), (n("credit-b1"), -30.0)]
    for cid, amount in (lines if first == "charge" else lines[::-1]):
        put_line(engine, http, cid, flag["patient"], flag["result"], amount)
    [flag] = not_payable(own)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (0.0, "charge")


def test_a_test_billed_in_two_lines_is_at_stake_whole(own: Own) -> None:
    """The panel and an add-on, two lines naming the report: one test, ¥25 billed."""
    engine = own.engine
    n = own.names.number
    flag = own_flagged(own)
    http = TestClient(create_app(engine))
    put_line(engine, http, n("charge-b1"), flag["patient"], flag["result"], 20.0)
    put_line(engine, http, n("charge-b2"), flag["patient"], flag["result"], 5.0)
    [flag] = not_payable(own)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (25.0, "charge")


def test_one_line_stored_twice_is_counted_once(own: Own) -> None:
    """A feed that sends the same line again under another id (the same FT1-2 number)."""
    engine = own.engine
    n = own.names.number
    flag = own_flagged(own)
    http = TestClient(create_app(engine))
    put_line(engine, http, n("charge-b1"), flag["patient"], flag["result"], 23.0, ident=n("T-9001"))
    put_line(engine, http, n("charge-b1-again"), flag["patient"], flag["result"], 23.0, ident=n("T-9001"))
    [flag] = not_payable(own)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (23.0, "charge")


def test_a_credit_alone_leaves_the_catalogue_price(own: Own) -> None:
    engine = own.engine
    n = own.names.number
    flag = own_flagged(own)
    catalogue = stored_fen(flag["price"])
    put_line(engine, TestClient(create_app(engine)), n("credit-b1"), flag["patient"], flag["result"], -30.0)
    [flag] = not_payable(own)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (catalogue, "catalogue")


def test_a_line_naming_an_observation_before_its_report_is_found(own: Own) -> None:
    """``ChargeItem.service`` = [the count's observation, its report]: the observation is no index
    entry of its own (the report stands for it), and the line was kept under it, never found."""
    engine = own.engine
    n = own.names.number
    flag = own_flagged(own)
    report = engine.repository.read("DiagnosticReport", flag["result"].split("/")[1])
    observation = report["result"][0]["reference"]
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge = {"resourceType": "ChargeItem", "id": n("charge-b1"), "status": "billed",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": flag["patient"]}, "quantity": {"value": 1},
              "priceOverride": {"value": 27.0, "currency": "CNY"},
              "service": [{"reference": observation}, {"reference": flag["result"]}]}
    res = TestClient(create_app(engine)).put(f"/fhir/ChargeItem/{n('charge-b1')}", json=charge,
                                             headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text
    [flag] = not_payable(own)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (27.0, "charge")
