"""moneyfix25: the auditors' insurance page keeps March under the resident cover after a later BAR names
only the employee one, in headless Chromium over a real server (the account, its later update and the
lines sent as HL7 over POST /hl7v2). A BAR^P01 states the resident cover (城乡居民, to 2026-06-30); after
the switch a BAR^P05 states only the employee cover (职工, from 2026-07-01). 300.00 in March is the
resident fund's, 40.00 in September the employee fund's; on the base the later BAR replaced the
account's coverage list and March had no insurance type (the page showed the employee fund alone)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests import test_reports_ui as ui
from tests.test_convert_families import PV1, message, msh
from tests.test_convert_families import post as post_hl7
from tests.test_money25_coverage_page import engine, settlement_captions
from tests.test_money25_coverage_period import ACCOUNT
from tests.test_moneyfix25_rv_coverage import EMPLOYEE, RESIDENT
from tests.test_reports_ui import Browser

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark
__all__ = ["engine", "server", "browser"]


def test_page_keeps_the_earlier_months_under_the_earlier_coverage(engine: Engine, server: str, browser: Browser,
                                                                  tmp_path: Path) -> None:
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20260630"))) == "AA"
    assert post_hl7(http, message(msh("BAR^P05^BAR_P05", "S2"), "EVN|P05|20260701", ACCOUNT, PV1,
                                  EMPLOYEE.format(n=1, start="20260701", end="20271231"))) == "AA"
    dft = message(msh("DFT^P03^DFT_P03", "S3"), "EVN|P03|20260915", ACCOUNT, PV1,
                  "FT1|1|T-8001||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                  "FT1|2|T-8002||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")
    assert post_hl7(http, dft) == "AA"

    employee, resident, captions, text = settlement_captions(engine, server, browser, tmp_path,
                                                             "moneyfix25-coverage-accumulates")
    assert "1 条费用明细" in employee and "1 条费用明细" in resident, captions
    assert "支出 340.00" in text, text
    assert "no-insurance-type" not in text and "无险种" not in text, text
