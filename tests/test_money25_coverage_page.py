"""money25: the auditors' insurance page shows the settlement's lines under the Coverage in force on
their day, in headless Chromium over a real server (the account and its lines sent as HL7 over POST
/hl7v2). A resident insured as 城乡居民 until 2026-06-30 and as 职工 from 2026-07-01: 300.00 in March is
the resident fund's, 40.00 in September the employee fund's (before, both were the resident's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests import test_reports_ui as ui
from tests.test_convert_families import PV1, message, msh
from tests.test_convert_families import post as post_hl7
from tests.test_insurance_ui import screenshot, sign_in
from tests.test_money24_settlement import amount_site
from tests.test_money25_coverage_period import ACCOUNT
from tests.test_reports_ui import Browser

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark


def settlement_captions(engine: Engine, server: str, browser: Browser, tmp_path: Path,
                        shot: str) -> tuple[str, str, list[str], str]:
    """The auditor signed in, March 2026's insurance page as drawn at 1280 px (a screenshot ``shot``): the employee
    fund's and the resident fund's settlement captions (there must be those two), every caption, and the
    settlement's text. moneyfix25's page test reads it too."""
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1800, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.send("Page.navigate", url=f"{server}/ui/insurance?month=2026-03&year=2026")
    browser.wait_for("document.body.dataset.loaded === '1' && document.querySelector('#settlement') "
                     "&& document.querySelector('#settlement').dataset.loaded === '1'")
    captions = browser.eval("[...document.querySelectorAll('#settlement table.steps caption')].map(c => c.innerText)")
    text = str(browser.eval("document.querySelector('#settlement').innerText"))
    shots = Path(os.environ.get("HUREN_UI_SCREENSHOT_DIR") or tmp_path)
    screenshot(browser, shots / f"{shot}.png")
    by_name = {c.split("：")[0]: c for c in captions}
    assert len(by_name) == 2, captions
    employee = next(c for name, c in by_name.items() if "职工" in name)
    resident = next(c for name, c in by_name.items() if "居民" in name)
    return employee, resident, captions, text


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    folder = amount_site(tmp_path)
    with Engine(settings.with_(site=folder)) as eng:
        yield eng


def test_page_counts_each_line_under_its_days_coverage(engine: Engine, server: str, browser: Browser,
                                                       tmp_path: Path) -> None:
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    bar = message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                  "IN1|1|CN-RURAL^城乡居民医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20250101|20260630||"
                  "390^城乡居民基本医疗保险^CNYBXZ",
                  "IN1|2|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260701|20271231||"
                  "310^职工基本医疗保险^CNYBXZ")
    dft = message(msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20260915", ACCOUNT, PV1,
                  "FT1|1|T-8001||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                  "FT1|2|T-8002||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")
    assert post_hl7(http, bar) == "AA" and post_hl7(http, dft) == "AA"

    employee, resident, captions, text = settlement_captions(engine, server, browser, tmp_path,
                                                             "money25-coverage-by-day")
    assert "1 条费用明细" in employee and "1 条费用明细" in resident, captions
    assert "支出 340.00" in text, text
