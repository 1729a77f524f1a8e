"""pages31: the auditors' indicators on /ui/insurance for a month with nothing to count, in headless
Chromium through the real app (thirty-first round).

The page opens on the month before this one. A site whose feeds have not reached that month (the
demo feeds are of March 2025) showed a table of "—" and zeros and nothing else: an auditor cannot
tell a month of no admissions from a month the page failed to compute. What is asserted is the
sentence she reads above the table, and that it is tied to the table for a screen reader.
"""

from __future__ import annotations

from typing import Any

from tests.test_insurance_ui import sign_in
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures


def test_an_empty_month_says_what_its_dashes_mean(engine: Any, server: str, browser: Browser) -> None:  # noqa: F811
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/insurance", "wang.empty", "auditor")
    browser.wait_for("document.querySelectorAll('#indicators tbody tr').length > 0")
    values = browser.eval("[...document.querySelectorAll('#indicators tbody tr')].map(r => r.cells[2].innerText)")
    assert "—" in values, values  # a rate with a zero denominator has no score
    assert browser.eval("!document.querySelector('#ind-empty').hidden")
    said = browser.eval("document.querySelector('#ind-empty').innerText")
    assert "分母为 0" in said and "不等于 0" in said, said
    assert browser.eval("document.querySelector('#indicators').getAttribute('aria-describedby')") == "ind-empty"
    # what a person sees: the sentence is on the screen, not only in the document
    box = browser.eval("(() => { const r = document.querySelector('#ind-empty').getBoundingClientRect();"
                       " return [r.width, r.height]; })()")
    assert box[0] > 0 and box[1] > 0, box
