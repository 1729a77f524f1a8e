"""rvmoney24b: the auditors' insurance page shows the primary-care share as the API states it
(rounded down to the hundredth of a percent) and "met" / "not met" as the API decides it, in headless
Chromium over a real server; the settlement's charges POSTed over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests import test_reports_ui as ui
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer
from tests.test_insurance_ui import screenshot, sign_in
from tests.test_reports_ui import Browser

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    folder = tmp_path / "site"
    (folder / "insurance").mkdir(parents=True)
    (folder / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    with Engine(settings.with_(site=folder)) as eng:
        yield eng


def post(engine: Engine, *lines: dict[str, Any]) -> None:
    http = TestClient(create_app(engine))
    auth = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-billing", "system/*.cruds"),
            "Content-Type": "application/fhir+json"}
    for line in lines:
        res = http.post("/fhir/ChargeItem", content=body({k: v for k, v in line.items() if k != "id"}), headers=auth)
        assert res.status_code == 201, res.text


def api_primary(engine: Engine) -> dict[str, Any]:
    http = TestClient(create_app(engine))
    res = http.get("/reports/settlement?year=2026", headers=insurer(engine))
    assert res.status_code == 200, res.text
    return dict(res.json()["regions"][0]["communities"][0]["primary_care"])


def page_primary(browser: Browser, server: str) -> str:
    browser.send("Page.navigate", url=f"{server}/ui/insurance?month=2026-03&year=2026")
    browser.wait_for("document.body.dataset.loaded === '1' && document.querySelector('#settlement') "
                     "&& document.querySelector('#settlement').dataset.loaded === '1'")
    line = browser.eval("[...document.querySelectorAll('#settlement p')].map(p => p.innerText)"
                        ".filter(t => t.includes('基层占比')).join('\\n')")
    assert line, browser.eval("document.querySelector('#settlement').innerText")
    return str(line)


def test_page_shows_the_rounded_down_share_and_met_as_the_api(engine: Engine, server: str, browser: Browser,
                                                               tmp_path: Path) -> None:
    yilin, county_hospital = ident("FNYLWSY"), ident("FNXRMYY")
    post(engine, charge("p", "2026-03-01T08:00:00+08:00", yilin, "159.99", "159.99", "resident"),
         charge("q", "2026-03-01T08:00:00+08:00", county_hospital, "840.01", "840.01", "resident"))
    pc = api_primary(engine)
    assert str(pc["share"]) in ("0.1599", "0.15990") and pc["met"] is False, pc
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1600, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    line = page_primary(browser, server)
    assert "15.99%" in line and "16%）" in line, line  # the share shown, and the minimum
    assert "未达标" in line and "NOT met" in line, line
    shots = Path(os.environ.get("HUREN_UI_SCREENSHOT_DIR") or tmp_path)
    screenshot(browser, shots / "rvmoney24b-primary-not-met.png")
    # one fen moved to the primary institution: exactly 16 %, met, on both
    post(engine, charge("r", "2026-03-02T08:00:00+08:00", yilin, "0.01", "0.01", "resident"),
         charge("s", "2026-03-02T08:00:00+08:00", county_hospital, "-0.01", "-0.01", "resident"))
    pc = api_primary(engine)
    assert pc["met"] is True, pc
    line = page_primary(browser, server)
    assert "16%" in line and "达标" in line and "未达标" not in line and "— met" in line, line
    screenshot(browser, shots / "rvmoney24b-primary-met.png")
