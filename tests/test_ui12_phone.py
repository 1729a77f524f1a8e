"""The auditors' page as a person uses it, at phone width (360 and 414 px) and on a desktop, in
headless Chromium: typed into and tapped (DevTools input events at the element's place on the
screen, not ``element.click()``), and checked by what is on the screen -- every flag inside the
viewport, nothing scrolling sideways, Chinese first, dates as people in China write them -- and by
the API's own figures (the page's count is the report's count, every flag can be listed).

Screenshots go to ``HUREN_UI12_SHOTS`` (or ``HUREN_SCREENSHOTS``) when it is set, for a person to look
at; none is taken otherwise (suite45e)."""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine.auth.staff import StaffDirectory
from tests import browser_pool
from tests import test_reports_ui as ui
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft, national_id
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_staff_signin import rfc6238

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark

PHONE_360 = {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}
PHONE_414 = {"width": 414, "height": 896, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}


def shot(browser: Browser, tmp_path: Path, name: str, device: dict[str, Any]) -> None:
    """The whole page as a PNG, when screenshots are asked for (``HUREN_UI12_SHOTS`` or
    ``HUREN_SCREENSHOTS``: ``browser_pool.shooting``); a capture beyond the viewport leaves Chromium's
    emulated screen misplaced for later input events, so the device is set again after it."""
    if browser_pool.shooting("HUREN_UI12_SHOTS"):
        folder = Path(os.environ.get("HUREN_UI12_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        data = base64.b64decode(browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        assert data.startswith(b"\x89PNG")
        (folder / name).write_bytes(data)
    browser.send("Emulation.setDeviceMetricsOverride", **device)


def tap(browser: Browser, selector: str) -> None:
    """A finger (a mouse press) on the middle of the element as it is laid out on the screen."""
    box = browser.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
                       "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2, r.width, r.height]; })()")
    assert box[2] > 0 and box[3] > 0, f"{selector} is not on the screen"
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


def type_into(browser: Browser, selector: str, words: str) -> None:
    tap(browser, selector)
    browser.send("Input.insertText", text=words)


def key(browser: Browser, name: str, code: int, typed: str = "") -> None:
    browser.send("Input.dispatchKeyEvent", type="keyDown", key=name, code=name, windowsVirtualKeyCode=code, text=typed)
    browser.send("Input.dispatchKeyEvent", type="keyUp", key=name, code=name, windowsVirtualKeyCode=code)


def sign_in(browser: Browser, server: str, engine: Any, device: dict[str, Any], role: str = "auditor",
            name: str = "wang.li") -> str:
    """Create the account ``name``, open the page (sent to sign in), type name, password and code, tap
    the button; the TOTP secret is returned for a second sign-in. Tests sharing an engine each sign in
    under a name of their own (a TOTP code is taken once per account)."""
    secret = StaffDirectory(engine.settings.data_dir).add(
        name, role=role, institution="YBJ", password=AUDITOR_PASSWORD, display="王丽",
        roles=engine.staff.roles).secret
    browser.send("Page.enable")
    browser.send("Emulation.setDeviceMetricsOverride", **device)
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    type_into_signin(browser, name, rfc6238(secret, time.time()))
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
    return secret


def type_into_signin(browser: Browser, name: str, code: str) -> None:
    if browser.eval("document.querySelector('#name').value") != name:
        type_into(browser, "#name", name)
    type_into(browser, "#password", AUDITOR_PASSWORD)
    type_into(browser, "#code", code)
    tap(browser, "#signin-button")


# what sticks out of the viewport: the page's own width, and every visible element's right edge
def outside(browser: Browser, device: dict[str, Any]) -> list[str]:
    """What sticks out of the device's screen (a phone browser zooms out to fit a too-wide page, so
    ``innerWidth`` grows with it: the device's own width is the measure). The charts redraw a moment
    after the width changes: up to 3 s is given for that."""
    check = OUTSIDE.replace("WIDTH", str(device["width"]))
    deadline = time.time() + 3
    while (out := list(browser.eval(check))) and time.time() < deadline:
        time.sleep(0.1)
    return out


OUTSIDE = """(() => {
  const w = WIDTH, out = [];
  if (window.innerWidth > w) out.push('viewport ' + window.innerWidth + ' > ' + w);
  if (document.documentElement.scrollWidth > w) out.push('page ' + document.documentElement.scrollWidth + ' > ' + w);
  for (const e of document.querySelectorAll('main *, header *')) {
    const r = e.getBoundingClientRect();
    if (!r.width || e.closest('[hidden]') || getComputedStyle(e).visibility === 'hidden') continue;
    let clipped = false;  // inside a visually hidden box (a screen reader's table header): not on the screen
    for (let a = e.parentElement; a && !clipped; a = a.parentElement) clipped = a.getBoundingClientRect().width <= 1;
    if (clipped) continue;
    if (r.left < -1 || r.right > w + 1) out.push((e.id || e.tagName) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  return out;
})()"""


def api_report(browser: Browser, query: str = "") -> dict[str, Any]:
    """The report as the API gives it to the same signed-in browser."""
    return browser.eval(f"fetch('/reports/duplicates{query}', {{credentials: 'same-origin'}}).then(r => r.json())")


def test_auditor_page_fits_a_phone_and_a_desktop(engine: Any, server: str, browser: Browser, tmp_path: Path) -> None:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    order = w.order(B, pb, lft(B), "2026-03-04T08:00:00+08:00", placer="LATE1")
    w.report(B, pb, lft(B), "2026-03-04T09:00:00+08:00", order=order)
    w.order(B, pb, lft(B), "2026-03-04T08:00:00+08:00", placer="LATE1", reasons=("R04",),
            reason_text="急诊入院，患者自述前次结果遗失，需要尽快复查以确定用药剂量，已与上级医生沟通确认")
    sign_in(browser, server, engine, PHONE_360)

    api = api_report(browser)
    assert browser.eval("document.querySelector('#summary').dataset.count") == str(api["totals"]["count"]) == "2"
    assert browser.eval("document.querySelectorAll('#flags tbody tr.flag').length") == len(api["rows"]) == 2
    assert browser.eval("document.querySelector('#flags-count').innerText").startswith("共 2 条")
    for device, name in ((PHONE_360, "360"), (PHONE_414, "414"), (DESKTOP, "desktop")):
        browser.send("Emulation.setDeviceMetricsOverride", **device)
        assert outside(browser, device) == [], name
        # each flag is wholly on the screen, its late reason too, and says what it is in Chinese first
        rows = browser.eval("[...document.querySelectorAll('#flags tbody tr.flag')].map(tr => {"
                            "const r = tr.getBoundingClientRect(), reason = tr.querySelector('td.reason').getBoundingClientRect();"
                            "return [r.left, r.right, reason.right, tr.innerText]; })")
        for left, right, reason_right, words in rows:
            assert left >= 0 and right <= device["width"] and reason_right <= device["width"], (name, words)
        late = next(words for *_, words in rows if "迟录" in words)
        assert "2026年3月4日" in late and "待复核" in late and "R04" in late
        shot(browser, tmp_path, f"ui12-duplicates-{name}.png", device)

    # on a phone each flag is a card: every value under its column's name, no column header row
    browser.send("Emulation.setDeviceMetricsOverride", **PHONE_360)
    assert browser.eval("document.querySelector('#flags thead').getBoundingClientRect().height") <= 1
    assert browser.eval("getComputedStyle(document.querySelector('#flags td.reason'), '::before').content") == '"理由 Reason"'

    # a keyboard opens the evidence (Enter on the flag's date) and lands on it; "back" returns to the flag
    browser.eval("document.querySelector('#flags tbody tr.flag button.open').focus(); true")
    key(browser, "Enter", 13, "\r")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    assert browser.eval("document.activeElement.id") == "ev-title"
    top = browser.eval("document.querySelector('#evidence').getBoundingClientRect().top")
    assert -1 <= top < PHONE_360["height"]  # scrolled to, not left below the list
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    assert "2026年3月" in facts and "待复核" in facts
    # the two results in words, their times in Beijing time (the JSON folded beneath)
    prior = browser.eval("document.querySelector('#ev-prior-words').innerText")
    assert "肝功能" in prior and "2026年3月1日 09:00" in prior and "已出报告" in prior, prior
    assert "2026年3月4日 09:00" in browser.eval("document.querySelector('#ev-repeat-words').innerText")
    assert outside(browser, PHONE_360) == []
    shot(browser, tmp_path, "ui12-evidence-360.png", PHONE_360)

    # uphold it by tapping and typing; the review's time is Beijing time, as the auditor's clock reads
    type_into(browser, "#review [name=reason]", "无复查理由")
    tap(browser, "#uphold")
    browser.wait_for("document.querySelector('#message').innerText.includes('已记录复核')")
    at = engine.recognition.flags.find({"status": "upheld"})[0]["reviews"][-1]["at"]
    local = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=8)))
    browser.wait_for("document.querySelector('#ev-facts').innerText.includes('王丽')")
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    assert f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}" in facts, facts
    tap(browser, "#ev-close")
    assert browser.eval("document.activeElement.classList.contains('open')") is True

    # a range with nothing in it says so in words
    browser.eval("document.querySelector('#filters [name=from]').value = '2025-01-01';"
                 "document.querySelector('#filters [name=to]').value = '2025-01-31'; true")
    tap(browser, "#apply")
    browser.wait_for("document.querySelector('#flags tbody').innerText.includes('所选范围内没有疑似重复')")
    assert browser.eval("document.querySelector('#more').hidden") is True


def test_every_flag_can_be_listed_and_the_count_is_the_reports(engine: Any, server: str, browser: Browser) -> None:
    """The API answers 100 rows a page; the page said "5 flags"-style totals over every flag but
    listed only the first 100, with no way to the rest."""
    w = World(engine)
    for i in range(101):
        person = national_id(f"3209231985{i // 28 + 1:02d}{i % 28 + 1:02d}0{i % 90 + 10:02d}")
        w.report(A, w.patient(A, person), cbc(A), "2026-03-01T09:00:00+08:00")
        w.report(B, w.patient(B, person, mrn=f"B-{i}"), cbc(B), "2026-03-03T09:00:00+08:00")
    sign_in(browser, server, engine, PHONE_414)
    count = api_report(browser)["totals"]["count"]
    assert count == 101 == int(browser.eval("document.querySelector('#summary').dataset.count"))
    assert browser.eval("document.querySelectorAll('#flags tbody tr.flag').length") == 100
    assert "已显示 100 条，共 101 条" in browser.eval("document.querySelector('#flags-count').innerText")
    # a filter typed but not applied does not change what "show more" pages on
    type_into(browser, "#filters [name=institution]", "NOPE")
    tap(browser, "#more")
    browser.wait_for("document.querySelectorAll('#flags tbody tr.flag').length === 101")
    ids = browser.eval("[...document.querySelectorAll('#flags tbody tr.flag')].map(tr => tr.dataset.id)")
    assert sorted(ids) == sorted(f["_id"] for f in engine.recognition.flags.find())  # each once, none missing
    assert browser.eval("document.querySelector('#more').hidden") is True
    assert browser.eval("document.querySelector('#flags-count').innerText").startswith("共 101 条")


def test_session_ended_elsewhere_and_no_network_are_said_in_plain_chinese(engine: Any, server: str,
                                                                          browser: Browser) -> None:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    secret = sign_in(browser, server, engine, PHONE_360)

    # the network drops: the page says so in words, not "TypeError: Failed to fetch"
    browser.send("Network.enable")
    browser.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1)
    tap(browser, "#apply")
    browser.wait_for("document.querySelector('#message').innerText.includes('无法连接服务器')")
    browser.send("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=-1, uploadThroughput=-1)

    # signed out in another tab: the next action goes to the sign-in page, which says why, and back
    token = next(c["value"] for c in browser.send("Network.getCookies")["cookies"] if c["name"] == "huren_staff")
    engine.staff.sign_out(token)
    tap(browser, "#apply")
    browser.wait_for("location.pathname === '/ui/signin' && document.querySelector('#signin-notice') !== null")
    assert "登录已过期" in browser.eval("document.querySelector('#signin-notice').innerText")
    assert browser.eval("document.querySelector('#name').value") == ""
    # ready to type, no tap needed first (autofocus: the browser moves the focus at its next rendering
    # update, after the page is parsed, so it is waited for, not read at once)
    assert browser.wait_for("document.activeElement.id === 'name'")
    # a wrong code keeps the name and puts the cursor in the password, which must be typed again
    type_into_signin(browser, "wang.li", "000000" if rfc6238(secret, time.time()) != "000000" else "111111")
    browser.wait_for("document.querySelector('#signin-error') !== null")
    assert browser.wait_for("document.activeElement.id === 'password'")
    type_into_signin(browser, "wang.li", rfc6238(secret, time.time() + 30))
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
    assert browser.eval("document.querySelectorAll('#flags tbody tr.flag').length") == 1


def test_a_clinician_is_told_the_report_is_not_for_their_role(engine: Any, server: str, browser: Browser) -> None:
    """Sign-in lands on the auditors' page; a clinician's role may not read the report (the API
    answers 403). The page said "403 ..." under empty filters and charts; it now says why, in words."""
    sign_in(browser, server, engine, PHONE_360, role="clinician")
    said = browser.eval("document.querySelector('#message').innerText")
    assert "您的角色（临床医生）不能查看疑似重复清单" in said and "403" not in said
    assert browser.eval("document.querySelector('#filters').getBoundingClientRect().height") == 0
    assert browser.eval("document.querySelector('#flags').getBoundingClientRect().height") == 0
    assert "临床医生" in browser.eval("document.querySelector('#who').innerText")  # and who is signed in
