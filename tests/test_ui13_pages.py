"""The staff and resident pages as a Chinese-speaking person reads them, in headless Chromium (a
zh-CN browser) through the real server:

- only the latest request's reply counts, everywhere through one helper (``hurenWords.latest``):
  a filtered list asked before another, whose reply lands last, does not replace the newer list;
- out-of-pocket share and spending growth, ``scoring: ratio`` measures, are read as percentages
  because their definitions say so (R5's ``Measure.scoringUnit`` "%" as the published
  cross-version extension); the MeasureReports keep the values computed (0.1857 "1");
- the settlement's steps, insurance types, institutions and picked dates are in Chinese words, and
  the page fits 360 px and 1280 px;
- the month and year a page starts at, the resident's instants, age and the family grant's dates are
  Beijing's, in a browser set to another zone (America/Los_Angeles) on 1 January 01:00 in Beijing.

Screenshots go to ``HUREN_UI13_SHOTS`` when it is set, for a person to look at."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests import browser_pool
from tests import test_insurance_ui as ins
from tests.test_jfix12_replies import Held, two_flags
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import DESKTOP, PHONE_360, outside, tap

server, browser, pytestmark, march, engine = ins.server, ins.browser, ins.pytestmark, ins.march, ins.engine
SCORING_UNIT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Measure.scoringUnit"
HAN = re.compile(r"[\u4e00-\u9fff]")


def shot(browser: Browser, tmp_path: Path, name: str, device: dict[str, Any]) -> None:
    """The page in screen-high pieces (a person reads a phone page a screen at a time), when
    screenshots are asked for (``HUREN_UI13_SHOTS`` or ``HUREN_SCREENSHOTS``: ``browser_pool.shooting``)."""
    if browser_pool.shooting("HUREN_UI13_SHOTS"):
        folder = Path(os.environ.get("HUREN_UI13_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        tall = browser.eval("document.documentElement.scrollHeight")
        for i in range(min(8, -(-tall // 1100))):
            clip = {"x": 0, "y": i * 1100, "width": device["width"], "height": min(1100, tall - i * 1100), "scale": 1}
            data = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
            (folder / f"{name}-{i}.png").write_bytes(base64.b64decode(data))
    browser.send("Emulation.setDeviceMetricsOverride", **device)


def test_a_list_asked_before_another_does_not_replace_it_when_its_reply_lands_last(engine: Any, server: str,
                                                                                   browser: Browser) -> None:
    two_flags(engine, server, browser)
    assert browser.eval("document.querySelectorAll('#flags tbody tr.flag').length") == 2
    held = Held(browser, "*from=2026-03-04*")
    try:  # from the 4th asked (its reply held), then up to the 3rd: the 4th's list lands last
        browser.eval("{ const f = document.querySelector('#filters'); f.elements.from.value = '2026-03-04';"
                     "f.elements.from.dispatchEvent(new Event('input')); } true")
        assert browser.eval("document.querySelector('#from-said').innerText") == "2026年3月4日"  # the picker in words
        tap(browser, "#apply")
        held.wait_held("from=2026-03-04")
        browser.eval("{ const f = document.querySelector('#filters'); f.elements.from.value = '';"
                     "f.elements.to.value = '2026-03-03'; } true")
        tap(browser, "#apply")
        browser.wait_for("document.querySelector('#flags-count').dataset.count === '1' && "
                         "document.querySelector('#flags tbody tr.flag button.open').innerText === '2026年3月3日'")
        held.release_landed("from=2026-03-04")
    finally:
        held.close()
    days = browser.eval("[...document.querySelectorAll('#flags tbody tr.flag button.open')].map(b => b.innerText)")
    assert days == ["2026年3月3日"], days
    assert browser.eval("document.querySelector('#from-said').innerText") == "不限 any"
    assert browser.eval("document.querySelector('#to-said').innerText") == "2026年3月3日"
    # the page keeps no counter of its own: each of the four requests is the helper's
    pages = Path(__file__).resolve().parent.parent / "engine" / "api" / "static" / "duplicates"
    code = (pages / "app.js").read_text("utf-8") + (pages / "insurance.js").read_text("utf-8")
    assert code.count("latest()") == 4 and not re.search(r"\b(generation|opening|indicatorsAsked|settlementAsked)\b", code)


def test_indicators_and_settlement_in_chinese_words_on_a_phone_and_a_desktop(march: TestClient, engine: Engine, server: str,
                                                                           browser: Browser, tmp_path: Path) -> None:
    measure = engine.repository.read("Measure", "huren-out-of-pocket-share")  # published at start
    unit = next(x for x in measure.get("extension", []) if x["url"] == SCORING_UNIT)["valueCodeableConcept"]["coding"][0]
    assert unit["system"] == "http://unitsofmeasure.org" and unit["code"] == "%"
    assert measure["scoring"]["coding"][0]["code"] == "ratio"
    api = {e["resource"]["measure"].split("/")[-1]: e["resource"]["group"][0]["measureScore"]
           for e in march.get("/reports/indicators", params={"month": "2026-03"}).json()["entry"]
           if e["resource"]["resourceType"] == "MeasureReport" and e["resource"]["group"][0].get("measureScore")}
    # the reports keep what was computed, in the unit it was computed in
    assert api["huren-out-of-pocket-share"]["value"] == 0.1857 and api["huren-out-of-pocket-share"]["unit"] == "1"
    assert api["huren-spending-growth"]["value"] == 0.3557

    for device, name in ((PHONE_360, "360"), (DESKTOP, "1280")):
        browser.send("Emulation.setDeviceMetricsOverride", **device)
        if name == "360":
            ins.sign_in(browser, server, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.min", "auditor")
        else:
            browser.eval("delete document.body.dataset.loaded; location.reload(); true")
            browser.wait_for("document.body.dataset.loaded === '1'")
        browser.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
        shown = dict(browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => [r.dataset.measure, r.cells[2].innerText])"))
        assert shown["huren-out-of-pocket-share"] == "18.57%" and shown["huren-spending-growth"] == "35.57%", shown
        assert shown["huren-county-treatment-rate"] == "66.67%" and shown["huren-two-way-referral-ratio"] == "0.5"
        alerts = browser.eval("document.querySelector('#alerts').innerText")
        assert "35.57%" in alerts and "阜宁县人民医院（FNXRMYY）" in alerts and "0.3557" not in alerts
        growth = browser.eval("[...document.querySelectorAll('svg[data-measure=huren-spending-growth] text')].map(t => t.textContent)")
        assert "32.51%" in growth and "阜宁县人民医院（FNXRMYY）" in growth, growth
        assert browser.eval("document.querySelector('#indicators-form output.said').innerText") == "2026年3月"
        # every step of the settlement says what it is in Chinese; the bars name the insurance types so
        steps = browser.eval("[...document.querySelectorAll('#settlement table.steps tr')].map(r => [r.dataset.step, r.cells[0].innerText])")
        assert len(steps) == 26 and all(HAN.match(words) for _, words in steps), steps
        said = dict(steps)
        assert said["overspend-tier"].startswith("超支 10% 以上部分：基金分担 0%") and said["year-end"].startswith("年终清算（少补）")
        bars = browser.eval("[...document.querySelectorAll('#settlement svg text')].map(t => t.textContent)")
        assert "居民 支出" in bars and not any("employee" in b or "resident" in b for b in bars), bars
        totals = browser.eval("document.querySelector('#settlement p.totals').innerText")
        assert totals.startswith("合计（各险种之和）：预算 9,000.00 · 支出 8,600.00 · 已预付 5,400.00 · 基金全年支付 8,510.00")
        # the year-end fund by fund (fund35): the two funds' 3,600 and 490 are never netted to 3,110
        year_end = browser.eval("document.querySelector('#settlement p.year-end').innerText")
        assert year_end.startswith("年终清算（各基金分别结算）：职工医保：医共体退还基金 490.00 元；居民医保：基金补付 3,600.00 元"), year_end
        assert "3,110" not in year_end and "3,110" not in totals, (year_end, totals)
        assert outside(browser, device) == [], name
        shot(browser, tmp_path, f"ui13-insurance-{name}", device)


# 2027-01-01 01:00 in Beijing is still 31 December in Los Angeles (and in UTC)
FAKE_CLOCK = """(() => {
  const T = Date.parse("2026-12-31T17:00:00Z"), Real = Date;
  class Clock extends Real { constructor(...a) { super(...(a.length ? a : [T])); } static now() { return T; } }
  window.Date = Clock;
})();"""


def test_a_browser_abroad_on_new_years_night_still_reads_beijing_days(march: TestClient, engine: Engine, server: str,
                                                                     browser: Browser) -> None:
    browser.send("Page.enable")
    browser.send("Emulation.setTimezoneOverride", timezoneId="America/Los_Angeles")
    browser.send("Page.addScriptToEvaluateOnNewDocument", source=FAKE_CLOCK)
    ins.sign_in(browser, server, engine, "/ui/insurance", "zhao.min", "auditor")
    assert browser.eval("new Date().getFullYear()") == 2026  # the browser's own calendar is still in 2026
    # last month and this year are Beijing's: December 2026 and 2027 (the browser's had given November, 2026)
    assert browser.eval("document.querySelector('#indicators-form').elements.month.value") == "2026-12"
    assert browser.eval("document.querySelector('#settlement-form').elements.year.value") == "2027"
    assert browser.eval("document.querySelector('#indicators-form output.said').innerText") == "2026年12月"

    # the resident's page: an instant is said in Beijing time, on Beijing's day; the family grant's
    # end date starts a year from Beijing's today and may not be before it
    browser.send("Page.navigate", url=f"{server}/ui/me/")
    # grantForm (family.js) speaks through W (app.js, the last script): wait for both, or a loaded
    # machine runs the check between the two scripts (ReferenceError: W is not defined)
    browser.wait_for("window.MeI18n && typeof grantForm === 'function' && typeof W === 'function'")
    said = browser.eval("['2026-03-04T20:00:00Z', '2026-03-04T20:00:00+08:00', '2026-03-04']"
                        ".map(v => [MeI18n.formatDate(v, 'zh-CN', true), MeI18n.localDay(v)])")
    assert said == [["2026年3月5日 04:00", "2026-03-05"], ["2026年3月4日 20:00", "2026-03-04"], ["2026年3月4日", "2026-03-04"]]
    end = browser.eval("(() => { const f = grantForm(); const e = f.querySelector('#fam-end');"
                       "return [e.value, e.min, f.querySelector('#fam-end-said').innerText]; })()")
    assert end == ["2028-01-01", "2027-01-01", "2028年1月1日"], end
