"""The auditors' page ``/ui/duplicates`` in headless Chromium, as an auditor uses it: sign in with a
password and a TOTP code, read totals and charts, filter, drill down into a flag's evidence, uphold it. Real uvicorn, real
browser (Debian's ``chromium``), driven over the DevTools protocol."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.sync.client import connect

from engine.api.app import create_app
from engine.auth.staff import StaffDirectory
from tests import browser_pool
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft
from tests.test_staff_signin import rfc6238

CHROMIUM = browser_pool.CHROMIUM
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(engine: Any) -> Iterator[str]:
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


class Browser:
    """Just enough of the Chrome DevTools protocol: navigate and evaluate. The browser is a Chinese
    one, as the auditors' and residents' are: ``navigator.language`` and Accept-Language zh-CN, ICU's
    default locale zh-CN (``Intl`` without a locale). It had been en-US. Headless Chromium still draws
    its date pickers as mm/dd/yyyy whatever the language (``--lang``, ``LANGUAGE``, the locale
    override: measured), so the pages say a picked date in words themselves."""

    def __init__(self, profile: Path) -> None:
        # a page in a fresh browser context of this test process's one Chromium (tests/browser_pool.py):
        # its own cookies and storage, as a Chromium of its own had, without a Chromium start per test
        self.page = browser_pool.Page("--lang=zh-CN", "--accept-lang=zh-CN", "--disable-dev-shm-usage")
        self.ws = connect(self.page.ws_url, max_size=None, open_timeout=10)
        self.n = 0
        self.send("Emulation.setLocaleOverride", locale="zh-CN")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=20))
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def eval(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(out["exceptionDetails"])
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """The expression's value once it is true, checked in the page (``browser_pool.until``)."""
        errors: list[Exception] = []
        value = browser_pool.until(self.send, expression, timeout, errors.append)
        if value:
            return value
        last = errors[-1] if errors else None
        shown = self.eval("document.querySelector('#message') && document.querySelector('#message').innerText")
        raise AssertionError(f"timed out waiting for {expression} ({last}); page message: {shown!r}")

    def close(self) -> None:
        self.ws.close()
        self.page.close()


AUDITOR_PASSWORD = "ginkgo-river-42"


def sign_in_page(browser: Browser, server: str, engine: Any, name: str = "wang.li", display: str = "王丽",
                 role: str = "auditor") -> None:
    """Create a staff account, open /ui/duplicates (which sends us to the sign-in page) and sign in
    with the password and the current TOTP code, as the person would type them."""
    secret = StaffDirectory(engine.settings.data_dir).add(
        name, role=role, institution="YBJ", password=AUDITOR_PASSWORD, display=display, roles=engine.staff.roles).secret
    browser.send("Page.enable")
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    code = rfc6238(secret, time.time())
    browser.eval(f"document.querySelector('#name').value = {json.dumps(name)};"
                 f"document.querySelector('#password').value = {json.dumps(AUDITOR_PASSWORD)};"
                 f"document.querySelector('#code').value = {json.dumps(code)};"
                 "document.querySelector('#signin').submit(); true")
    browser.wait_for("location.pathname === '/ui/duplicates' && document.body.dataset.loaded === '1'")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


def test_auditor_reviews_a_flag_in_the_page(engine: Any, server: str, browser: Browser) -> None:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(A, pa, lft(A), "2026-03-01T09:00:00+08:00")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00")
    order = w.order(B, pb, lft(B), "2026-03-04T08:00:00+08:00", reasons=("R01",))
    w.report(B, pb, lft(B), "2026-03-04T09:00:00+08:00", order=order)
    sign_in_page(browser, server, engine)  # evidence is read with the auditor role's own scopes
    assert browser.eval("document.querySelector('#summary').dataset.count") == "2"
    assert browser.eval("document.querySelector('#summary').dataset.money") == "20"
    assert browser.eval("document.querySelectorAll('#flags tbody tr').length") == 2
    assert browser.eval("document.querySelectorAll('#chart-money rect.bar').length") == 1
    assert browser.eval("document.querySelector('#chart-money rect.bar').dataset.label") == B
    assert browser.eval("document.querySelectorAll('#chart-time rect.bar').length") == 2
    assert "100.0%" not in browser.eval("document.querySelector('#rates').innerText")

    # filter to the justified re-test only
    browser.eval("document.querySelector('#filters [name=status]').value = 'justified';"
                 "document.querySelector('#apply').click(); true")
    browser.wait_for("document.querySelectorAll('#flags tbody tr').length === 1 && "
                     "document.querySelector('#flags tbody tr').innerText.includes('justified')")
    # one flag listed, and the per-status figures (over every status, as the API gives them) say so
    assert browser.eval("document.querySelector('#summary').dataset.count") == "1"
    assert "不受“状态”筛选影响" in browser.eval("document.querySelector('#summary').innerText")

    # back to all, drill down into the CBC flag and uphold it
    browser.eval("document.querySelector('#filters [name=status]').value = '';"
                 "document.querySelector('#apply').click(); true")
    browser.wait_for("document.querySelectorAll('#flags tbody tr').length === 2")
    browser.eval("[...document.querySelectorAll('#flags tbody tr')].find(r => r.innerText.includes('CBC')).click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    # days as read in China, institutions by name (with the code the filters take)
    assert f"阜宁县人民医院（{A}） · 2026年3月1日" in facts and "20.00 元" in facts and "7 天 days" in facts
    assert "血常规" in browser.eval("document.querySelector('#ev-prior-words').innerText")  # in words, and
    assert "DiagnosticReport" in browser.eval("document.querySelector('#ev-prior').textContent")  # as FHIR, folded
    browser.eval("document.querySelector('#review [name=reason]').value = '无复查理由';"
                 "document.querySelector('#uphold').click(); true")
    browser.wait_for("document.querySelector('#message').innerText.includes('Review recorded: upheld')")
    assert "王丽" in browser.eval("document.querySelector('#message').innerText")
    flag_id = browser.eval("document.querySelector('#ev-id').innerText")
    assert engine.repository.read("DetectedIssue", flag_id)["status"] == "final"
    assert "upheld" in browser.eval("document.querySelector('#flags tbody').innerText")


def test_page_without_session_sends_to_sign_in(server: str, browser: Browser) -> None:
    browser.send("Page.enable")
    browser.send("Page.navigate", url=f"{server}/ui/duplicates")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    assert "工作人员登录" in browser.eval("document.body.innerText")
    assert browser.eval("document.querySelectorAll('#flags').length") == 0


def test_demo_month_in_the_page(engine: Any, server: str, browser: Browser, tmp_path: Path) -> None:
    """After the demo feeds (``make run``): flags, a self-pay and a justified re-test, a reason
    contradicted by records, an ALT priced as an ALT, and the rate per institution and per doctor."""
    import base64
    import os

    feeds = Path(__file__).resolve().parent.parent / "examples" / "feeds"
    for path in sorted(feeds.glob("*.hl7")):
        assert b"MSA|AA|" in engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}")
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1400, deviceScaleFactor=1, mobile=False)
    sign_in_page(browser, server, engine)
    summary = browser.eval("document.querySelector('#summary').innerText")
    assert "自费复查 self-pay" in summary and "20.00 元" in summary
    flags = browser.eval("document.querySelector('#flags tbody').innerText")
    assert "理由与记录不符 reason contradicted by records" in flags and "自费复查" in flags and "有理由复查" in flags
    assert "ALT（部分 partial）" in flags and "5.00 元" in flags
    rates = browser.eval("document.querySelector('#rates tbody').innerText")
    assert "FNXRMYY" in rates and "100.0%" in rates and "20.0%" in rates
    browser.eval("(() => { const s = document.querySelector('#rate-by'); s.value = 'doctor';"
                 "s.dispatchEvent(new Event('change')); return true; })()")
    browser.wait_for("document.querySelector('#rate-key').innerText === '开单医生 Ordering doctor'")
    browser.wait_for("document.querySelector('#rates tbody').innerText.includes('周敏')")
    browser.eval("(() => { const s = document.querySelector('#rate-by'); s.value = '';"
                 "s.dispatchEvent(new Event('change')); return true; })()")
    browser.wait_for("document.querySelector('#rate-key').innerText === '机构 Institution'")
    shot = base64.b64decode(browser.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    assert shot.startswith(b"\x89PNG")
    (Path(os.environ.get("HUREN_UI_SCREENSHOT") or tmp_path / "duplicates.png")).write_bytes(shot)


def test_a_late_reason_is_shown_to_the_auditor(engine: Any, server: str, browser: Browser) -> None:
    """A reason first recorded after the result does not make the repeat payable (DOMAIN: the reason
    recorded at order time stands); the auditor sees it, in the list and in the evidence."""
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00")
    order = w.order(B, pb, cbc(B), "2026-03-03T08:00:00+08:00", placer="LATE1")
    w.report(B, pb, cbc(B), "2026-03-03T09:00:00+08:00", order=order)
    w.order(B, pb, cbc(B), "2026-03-03T08:00:00+08:00", placer="LATE1", reasons=("R04",), reason_text="急诊")
    sign_in_page(browser, server, engine)
    row = browser.eval("document.querySelector('#flags tbody tr').innerText")
    assert "待复核" in row and "迟录 late: R04" in row
    browser.eval("document.querySelector('#flags tbody tr').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    facts = browser.eval("document.querySelector('#ev-facts').innerText")
    assert "迟录理由 Late reason" in facts and "R04 急诊急救" in facts and "：急诊" in facts and "not counted" in facts
