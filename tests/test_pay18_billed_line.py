"""The money at stake of a repeat ordered at the analyte level (eighteenth round, pay18): HL7
results over a real MLLP socket, the billed charge line through ``PUT /fhir/ChargeItem``.

DOMAIN.md: the price of what was repeated is the billed charge line when one exists, else the
catalogue at the ordered level. An ALT ordered alone after another institution's liver panel
repeats *all* that was ordered, so its billed line is the money at stake (the catalogue's ALT
price was taken whatever was billed). A liver panel ordered after an ALT alone repeats only the
ALT: its line bills the whole panel, so the catalogue's ALT price stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine import fhirjson
from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import ALT, CBC, LFT, community_engine, not_payable, order, result, ts

ALT_OBX = "OBX|1|NM|1742-6^ALT^LN||30|U/L|||||F"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


@pytest.mark.parametrize(("prior", "ordered", "billed", "price", "source"), [
    (LFT, ALT, 8.0, 8.0, "charge"),  # the whole order repeated: its billed line
    (ALT, LFT, 60.0, 5.0, "catalogue"),  # only the ALT of the ordered panel repeated
])
def test_the_billed_line_of_an_order_repeated_whole_is_at_stake(engine: Engine, mllp: int, prior: str, ordered: str,
                                                                billed: float, price: float, source: str) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", prior, ts(2), obx=ALT_OBX))
    hl7.send(order("HOSPB", "B1", ordered, ts(0)))
    assert "not payable" in hl7.send(result("HOSPB", "B1", ordered, ts(0, 10), obx=ALT_OBX))
    [flag] = not_payable(engine)
    assert flag["analytes"] == ["ALT"]
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge = {"resourceType": "ChargeItem", "id": "charge-b1", "status": "billed",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250305001"}]},
              "subject": {"reference": flag["patient"]}, "quantity": {"value": 1},
              "priceOverride": {"value": billed, "currency": "CNY"}, "service": [{"reference": flag["result"]}]}
    res = http.put("/fhir/ChargeItem/charge-b1", content=fhirjson.dumps(charge),  # the amount as its decimal text
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert res.status_code in (200, 201), res.text
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (price, source)


@pytest.mark.parametrize(("status", "billed"), [("planned", False), ("billable", True), ("unknown", False)])
def test_only_a_line_the_settlement_counts_is_billed(engine: Engine, mllp: int, status: str, billed: bool) -> None:
    """A planned charge line (not billed yet) is not the money at stake: the settlement counts only
    billable and billed lines (``engine.insurance.charges``), and so does the flag."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(2)))
    hl7.send(order("HOSPB", "B1", CBC, ts(0)))
    hl7.send(result("HOSPB", "B1", CBC, ts(0, 10)))
    [flag] = not_payable(engine)
    catalogue = stored_fen(flag["price"])
    http = TestClient(create_app(engine))
    token = engine.auth.issue_system_token("his-b", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    charge = {"resourceType": "ChargeItem", "id": "charge-b1", "status": status,
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": flag["patient"]}, "quantity": {"value": 1},
              "priceOverride": {"value": catalogue + 3, "currency": "CNY"}, "service": [{"reference": flag["result"]}]}
    res = http.put("/fhir/ChargeItem/charge-b1", content=fhirjson.dumps(charge),  # the amount as its decimal text
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    assert res.status_code in (200, 201), res.text
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == ((catalogue + 3, "charge") if billed else (catalogue, "catalogue"))
