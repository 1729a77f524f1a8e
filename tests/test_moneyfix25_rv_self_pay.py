"""rvmoney25: probes of money25's "an upheld self-pay flag is deducted at what the fund paid".

HL7 results and orders over a real MLLP socket (the order at HOSPB carries ORC-16 R07: the patient
asks, allowed, self-pay), the charge lines through PUT /fhir/ChargeItem, the flag upheld through
POST /reports/duplicates/{id}/review, the deduction list read at GET /reports/deductions (CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, result, ts
from tests.test_reports_duplicates import bearer

FUND_SHARE = "urn:huren:StructureDefinition:fund-share"
SYSTEM = "system/ChargeItem.cruds system/DiagnosticReport.rs system/Observation.rs"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def _flagged(engine: Engine, mllp: int) -> tuple[TestClient, dict[str, Any]]:
    """HOSPA's CBC two days ago, HOSPB's repeat today ordered with R07 (self-pay)."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(2)))
    hl7.send(order("HOSPB", "B1", CBC, ts(0), reason="R07^患者要求^HUREN"))
    hl7.send(result("HOSPB", "B1", CBC, ts(0, 10)))
    http = TestClient(create_app(engine))
    (row,) = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    assert (row["reason"], row["status"]) == ("R07", "self_pay"), row
    return http, row


def _put(engine: Engine, http: TestClient, cid: str, patient: str, service: str, amount: str,
         share: str | None, ident: str | None = None) -> None:
    token = engine.auth.issue_system_token("his-b", SYSTEM)
    charge: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": cid, "status": "billed",
        "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
        "subject": {"reference": patient}, "quantity": {"value": 1},
        "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": "HOSPB"}},
        "priceOverride": {"value": float(amount), "currency": "CNY"}, "service": [{"reference": service}]}
    if share is not None:
        charge["extension"] = [{"url": FUND_SHARE, "valueMoney": {"value": float(share), "currency": "CNY"}}]
    if ident:
        charge["identifier"] = [{"system": "urn:hospb:ft1", "value": ident}]
    res = http.put(f"/fhir/ChargeItem/{cid}", json=charge, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code in (200, 201), res.text


def _deducted(engine: Engine, http: TestClient, flag: str) -> tuple[D, D, str]:
    """Uphold the flag; its deduction (amount, flag price, policy) from the month's CSV list."""
    res = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": "复核属实"},
                    headers=bearer(engine))
    assert res.status_code == 200, res.text
    (row,) = [r for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"] if r["id"] == flag]
    day = ts(0)
    got = http.get("/reports/deductions", params={"institution": "HOSPB", "month": f"{day[:4]}-{day[4:6]}",
                                                  "_format": "csv"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert got.status_code == 200, got.text
    table = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    (line,) = [r for r in table[1:] if r and r[0].startswith("ded-")]
    return D(line[9]), D(str(row["price"])), line[22]


def _observation(engine: Engine, http: TestClient, report: str) -> str:
    token = engine.auth.issue_system_token("his-b", SYSTEM)
    dr = http.get(f"/fhir/{report}", headers={"Authorization": f"Bearer {token}"}).json()
    return dr["result"][0]["reference"]


def test_two_lines_billed_for_the_report_deduct_their_fund_shares_summed(engine: Engine, mllp: int) -> None:
    """Guard: the panel 20.00 (fund 12.00) and an add-on 10.00 (fund 10.00): the fund paid 22.00."""
    http, flag = _flagged(engine, mllp)
    _put(engine, http, "ci-1", flag["patient"], flag["result"], "20.00", "12.00")
    _put(engine, http, "ci-2", flag["patient"], flag["result"], "10.00", "10.00")
    amount, price, policy = _deducted(engine, http, flag["id"])
    assert (amount, price) == (D("22.00"), D("30"))
    assert "扣回统筹基金支付部分 22.00" in policy


def test_a_line_resent_with_its_share_corrected_deducts_the_latest(engine: Engine, mllp: int) -> None:
    """Guard: line T1 first billed to the fund (share 20.00), then resent under another id with the
    share corrected to 0.00 (the patient paid it): one line, the latest version, nothing to recover."""
    http, flag = _flagged(engine, mllp)
    _put(engine, http, "ci-old", flag["patient"], flag["result"], "20.00", "20.00", ident="T1")
    _put(engine, http, "ci-new", flag["patient"], flag["result"], "20.00", "0.00", ident="T1")
    amount, price, _ = _deducted(engine, http, flag["id"])
    assert (amount, price) == (D("0.00"), D("20"))


def test_a_reversal_and_a_self_pay_rebill_deduct_nothing(engine: Engine, mllp: int) -> None:
    """Guard: billed to the fund (20.00, fund 12.00), reversed (-20.00, fund -12.00), rebilled to the
    patient (20.00, fund 0.00): the fund paid nothing in the end."""
    http, flag = _flagged(engine, mllp)
    _put(engine, http, "ci-1", flag["patient"], flag["result"], "20.00", "12.00", ident="T1")
    _put(engine, http, "ci-1r", flag["patient"], flag["result"], "-20.00", "-12.00", ident="T1")
    _put(engine, http, "ci-2", flag["patient"], flag["result"], "20.00", "0.00", ident="T2")
    amount, price, _ = _deducted(engine, http, flag["id"])
    assert (amount, price) == (D("0.00"), D("20"))


def test_a_line_billed_on_an_observation_is_not_the_flags_money_nor_its_deduction(engine: Engine, mllp: int) -> None:
    """Guard: the panel on the DiagnosticReport (20.00, fund 0.00) and an add-on naming only one of its
    Observations (10.00, fund 10.00). Recognition prices the flag at the report's line (an observation
    alone is no entry of the test), and the list deducts that line's fund share, 0.00: the two agree."""
    http, flag = _flagged(engine, mllp)
    obs = _observation(engine, http, flag["result"])
    _put(engine, http, "ci-r", flag["patient"], flag["result"], "20.00", "0.00")
    _put(engine, http, "ci-o", flag["patient"], obs, "10.00", "10.00")
    amount, price, _ = _deducted(engine, http, flag["id"])
    assert (amount, price) == (D("0.00"), D("20"))


def test_the_signed_bundle_lists_the_fund_share_and_totals_it(engine: Engine, mllp: int) -> None:
    """Guard: the signed Bundle's List entry carries the deducted 12.00 (not the 20.00 billed), the
    List's total is 12.00, and the signature verifies."""
    from engine.insurance.deductions import verify_bundle

    http, flag = _flagged(engine, mllp)
    _put(engine, http, "ci-1", flag["patient"], flag["result"], "20.00", "12.00")
    _deducted(engine, http, flag["id"])
    day = ts(0)
    got = http.get("/reports/deductions", params={"institution": "HOSPB", "month": f"{day[:4]}-{day[4:6]}"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert got.status_code == 200, got.text
    bundle = got.json()
    lst = bundle["entry"][0]["resource"]
    (entry,) = lst["entry"]
    ext = {e["url"]: e for e in entry["extension"][0]["extension"]}
    assert D(str(ext["amount"]["valueMoney"]["value"])) == D("12.00")
    total = {e["url"]: e for e in lst["extension"][0]["extension"]}["total"]
    assert D(str(total["valueMoney"]["value"])) == D("12.00")
    assert verify_bundle(got.content, engine.audit.keys)


def test_a_line_with_no_fund_share_is_deducted_whole_in_the_list_entry(engine: Engine, mllp: int) -> None:
    """Guard (what test_money25_self_pay_fund_share's second test means to pin: its '"value":20.0' is
    found in the DetectedIssue's own evidence ``price`` extension whatever the deduction is): a line
    stating no fund share is deducted whole, 20.00, in the CSV row."""
    http, flag = _flagged(engine, mllp)
    _put(engine, http, "ci-1", flag["patient"], flag["result"], "20.00", None)
    amount, price, policy = _deducted(engine, http, flag["id"])
    assert (amount, price) == (D("20.00"), D("20"))
    assert "扣回统筹基金支付部分" not in policy
