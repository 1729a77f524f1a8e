"""Money after money20 (moneymend20; the review's probes, rv-money20): a charge line naming two tests
however it names them (the second by its Observation, or a test outside the catalogue) is no one
test's price; an HL7 credit (DFT FT1-6 CD) nets its charge in the settlement. MLLP + HTTP, both stores."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests import test_money19_charge_lines
from tests.test_convert_families import PV1, message, msh, post
from tests.test_insurance_hl7 import BAR, DFT, PID_ACCOUNT, hl7_billing_site, settlement
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
    with Engine(settings.with_(site=hl7_billing_site(tmp_path))) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his-feed", "system/*.cruds")
        credit = message(
            msh("DFT^P03^DFT_P03", "S3"), "EVN|P03|20261102", PID_ACCOUNT, PV1,
            f"FT1|1|T-5001-R||20261102100000|20261102100000|CD|SURG-01^阑尾切除术^L||1|1||{credited}&CNY",
        )
        assert post(http, BAR) == "AA" and post(http, DFT) == "AA" and post(http, credit) == "AA"
        report = settlement(eng, http)
    (community,) = report["regions"][0]["communities"]
    emp = next(s for s in community["settlements"] if s["insurance_type"] == "employee")
    assert D(str(emp["spending"])) == D("80.00"), (emp["spending"], report["charges"])
