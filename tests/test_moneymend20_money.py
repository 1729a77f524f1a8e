"""Money after money20 (moneymend20; the review's probes, rv-money20): a charge line naming two tests
however it names them (the second by its Observation, or a test outside the catalogue) is no one
test's price; an HL7 credit (DFT FT1-6 CD) nets its charge in the settlement. MLLP + HTTP, both stores."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests import test_money19_charge_lines
from tests.test_convert_families import PV1, message, msh, post
from tests.test_insurance_hl7 import PID_ACCOUNT
from tests.test_insurance_tiers import REQUIRED_LINE, SHIPPED
from tests.test_money19_charge_lines import flagged
from tests.test_money20_charge_tests import put_shared
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import ALT, not_payable, order, result, ts

engine = test_money19_charge_lines.engine


def alt_observation(engine: Engine, mllp: int) -> str:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPB", "B2", ALT, ts(0)))
    hl7.send(result("HOSPB", "B2", ALT, ts(0, 11), "OBX|1|NM|ALT^丙氨酸氨基转移酶^L||31|U/L|||||F"))
    [sr] = engine.repository.search("ServiceRequest", [("identifier", "B2")]).resources
    [dr] = [r for r in engine.repository.search("DiagnosticReport", []).resources
            if any(b.get("reference") == f"ServiceRequest/{sr['id']}" for b in r.get("basedOn") or ())]
    return str(dr["result"][0]["reference"])


def local_report(engine: Engine, mllp: int) -> str:
    """A result of a test outside the recognition catalogue (a local urine routine)."""
    hl7 = Sender(mllp)
    item = "ZZU1^尿常规^L"
    hl7.send(order("HOSPB", "B3", item, ts(0)))
    hl7.send(result("HOSPB", "B3", item, ts(0, 11), "OBX|1|NM|PH^酸碱度^L||6.0||||||F"))
    [sr] = engine.repository.search("ServiceRequest", [("identifier", "B3")]).resources
    [dr] = [r for r in engine.repository.search("DiagnosticReport", []).resources
            if any(b.get("reference") == f"ServiceRequest/{sr['id']}" for b in r.get("basedOn") or ())]
    return f"DiagnosticReport/{dr['id']}"


def test_a_line_naming_the_count_report_and_the_alt_observation(engine: Engine, mllp: int) -> None:
    """The same ¥50 line for two tests, the ALT named by its Observation (ChargeItem.service allows
    it): still two tests, so not the count's price."""
    flag = flagged(engine, mllp)
    catalogue = flag["price"]
    alt = alt_observation(engine, mllp)
    http = TestClient(create_app(engine))
    put_shared(engine, http, "both", flag["patient"], [flag["result"], alt], 50.0)
    [flag] = not_payable(engine)
    assert (flag["price"], flag["price_source"]) == (catalogue, "catalogue"), flag


def test_a_line_naming_the_count_and_a_test_outside_the_catalogue(engine: Engine, mllp: int) -> None:
    """¥50 for the count and a local urine test: no one test's price either."""
    flag = flagged(engine, mllp)
    catalogue = flag["price"]
    other = local_report(engine, mllp)
    http = TestClient(create_app(engine))
    put_shared(engine, http, "both", flag["patient"], [flag["result"], other], 50.0)
    [flag] = not_payable(engine)
    assert (flag["price"], flag["price_source"]) == (catalogue, "catalogue"), flag


@pytest.mark.parametrize("credited", ["-2300.50", "2300.50"])
def test_an_hl7_credit_reverses_its_charge_in_the_settlement(settings: Settings, tmp_path: Path, credited: str) -> None:
    """DFT^P03: T-5001 charged (CG ¥2300.50) then credited (CD, the same line reversed): the fund's
    spending must not count the reversed ¥2300.50 -- whichever sign the sender gives a credit's
    amount (a positive one, the transaction type giving the sign, was counted as a second charge:
    the lead's mend after moneymend20)."""
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    rules = (SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, "fund_pays: 0.70")
             .replace("basis: fund_share", "basis: amount")
             .replace('employee: "36000000.00"', 'employee: "2000.00"')
             .replace('resident: "54000000.00"', 'resident: "1000.00"'))
    (site / "insurance" / "settlement.yaml").write_text(rules, "utf-8")
    with Engine(settings.with_(site=site)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his-feed", "system/*.cruds")
        bar = message(
            msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20261101", PID_ACCOUNT, PV1,
            "IN1|1|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260101|20261231||"
            "310^职工基本医疗保险^CNYBXZ",
        )
        dft = message(
            msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20261101", PID_ACCOUNT, PV1,
            "FT1|1|T-5001||20261101100000|20261101120000|CG|SURG-01^阑尾切除术^L||1|1||2300.50&CNY",
            "FT1|2|T-5002||20261101130000||CG|DRUG-7^头孢曲松^L|||2||40&CNY",  # FT1-12 the unit: 2 x 40
        )
        credit = message(
            msh("DFT^P03^DFT_P03", "S3"), "EVN|P03|20261102", PID_ACCOUNT, PV1,
            f"FT1|1|T-5001-R||20261102100000|20261102100000|CD|SURG-01^阑尾切除术^L||1|1||{credited}&CNY",
        )
        assert post(http, bar) == "AA" and post(http, dft) == "AA" and post(http, credit) == "AA"
        auditor = {"Authorization": "Bearer " + eng.auth.issue_system_token(
            "insurer", "system/DetectedIssue.rs system/ChargeItem.rs", kind="auditor")}
        res = http.get("/reports/settlement?year=2026", headers=auditor)
        assert res.status_code == 200, res.text
        report: dict[str, Any] = res.json()
    (community,) = report["regions"][0]["communities"]
    emp = next(s for s in community["settlements"] if s["insurance_type"] == "employee")
    assert D(str(emp["spending"])) == D("80.00"), (emp["spending"], report["charges"])
