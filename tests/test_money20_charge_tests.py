"""A charge line naming the results of two tests (twentieth round, money20): HL7 results over a real
MLLP socket, the line through ``PUT /fhir/ChargeItem``, both stores.

DOMAIN.md: the money at stake is the price of what was repeated, the billed line when one exists.
A line was kept under the first result its ``service`` names: one ¥50 line for a blood count (the
flagged repeat, catalogue ¥20) and an ALT made the count's money at stake ¥50 when the count was
named first -- the deduction list took ¥30 the repeat never cost -- and left it at ¥20 when the ALT
was. Such a line is no one test's price: the tests are priced as unbilled (the catalogue); the
settlement still counts the line (it reads every ChargeItem itself).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests import test_money19_charge_lines
from tests.test_money19_charge_lines import flagged, put_line
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import ALT, not_payable, order, result, ts

engine = test_money19_charge_lines.engine  # the fixture: the policy community on each store


def alt_report(engine: Engine, mllp: int) -> str:
    """HOSPB's ALT the same day as the repeated count (no prior: not a repeat)."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPB", "B2", ALT, ts(0)))
    hl7.send(result("HOSPB", "B2", ALT, ts(0, 11), "OBX|1|NM|ALT^丙氨酸氨基转移酶^L||31|U/L|||||F"))
    [sr] = engine.repository.search("ServiceRequest", [("identifier", "B2")]).resources
    [dr] = [r for r in engine.repository.search("DiagnosticReport", []).resources
            if any(b.get("reference") == f"ServiceRequest/{sr['id']}" for b in r.get("basedOn") or ())]
    return f"DiagnosticReport/{dr['id']}"


def put_shared(engine: Engine, http: TestClient, cid: str, patient: str, services: list[str], amount: float) -> None:
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": cid, "status": "billed",
        "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
        "subject": {"reference": patient}, "quantity": {"value": 1},
        "identifier": [{"system": "urn:hospb:ft1", "value": f"T-{cid}"}],
        "priceOverride": {"value": amount, "currency": "CNY"}, "service": [{"reference": s} for s in services]}
    res = http.put(f"/fhir/ChargeItem/{cid}", json=charge, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text


@pytest.mark.parametrize("count_first", [True, False], ids=["count-named-first", "alt-named-first"])
def test_a_line_for_two_tests_is_neither_tests_price(engine: Engine, mllp: int, count_first: bool) -> None:
    flag = flagged(engine, mllp)
    catalogue = stored_fen(flag["price"])
    alt = alt_report(engine, mllp)
    http = TestClient(create_app(engine))
    services = [flag["result"], alt] if count_first else [alt, flag["result"]]
    put_shared(engine, http, "both", flag["patient"], services, 50.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (catalogue, "catalogue"), flag
    issue = engine.repository.read("DetectedIssue", flag["_id"])
    [price] = [e["valueMoney"]["value"] for x in issue["extension"] for e in x.get("extension") or ()
               if e.get("url") == "price"]
    assert price == catalogue, issue


def test_the_tests_own_line_beside_a_shared_one_is_its_price(engine: Engine, mllp: int) -> None:
    """The count's own ¥23 line stands; the ¥50 line naming both tests adds nothing to it (was ¥73)."""
    flag = flagged(engine, mllp)
    alt = alt_report(engine, mllp)
    http = TestClient(create_app(engine))
    put_line(engine, http, "own", flag["patient"], flag["result"], 23.0, ident="T-own")
    put_shared(engine, http, "both", flag["patient"], [flag["result"], alt], 50.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (23.0, "charge"), flag


def test_a_line_corrected_to_name_one_test_prices_it(engine: Engine, mllp: int) -> None:
    """The same line (its number) re-sent naming the count alone: the count's billed line again."""
    flag = flagged(engine, mllp)
    alt = alt_report(engine, mllp)
    http = TestClient(create_app(engine))
    put_shared(engine, http, "both", flag["patient"], [flag["result"], alt], 50.0)
    put_shared(engine, http, "both", flag["patient"], [flag["result"]], 26.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (26.0, "charge"), flag


def test_a_line_sent_again_under_another_id_naming_two_tests(engine: Engine, mllp: int) -> None:
    """Its number's latest version names both tests: the version naming the count alone no longer prices it."""
    flag = flagged(engine, mllp)
    catalogue = stored_fen(flag["price"])
    alt = alt_report(engine, mllp)
    http = TestClient(create_app(engine))
    put_shared(engine, http, "one", flag["patient"], [flag["result"]], 26.0)
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (26.0, "charge"), flag
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    again = {**http.get("/fhir/ChargeItem/one", headers={"Authorization": f"Bearer {token}"}).json(),
             "id": "one-again", "service": [{"reference": flag["result"]}, {"reference": alt}],
             "priceOverride": {"value": 50.0, "currency": "CNY"}}
    again.pop("meta", None)
    res = http.put("/fhir/ChargeItem/one-again", json=again, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (catalogue, "catalogue"), flag
