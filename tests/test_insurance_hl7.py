"""Charges from the HL7 billing feeds settle like FHIR-posted ones: BAR^P01 (account, IN1 coverage
with the insurance type in IN1-15) and DFT^P03 (FT1 charge lines) over POST /hl7v2, then
``GET /reports/settlement``. The FT1 extended amount is the line's total: it is not multiplied by
the quantity."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert_families import PID, PV1, message, msh, post
from tests.test_insurance_tiers import REQUIRED_LINE, SHIPPED

PID_ACCOUNT = PID.replace("|13800000000", "|13800000000|||||ACC-88^^^FNXRMYY^AN")
# the account's employee coverage (IN1-15 310), and two charge lines: T-5001 ¥2300.50, T-5002 two at ¥40
BAR = message(
    msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20261101", PID_ACCOUNT, PV1,
    "IN1|1|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260101|20261231||"
    "310^职工基本医疗保险^CNYBXZ",
)
DFT = message(
    msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20261101", PID_ACCOUNT, PV1,
    "FT1|1|T-5001||20261101100000|20261101120000|CG|SURG-01^阑尾切除术^L||1|1||2300.50&CNY",
    "FT1|2|T-5002||20261101130000||CG|DRUG-7^头孢曲松^L|||2||40&CNY",  # FT1-12 the unit amount (v2.5.1)
)


def hl7_billing_site(tmp_path: Path) -> Path:
    """``tmp_path/site``: the shipped settlement rules with the required overspend share set, settled on the
    charges' amount, and small budgets (employee 2,000, resident 1,000). moneymend20's credit test's too."""
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    rules = (SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, "fund_pays: 0.70")
             .replace("basis: fund_share", "basis: amount")
             .replace('employee: "36000000.00"', 'employee: "2000.00"')
             .replace('resident: "54000000.00"', 'resident: "1000.00"'))
    (site / "insurance" / "settlement.yaml").write_text(rules, "utf-8")
    return site


def settlement(engine: Engine, http: TestClient) -> dict[str, Any]:
    """``GET /reports/settlement?year=2026`` as the insurer's auditor, answered 200."""
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "insurer", "system/DetectedIssue.rs system/ChargeItem.rs", kind="auditor")}
    res = http.get("/reports/settlement?year=2026", headers=auditor)
    assert res.status_code == 200, res.text
    report: dict[str, Any] = res.json()
    return report


def test_dft_charges_settle_on_their_amount_with_the_coverage_type(settings: Settings, tmp_path: Path) -> None:
    with Engine(settings.with_(site=hl7_billing_site(tmp_path))) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
        assert post(http, BAR) == "AA" and post(http, DFT) == "AA"
        report = settlement(engine, http)
    (community,) = report["regions"][0]["communities"]
    emp = next(s for s in community["settlements"] if s["insurance_type"] == "employee")
    assert emp["lines"] == 2 and D(str(emp["spending"])) == D("2380.50")  # 2300.50 + 80 (two at 40)
    steps = [(s["step"], D(str(s["amount"]))) for s in emp["steps"]]
    assert steps[5:] == [
        ("overspend", D("380.50")),
        ("overspend-tier", D("70.00")), ("overspend-tier", D("60.00")), ("overspend-tier", D("0.00")),
        ("fund-share-of-overspend", D("130.00")), ("community-bears", D("250.50")),
        ("fund-pays", D("2130.00")), ("year-end", D("930.00")),
    ]
    assert report["charges"] == {"counted": 2, "excluded": []}
