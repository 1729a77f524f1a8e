"""A named auditor in headless Chromium: a wrong code first (plain-words error), then password + TOTP
code, a review of a flag, and the audit trail names them; then sign-out. Screenshots at phone and desktop
width (written to ``HUREN_STAFF_SCREENSHOTS`` when set, for a person to look at)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

from engine.auth.staff import StaffDirectory
from tests import browser_pool
from tests import test_reports_ui as ui
from tests.test_recognition_world import ALICE, A, B, World, cbc
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_staff_signin import rfc6238

# the CDP driver's fixtures and its "skip without chromium" mark
server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}


def shot(browser: Browser, folder: Path, name: str) -> None:
    if not browser_pool.shooting("HUREN_STAFF_SCREENSHOTS"):  # for a person to look at; none is taken otherwise
        return
    data = base64.b64decode(browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    assert data.startswith(b"\x89PNG")
    (folder / name).write_bytes(data)


def fill(browser: Browser, name: str, password: str, code: str) -> None:
    browser.eval(f"document.querySelector('#name').value = {json.dumps(name)};"
                 f"document.querySelector('#password').value = {json.dumps(password)};"
                 f"document.querySelector('#code').value = {json.dumps(code)};"
                 "document.querySelector('#signin-button').click(); true")


def test_auditor_signs_in_reviews_and_is_named_in_the_audit_trail(engine: Any, server: str, browser: Browser,
                                                                   tmp_path: Path) -> None:
    folder = Path(os.environ.get("HUREN_STAFF_SCREENSHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    secret = StaffDirectory(engine.settings.data_dir).add(
        "wang.li", role="auditor", institution="YBJ", password=AUDITOR_PASSWORD, display="王丽",
        roles=engine.staff.roles).secret

    browser.send("Page.enable")
    browser.send("Emulation.setDeviceMetricsOverride", **PHONE)
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    shot(browser, folder, "signin-phone.png")

    good = rfc6238(secret, time.time())
    fill(browser, "wang.li", AUDITOR_PASSWORD, f"{(int(good) + 5) % 10**6:06d}")
    browser.wait_for("document.querySelector('#signin-error') !== null")
    error = browser.eval("document.querySelector('#signin-error').innerText")
    assert "登录名、密码或动态验证码不正确" in error and "code is not right" in error
    assert browser.eval("document.querySelector('#name').value") == "wang.li"  # kept; password not
    assert browser.eval("document.querySelector('#password').value") == ""
    shot(browser, folder, "signin-error-phone.png")

    fill(browser, "wang.li", AUDITOR_PASSWORD, rfc6238(secret, time.time()))
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
    assert "王丽" in browser.eval("document.querySelector('#who').innerText")
    assert "审核员" in browser.eval("document.querySelector('#who').innerText")
    assert browser.eval("document.cookie") == ""  # the session cookie is HttpOnly: no script can read it
    shot(browser, folder, "duplicates-phone.png")

    browser.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    browser.eval("document.querySelector('#flags tbody tr').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    browser.eval("document.querySelector('#review [name=reason]').value = '3 日内同项目重复，无临床理由';"
                 "document.querySelector('#uphold').click(); true")
    browser.wait_for("document.querySelector('#message').innerText.includes('Review recorded: upheld')")
    # the page names the reviewer and their role in words (the API keeps its label, below)
    browser.wait_for("document.querySelector('#ev-facts').innerText.includes('王丽（审核员）')")
    assert 'staff:' not in browser.eval("document.querySelector('#ev-facts').innerText")
    shot(browser, folder, "duplicates-desktop.png")

    flag = engine.recognition.flags.find()[0]
    assert flag["status"] == "upheld" and flag["reviews"][-1]["by"] == "staff:wang.li 王丽 (auditor)"
    events = engine.audit.events()
    review = next(e for e in events if any(c.get("code") == "review" for c in e.get("subtype") or []))
    who = review["agent"][0]
    assert who["who"] == {"identifier": {"system": "urn:huren:staff", "value": "wang.li"}, "display": "王丽"}
    assert who["role"][0]["coding"][0]["code"] == "auditor"

    browser.eval("document.querySelector('#signout-button').click(); true")
    browser.wait_for("location.pathname === '/ui/signin' && document.querySelector('#signin-notice') !== null")
    assert "您已退出" in browser.eval("document.querySelector('#signin-notice').innerText")
    assert engine.staff.sessions.count() == 0
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")


def test_auditor_signs_in_through_the_bureau_provider_in_the_browser(tmp_path: Path, browser: Browser) -> None:
    """The real browser's view of the OIDC round trip: huren at 127.0.0.1, the provider at localhost
    (another site), so the SameSite cookies behave as in production: the Lax binding cookie comes
    back with the provider's redirect and the Strict session cookie is in force on the page after."""
    from engine.api.app import create_app
    from engine.engine import Engine
    from engine.settings import Settings
    from tests.test_staff_oidc import CLIENT_ID, Provider, serve

    folder = Path(os.environ.get("HUREN_STAFF_SCREENSHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    provider = Provider()
    provider.user = {"preferred_username": "li.shen", "name": "李审", "groups": ["ybj-auditors"], "org": "YBJ"}
    with serve(provider.app) as pport:
        provider.issuer = f"http://localhost:{pport}"
        site = tmp_path / "site"
        (site / "staff").mkdir(parents=True)
        (site / "staff" / "oidc.yaml").write_text(
            f"issuer: {provider.issuer}\nclient_id: {CLIENT_ID}\nrole_claim: groups\ninstitution_claim: org\n"
            "roles: {ybj-auditors: auditor}\n", encoding="utf-8")
        hport = ui._free_port()
        engine = Engine(Settings(data_dir=tmp_path / "var", http_host="127.0.0.1", http_port=hport, mllp_port=0,
                                 site=site))
        try:
            with serve(create_app(engine), hport):
                server = f"http://127.0.0.1:{hport}"
                browser.send("Page.enable")
                browser.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
                browser.send("Page.navigate", url=f"{server}/ui/duplicates")
                browser.wait_for("location.pathname === '/ui/signin' && document.querySelector('#oidc') !== null")
                shot(browser, folder, "signin-oidc-desktop.png")
                browser.eval("document.querySelector('#oidc').click(); true")
                browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")
                assert "李审" in browser.eval("document.querySelector('#who').innerText")
                assert engine.staff.sessions.count() == 1
        finally:
            engine.close()

