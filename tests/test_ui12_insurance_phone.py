"""The settlement and indicators page on a phone (360 px) in headless Chromium: the month's
indicators as cards with each figure under its name, the charts and the settlement's steps inside
the screen, nothing scrolling sideways; the figures shown are the API's."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests import test_insurance_ui as ins
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import PHONE_360, outside, shot

server, browser, pytestmark, march, engine = ins.server, ins.browser, ins.pytestmark, ins.march, ins.engine


def test_indicators_and_settlement_fit_a_phone(march: TestClient, engine: Engine, server: str, browser: Browser,
                                               tmp_path: Path) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", **PHONE_360)
    ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    assert outside(browser, PHONE_360) == []
    # a card per indicator: its value under "数值 Value", and the same value the API reports
    card = browser.eval("(() => { const tr = document.querySelector('#indicators tr[data-measure=huren-county-treatment-rate]');"
                        "return [tr.getBoundingClientRect().right, tr.cells[2].innerText,"
                        "getComputedStyle(tr.cells[2], '::before').content]; })()")
    assert card[0] <= PHONE_360["width"] and card[1] == "66.67%" and card[2] == '"数值 Value"'
    assert browser.eval("document.querySelector('#indicators thead').getBoundingClientRect().height") <= 1
    # a rate of exactly 100 % is a rate: FNYLWSY treated every admission inside the county (1 of 1);
    # the chart had labelled it "1", like a count
    labels = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-county-treatment-rate] text')]"
                          ".map(t => t.textContent)")
    assert "阜宁县益林镇中心卫生院（FNYLWSY）" in labels and "100.00%" in labels and "1" not in labels, labels
    counts = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-duplicate-test-count] text')]"
                          ".map(t => t.textContent)")
    assert "1" in counts and not any(t.endswith("%") for t in counts)  # a count stays a number
    shot(browser, tmp_path, "ui12-insurance-360.png", PHONE_360)
