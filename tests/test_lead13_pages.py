"""Two things a person reads on the pages, in headless Chromium through the real server:

- under a wide indicator chart's bars, an institution is its Chinese name (the axis had shown the
  last eight characters of "阜宁县人民医院（FNXRMYY）": "FNXRMYY）");
- the resident's lists are newest first by the day each record falls on and then its instant: an
  instant written in UTC ("Z") that is Beijing's next day no longer sorts under the day before
  (the text of "2026-03-04T20:00:00Z" sorts below "2026-03-04T22:00:00+08:00")."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests import test_insurance_ui as ins
from tests.test_insurance_indicators import COUNTY
from tests.test_reports_ui import Browser

server, browser, pytestmark, march, engine, sign_in = ins.server, ins.browser, ins.pytestmark, ins.march, ins.engine, ins.sign_in


def test_a_wide_chart_names_each_institution_under_its_bar(march: TestClient, engine: Engine, server: str,
                                                           browser: Browser) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1600, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
    browser.wait_for("document.querySelectorAll('svg[data-measure=huren-per-admission-cost] rect.bar').length === 2")
    # a chart 480 px or wider draws bars with a tick under each (narrower, a row per institution with its
    # whole name): widen this one and let the page draw it again, as when a tablet is turned
    browser.eval("document.querySelector('svg[data-measure=huren-per-admission-cost]').style.width = '760px';"
                 "window.dispatchEvent(new Event('resize')); true")
    browser.wait_for("[...document.querySelectorAll('svg[data-measure=huren-per-admission-cost] text')]"
                     ".some(t => t.getAttribute('y') === '174')")
    ticks = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-per-admission-cost] text')]"
                         ".filter(t => t.getAttribute('y') === '174').map(t => t.textContent)")
    assert sorted(ticks) == ["阜宁县人民医院", "阜宁县益林镇中心"], ticks
    titles = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-per-admission-cost] rect.bar title')]"
                          ".map(t => t.textContent)")
    assert any(t.startswith(f"阜宁县人民医院（{COUNTY}）") for t in titles), titles  # the full name and code on hover


def test_the_residents_lists_are_newest_first_by_beijing_day_then_instant(server: str, browser: Browser) -> None:
    browser.send("Page.navigate", url=server + "/ui/me/")
    browser.wait_for("!!(window.MeI18n && window.MeI18n.newestFirst)")
    written = ["2026-03-04T22:00:00+08:00", "", "2026-03-04T20:00:00Z", "2026-03-04", "2026-03-05T03:00:00+08:00",
               "2026-03-03T23:59:00+08:00"]
    ordered = browser.eval(f"{json.dumps(written)}.sort(window.MeI18n.newestFirst)")
    # 20:00Z is 04:00 on the 5th in Beijing: after the 5th's 03:00, before anything of the 4th; undated last
    assert ordered == ["2026-03-04T20:00:00Z", "2026-03-05T03:00:00+08:00", "2026-03-04T22:00:00+08:00",
                       "2026-03-04", "2026-03-03T23:59:00+08:00", ""]
