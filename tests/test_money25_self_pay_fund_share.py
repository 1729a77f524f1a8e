"""money25: an upheld self-pay flag is deducted at what the fund paid, not at what the patient paid.

DOMAIN.md: R05/R07 re-tests are allowed but "not payable by the fund (self-pay)". The bureau recovers
from the hospital what the fund paid for such a test: the billed line's fund share (统筹基金支付,
``urn:huren:StructureDefinition:fund-share``). A line billed 20.00 of which the fund paid 12.00 is a
deduction of 12.00 (the patient's own 8.00 was never the fund's); a line billed wholly to the patient
(fund share 0.00) is a deduction of 0.00. Before, both were deducted at the full 20.00.
A line that states no fund share still deducts its whole amount (what the fund paid is not known).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc
from tests.test_reports_duplicates import bearer

FUND_SHARE = "urn:huren:StructureDefinition:fund-share"


def _line(cid: str, patient: str, result: str, amount: str, share: str | None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": cid, "status": "billed",
        "code": {"coding": [{"system": "urn:huren:code:price", "code": "250101015", "display": "血细胞分析"}]},
        "subject": {"reference": patient}, "occurrenceDateTime": "2026-03-03T09:00:00+08:00",
        "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": B}},
        "priceOverride": {"value": float(amount), "currency": "CNY"}, "service": [{"reference": result}]}
    if share is not None:
        line["extension"] = [{"url": FUND_SHARE, "valueMoney": {"value": float(share), "currency": "CNY"}}]
    return line


def test_self_pay_deduction_is_the_fund_share_of_the_billed_line(engine: Any) -> None:
    w = World(engine)
    people = [(w.patient(A, p, mrn=f"A-{i}"), w.patient(B, p, mrn=f"B-{i}")) for i, p in enumerate((ALICE, BOB))]
    results = []
    for (at_a, at_b) in people:
        w.report(A, at_a, cbc(A), "2026-03-01T09:00:00+08:00")
        order = w.order(B, at_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R07",))  # patient asks: self-pay
        results.append(w.report(B, at_b, cbc(B), "2026-03-03T09:00:00+08:00", order=order))
    http = TestClient(create_app(engine))
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
    # Alice's repeat billed 20.00, the fund paid 12.00; Bob's billed 20.00 wholly to himself
    for cid, (_, at_b), res, share in (("ci-a", people[0], results[0], "12.00"), ("ci-b", people[1], results[1], "0.00")):
        ref = f"DiagnosticReport/{res.resource['id']}"
        put = http.put(f"/fhir/ChargeItem/{cid}", json=_line(cid, at_b, ref, "20.00", share), headers=system)
        assert put.status_code in (200, 201), put.text

    rows = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    assert sorted((r["reason"], r["status"], r["price"], r["price_source"]) for r in rows) == [
        ("R07", "self_pay", 20.0, "charge")] * 2
    for r in rows:
        res = http.post(f"/reports/duplicates/{r['id']}/review",
                        json={"decision": "upheld", "reason": "复核属实"}, headers=bearer(engine))
        assert res.status_code == 200, res.text

    got = http.get("/reports/deductions", params={"institution": B, "month": "2026-03", "_format": "csv"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert got.status_code == 200, got.text
    table = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    body = [row for row in table[1:] if row and row[0].startswith("ded-")]
    by_patient = {row[21]: row for row in body}
    if engine.repository.params.get("ChargeItem", "service") is None:
        return  # the deployment cannot find the billed line (nor its share) from the list
    assert D(by_patient[people[0][1]][9]) == D("12.00")
    assert D(by_patient[people[1][1]][9]) == D("0.00")
    total = next(row for row in table if row and row[0] == "合计")
    assert D(total[5]) == D("12.00")
    # the policy sentence says what was deducted
    assert "基金支付" in by_patient[people[0][1]][22]


def test_self_pay_line_without_a_fund_share_is_deducted_whole(engine: Any) -> None:
    w = World(engine)
    at_a, at_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, at_a, cbc(A), "2026-03-01T09:00:00+08:00")
    order = w.order(B, at_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R05",))
    res = w.report(B, at_b, cbc(B), "2026-03-03T09:00:00+08:00", order=order)
    http = TestClient(create_app(engine))
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
    ref = f"DiagnosticReport/{res.resource['id']}"
    assert http.put("/fhir/ChargeItem/ci-c", json=_line("ci-c", at_b, ref, "20.00", None),
                    headers=system).status_code in (200, 201)
    (row,) = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    assert http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "x"},
                     headers=bearer(engine)).status_code == 200
    got = http.get("/reports/deductions", params={"institution": B, "month": "2026-03"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert got.status_code == 200, got.text
    # the List entry's own amount (moneyfix25: the text's '"value":20.0' was also the DetectedIssue's
    # evidence price, found whatever the deduction was)
    lst = got.json()["entry"][0]["resource"]
    (entry,) = lst["entry"]
    ext = {e["url"]: e for e in entry["extension"][0]["extension"]}
    assert D(str(ext["amount"]["valueMoney"]["value"])) == D("20.00")
    assert "扣回统筹基金支付部分" not in ext["policy"]["valueString"]
    total = {e["url"]: e for e in lst["extension"][0]["extension"]}["total"]
    assert D(str(total["valueMoney"]["value"])) == D("20.00")
