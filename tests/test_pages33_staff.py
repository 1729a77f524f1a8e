"""pages33: what the auditor reads after the demo month (the feeds ``make run`` posts, sent as
received through the real ingest path) in headless Chromium at 1366x768 and 390x844.

- A result's status is said in the words the resident's page uses for it: R4 ``cancelled`` ("not
  started or not completed"; OBX-11 X cannot be obtained) is 未完成 -- the staff pages said 已取消,
  the resident's 未完成 -- and ``amended`` (OBX-11 A or B, the appended report that changes no value)
  已更新, where both pages had said the stronger 已更正. One short word per status: the staff words
  (``insurance/words.yaml`` ``result_statuses``, served with the session) and the resident's marks
  (``static/me/i18n.js`` ``obsMark``) must not drift apart again.
- The demo feeds send the TCM hospital's outpatient department as ``MZNK^^^FNZYY`` (facility in
  PL-4): the department column reads MZNK, not "MZNK FNZYY" (the facility had been sent in PL-2,
  the room).
Screenshots: HUREN_SCREENSHOTS, else none.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from mappings.pagewords import PageWords
from tests.test_reports_ui import Browser, browser, pytestmark, server, sign_in_page  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "examples" / "feeds"


def _shot(browser: Browser, name: str, whole: bool = True) -> None:  # noqa: F811
    folder = os.environ.get("HUREN_SCREENSHOTS")
    if folder:
        shot = browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=whole)["data"]
        (Path(folder) / f"{name}.png").write_bytes(base64.b64decode(shot))


def _resident_marks() -> dict[str, str]:
    """The resident page's short mark per status (zh ``obsMark`` of static/me/i18n.js), as the page has it."""
    text = (ROOT / "engine" / "api" / "static" / "me" / "i18n.js").read_text(encoding="utf-8")
    (zh,) = re.findall(r"obsMark: \{([^}]*)\}", text)[:1]
    return dict(re.findall(r'"?([\w-]+)"?: "([^"]*)"', zh))


def test_the_staff_and_the_resident_say_a_status_in_one_word() -> None:
    staff = PageWords(None).current()["result_statuses"]
    marks = _resident_marks()
    assert {"cancelled", "amended", "corrected"} <= marks.keys() & staff.keys(), (marks, staff)
    for status in marks.keys() & staff.keys():
        if marks[status] != "初步":  # the resident's 初步 stands for registered and partial alike
            assert staff[status].split(" ")[0] == marks[status], (status, staff[status], marks[status])
    assert staff["cancelled"].startswith("未完成") and staff["amended"].startswith("已更新")


def test_the_auditor_reads_the_demo_month_in_the_resident_pages_words(engine: Any, server: str,  # noqa: F811
                                                                      browser: Browser) -> None:  # noqa: F811
    for path in sorted(FEEDS.glob("*.hl7")):
        assert b"MSA|AA|" in engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}")
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in_page(browser, server, engine)
    said = browser.eval("['cancelled', 'amended', 'corrected', 'entered-in-error']"
                        ".map(s => window.hurenWords.said('result_statuses', s))")
    assert said == ["未完成 not completed", "已更新 amended", "已更正 corrected", "录入有误 entered in error"], said
    _shot(browser, "auditor-duplicates-desktop")
    browser.eval("(() => { const s = document.querySelector('#rate-by'); s.value = 'dept';"
                 "s.dispatchEvent(new Event('change')); return true; })()")
    browser.wait_for("document.querySelector('#rates').innerText.includes('MZNK')")
    rates = browser.eval("document.querySelector('#rates').innerText")
    assert "MZNK FNZYY" not in rates and "QK FNYLWSY" not in rates, rates
    browser.eval("[...document.querySelectorAll('#flags tbody tr')].find(r => r.innerText.includes('CBC')).click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    words = browser.eval("document.querySelector('#ev-prior-words').innerText")
    assert "状态 Status" in words and "已出报告 final" in words, words
    _shot(browser, "auditor-evidence-desktop")
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2, mobile=True)
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
    browser.eval("document.querySelector('#ev-prior-words').scrollIntoView(); true")
    _shot(browser, "auditor-evidence-phone", whole=False)
    browser.eval("window.scrollTo(0, 0); true")
    _shot(browser, "auditor-duplicates-phone", whole=False)
