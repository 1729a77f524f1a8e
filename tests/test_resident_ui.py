"""The resident page /ui/me: served safely, and — in headless Chromium at a phone's viewport — the
resident signs in with ID number and SMS code and sees results by date and institution, trends and
imaging reports, all read through /fhir with the resident's own token over real HTTP (uvicorn).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import check_character
from engine.settings import Settings
from tests import browser_pool
from tests.test_ui12_phone import (
    outside,  # every visible element inside the screen, not only the page's width
)


def nid(base17: str) -> str:
    return base17 + check_character(base17)


ZHANG = nid("32092319900101123")
LI = nid("32092319921120004")


def test_page_is_served_with_its_config_and_strict_headers(engine):
    with TestClient(create_app(engine)) as http:
        r = http.get("/ui/me/")
        assert r.status_code == 200
        assert f'data-fhir="{engine.settings.fhir_base_url}"' in r.text and 'data-client="huren-me"' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "no-referrer"
        assert http.get("/ui/me/static/app.js").status_code == 200
        assert http.get("/ui/me", follow_redirects=False).headers["location"] == "/ui/me/"
        # the page is a registered public SMART app: its redirect URI is accepted, others are not
        good = http.get("/auth/authorize", params={
            "response_type": "code", "client_id": "huren-me", "redirect_uri": engine.settings.public_base_url + "/ui/me/",
            "scope": "patient/*.rs", "state": "x", "aud": engine.settings.fhir_base_url,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
        assert good.status_code == 200 and "request_id" in good.text


# ---- headless Chromium ---------------------------------------------------------------------------

CHROMIUM = browser_pool.CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(engine: Engine) -> None:
    repo = engine.repository
    orgs = {"FNXRMYY": "阜宁县人民医院", "FNZYY": "阜宁县中医院"}
    for code, name in orgs.items():
        repo.update({"resourceType": "Organization", "id": code.lower(), "name": name,
                     "identifier": [{"system": "urn:huren:institution", "value": code}]})
    people = [("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "FNXRMYY", "13800001111"),
              ("fz-zhang", ZHANG, "张三", "male", "1990-01-01", "FNZYY", None),
              ("fn-li", LI, "李四", "female", "1992-11-20", "FNXRMYY", "13900002222")]
    for pid, number, name, gender, birth, inst, phone in people:
        p = {"resourceType": "Patient", "id": pid, "name": [{"text": name}], "gender": gender, "birthDate": birth,
             "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid},
                            {"value": number, "type": {"coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}}]}
        if phone:
            p["telecom"] = [{"system": "phone", "value": phone}]
        repo.update(p)

    def glucose(oid: str, pid: str, inst: str, day: str, value: float) -> dict:
        return {"resourceType": "Observation", "id": oid, "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "葡萄糖 Glucose"},
                "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": f"{day}T08:00:00+08:00",
                "performer": [{"reference": f"Organization/{inst.lower()}", "display": {
                    "FNXRMYY": "阜宁县人民医院", "FNZYY": "阜宁县中医院"}[inst]}],
                "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                  "code": "mmol/L"},
                "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}]}

    repo.update(glucose("g1", "fn-zhang", "FNXRMYY", "2026-03-01", 5.2))
    repo.update(glucose("g2", "fz-zhang", "FNZYY", "2026-06-15", 6.8))
    repo.update(glucose("g3", "fn-zhang", "FNXRMYY", "2026-09-20", 7.4))
    repo.update(glucose("g-li", "fn-li", "FNXRMYY", "2026-09-20", 4.4))
    repo.update({"resourceType": "DiagnosticReport", "id": "ct1", "status": "final",
                 "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
                 "code": {"text": "胸部CT平扫 Chest CT"}, "subject": {"reference": "Patient/fz-zhang"},
                 "effectiveDateTime": "2026-06-15T10:00:00+08:00", "issued": "2026-06-15T12:00:00+08:00",
                 "performer": [{"reference": "Organization/fnzyy", "display": "阜宁县中医院"}],
                 "conclusion": "双肺未见明显异常。"})


class _CDP:
    """A minimal Chrome DevTools Protocol client (one page target) over the browser's websocket."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None)  # noqa: SIM115 - closed by the test
        self.n = 0

    def call(self, method: str, **params):  # noqa: ANN201
        self.n += 1
        return browser_pool.exchange(self.ws, self.n, method, params)

    def eval(self, expr: str):  # noqa: ANN201
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 20.0):  # noqa: ANN201
        """The expression's value once it is true, checked in the page (``browser_pool.until``)."""
        v = browser_pool.until(self.call, expr, timeout)
        if v:
            return v
        raise AssertionError(f"timed out waiting for {expr}; page: {self.eval('document.body && document.body.innerText')}")


class Phone:
    """Headless Chromium driven over CDP, as the resident's phone."""

    def __init__(self, tmp_path: Path) -> None:
        # a page in a fresh browser context of this test process's one Chromium (tests/browser_pool.py):
        # its own cookies and storage, as a Chromium of its own had, without a Chromium start per test
        self.page = browser_pool.Page("--lang=zh-CN")
        self.cdp = _CDP(self.page.ws_url)
        self.cdp.call("Page.enable")
        self.shots = Path(os.environ.get("HUREN_SCREENSHOTS") or tmp_path / "shots")
        self.shots.mkdir(parents=True, exist_ok=True)

    def size(self, width: int, height: int, mobile: bool) -> None:
        self.cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    # the variables that ask for this phone's screenshots (``browser_pool.shooting``)
    shots_env: tuple[str, ...] = ()

    def shot(self, name: str, full: bool = True) -> Path:
        """The page as a PNG in ``shots`` when screenshots are asked for (``browser_pool.shooting``);
        the page is scrolled to the top for a whole-page shot either way, as the test then sees it."""
        out = self.shots / f"{name}.png"
        params = {"format": "png"}
        if full:
            self.cdp.eval("window.scrollTo(0, 0)")
        if not browser_pool.shooting(*self.shots_env):
            return out
        if full:
            params["captureBeyondViewport"] = True
            h = self.cdp.eval("document.documentElement.scrollHeight")
            w = self.cdp.eval("document.documentElement.clientWidth")
            params["clip"] = {"x": 0, "y": 0, "width": w, "height": min(h, 6000), "scale": 1}
        out.write_bytes(base64.b64decode(self.cdp.call("Page.captureScreenshot", **params)["data"]))
        return out

    def text(self, element_id: str) -> str:
        return self.cdp.eval(f"document.getElementById('{element_id}').innerText")

    def click(self, selector: str) -> None:
        assert self.cdp.eval(f"!!document.querySelector({json.dumps(selector)})"), selector
        self.cdp.eval(f"document.querySelector({json.dumps(selector)}).click()")

    def close(self) -> None:
        self.cdp.ws.close()
        self.page.close()


@contextlib.contextmanager
def serving(engine: Engine) -> Iterator[None]:
    """The real app under uvicorn on the engine's own port, in a thread, for a browser to use."""
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=engine.settings.http_port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(tmp_path: Path):
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "var", http_port=port, mllp_port=0)
    engine = Engine(settings)
    if getattr(engine, "repository", None) is None:
        engine.close()
        pytest.skip("needs the FHIR repository (engine.repository) to hold the resident's results")
    _seed(engine)
    with serving(engine):
        yield engine
    engine.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_resident_sees_own_results_on_a_phone(served, tmp_path):
    engine = served
    base = engine.settings.public_base_url
    phone = Phone(tmp_path)
    cdp = phone.cdp
    try:
        phone.size(390, 844, mobile=True)
        cdp.call("Page.navigate", url=base + "/ui/me/")
        cdp.wait("location.pathname === '/ui/me/' && document.getElementById('signin')?.hidden === false")
        cdp.eval("document.getElementById('login').click()")
        cdp.wait("location.pathname === '/auth/authorize' && !!document.getElementById('national_id')")
        cdp.eval(f"document.getElementById('national_id').value = '{ZHANG}'; document.forms[0].submit()")
        cdp.wait("!!document.getElementById('code')")
        code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")
        cdp.wait("document.body.dataset.ready === '1'")

        assert cdp.eval("location.search") == ""  # the code does not linger in the address bar
        results = cdp.eval("document.getElementById('results').innerText")
        assert "阜宁县人民医院" in results and "阜宁县中医院" in results  # both hospitals, one person
        assert results.index("2026年9月20日") < results.index("2026年6月15日") < results.index("2026年3月1日")
        assert "7.4 mmol/L" in results and "4.4" not in results  # 李四's result is not here
        assert "↑ 超出参考范围" in results  # no lab flag: the reference range still speaks
        banner = cdp.eval("document.getElementById('banner').innerText")
        assert banner.startswith("张三") and "男" in banner and "male" not in banner
        assert cdp.eval("document.querySelectorAll('#trends svg circle').length") == 3
        cdp.eval("document.querySelector('[data-tab=imaging]').click()")
        assert "双肺未见明显异常" in cdp.eval("document.getElementById('imaging').innerText")
        # fits a phone: no sideways scrolling
        assert outside(cdp, {"width": 390}) == []
    finally:
        phone.close()
