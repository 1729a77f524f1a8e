"""Review of fam19: a list read in part says it is partial (nineteenth round, fammend19), in headless
Chromium at 360 px over real HTTP (uvicorn).

赵桂兰 has 150 imaging reports; the page reads 100 a page, so her imaging list takes two pages.
When the second page is not answered usefully -- 404, 410, 429 or 400 (a page token gone, a limit
hit, a proxy in the way) -- fam19's page took it for the end of the list: 100 reports shown as if
they were all, and "档案已加载". A 403 there labelled the whole section "服务器拒绝了这部分记录的
查询，下面没有显示这部分记录" while its first 100 reports were shown below. A first page whose
``Bundle.total`` says 150 followed by no further page (here: the next link taken out of the answer
on its way) showed 100 as all. Each now marks the list as partial (and the status line says so);
the reports read stay shown. The answers are changed in the browser (Chrome DevTools ``Fetch``),
the server and its data are real.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.test_resident_family_ui import WIDTH, community, fits, sign_in  # noqa: F401 - the fixture
from tests.test_resident_record_ui import ZHAO
from tests.test_resident_ui import CHROMIUM, Phone

__all__ = ["community"]
chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

PARTIAL = "这部分记录没有读全"
REPORTS = 150


def _reports(engine) -> None:
    zhao = sorted(engine.identity.patients_for_number(ZHAO))[0]
    engine.repository.write_many([
        {"resourceType": "DiagnosticReport", "id": f"fm19-ct-{n:03d}", "status": "final",
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
         "code": {"text": "最新的胸部CT" if n == REPORTS - 1 else "胸部CT"}, "subject": {"reference": f"Patient/{zhao}"},
         "effectiveDateTime": f"{2010 + n // 12}-{1 + n % 12:02d}-15", "conclusion": "未见异常"}
        for n in range(REPORTS)])


def _reload_with(phone: Phone, pattern: str, answer) -> None:  # noqa: ANN001 - answer(cdp, event) -> params
    """Reloads the page with the first request matching ``pattern`` answered by ``answer``."""
    cdp = phone.cdp
    stage = "Response" if answer is _without_next else "Request"
    cdp.call("Fetch.enable", patterns=[{"urlPattern": pattern, "requestStage": stage}])
    cdp.ws.send(json.dumps({"id": 9500, "method": "Page.reload", "params": {}}))
    held = False
    end = time.monotonic() + 60
    while time.monotonic() < end and not held:
        msg = json.loads(cdp.ws.recv(timeout=30))
        if msg.get("method") == "Fetch.requestPaused":
            params = answer(cdp, msg["params"])
            cdp.call("Fetch.fulfillRequest", requestId=msg["params"]["requestId"], **params)
            held = True
    assert held, f"the page did not ask for {pattern}"
    cdp.call("Fetch.disable")
    cdp.wait("document.body.dataset.ready === '1'", timeout=60)


def _status(code: int):  # noqa: ANN202
    def answer(cdp, event) -> dict:  # noqa: ANN001, ARG001
        outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing",
                                                                  "diagnostics": f"held in the browser: {code}"}]}
        return {"responseCode": code, "responseHeaders": [{"name": "Content-Type", "value": "application/fhir+json"}],
                "body": base64.b64encode(json.dumps(outcome).encode()).decode()}
    return answer


def _without_next(cdp, event) -> dict:  # noqa: ANN001
    """The real first page, its next link taken out on the way (its ``total`` kept)."""
    got = cdp.call("Fetch.getResponseBody", requestId=event["requestId"])
    raw = base64.b64decode(got["body"]) if got.get("base64Encoded") else got["body"].encode()
    bundle = json.loads(raw)
    assert bundle["total"] > 100 and any(link["relation"] == "next" for link in bundle["link"])
    bundle["link"] = [link for link in bundle["link"] if link["relation"] != "next"]
    return {"responseCode": 200, "responseHeaders": [{"name": "Content-Type", "value": "application/fhir+json"}],
            "body": base64.b64encode(json.dumps(bundle, ensure_ascii=False).encode()).decode()}


def _says_partial(phone: Phone, label: str) -> None:
    cdp = phone.cdp
    said = phone.text("status")
    assert "没有读全" in said and "已加载" not in said, (label, said)
    cdp.eval("document.querySelector('[data-tab=imaging]').click()")
    section = phone.text("imaging")
    assert PARTIAL in section, (label, section)
    assert "服务器拒绝了这部分记录的查询" not in section and "暂无记录" not in section, (label, section)
    assert "最新的胸部CT" in section, (label, section)  # the reports read are still shown
    assert " 条" not in cdp.eval("document.getElementById('imaging-h').innerText"), label  # no count as if whole


@chromium
def test_a_list_read_in_part_says_so(community, tmp_path):
    engine, base = community
    _reports(engine)
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        sign_in(phone, engine, base, ZHAO)
        cdp.wait("document.body.dataset.ready === '1'", timeout=60)
        cdp.eval("document.querySelector('[data-tab=imaging]').click()")
        assert PARTIAL not in phone.text("imaging")  # both pages answered: the whole list, no mark
        heading = cdp.eval("document.getElementById('imaging-h').innerText")
        assert int(heading.split("共 ")[1].split(" 条")[0]) >= REPORTS, heading

        second_page = "*/fhir/DiagnosticReport?*_offset=100*"
        for code in (404, 410, 429, 400):
            _reload_with(phone, second_page, _status(code))
            _says_partial(phone, str(code))

        # a 403 on the second page: the first page's reports are shown, so "refused, not shown" is untrue
        _reload_with(phone, second_page, _status(403))
        _says_partial(phone, "403")
        cdp.eval("window.scrollTo(0, 0)")
        phone.shot("fammend19-partial-status-360", full=False)  # the status line
        cdp.eval("document.getElementById('imaging-h').scrollIntoView()")
        phone.shot("fammend19-partial-section-360", full=False)
        fits(phone)
        phone.click("#lang")
        section = phone.text("imaging")
        assert "Only part of these records could be read" in section and "refused" not in section, section
        phone.click("#lang")

        # the first page counts them all (150 and more), and no page follows: 100 is not all
        _reload_with(phone, "*/fhir/DiagnosticReport?_count=100*", _without_next)
        _says_partial(phone, "total")

        # "who looked" read again: the status line still says the list is partial (it said "档案已加载")
        cdp.eval("document.querySelector('[data-tab=who]').click()")
        phone.click("#who-refresh")
        cdp.wait("!document.getElementById('status').innerText.includes('正在加载')")
        assert "没有读全" in phone.text("status"), phone.text("status")
    finally:
        phone.close()


@chromium
def test_a_session_over_takes_the_record_off_the_screen_and_offers_the_sign_in(community, tmp_path):
    """The page's token lasts 15 minutes from sign-in, used or not (fam19), with no refresh token:
    the next read after that is refused (401). The page said "登录已过期，请重新登录" and left the
    record on the screen with no sign-in button (the resident had to guess a reload); now the record
    leaves the screen and the sign-in button is there. The 401 here comes from revoking the page's
    token at the server (RFC 7009, as a sign-out elsewhere would): the same answer as its expiry."""
    engine, base = community
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        sign_in(phone, engine, base, ZHAO)
        cdp.wait("document.body.dataset.ready === '1'", timeout=60)
        session = json.loads(cdp.eval("sessionStorage.getItem('session')"))
        lasts = (session["exp"] - cdp.eval("Date.now()")) / 1000
        assert 850 < lasts <= 900, lasts  # 15 minutes from sign-in
        assert "赵桂兰" in phone.text("banner")
        body = urllib.parse.urlencode({"token": session["token"], "client_id": "huren-me"}).encode()
        with urllib.request.urlopen(urllib.request.Request(base + "/auth/revoke", data=body)) as r:  # noqa: S310
            assert r.status == 200
        cdp.eval("window.saveBlob = (blob, name) => { window.__saved = { blob, name }; }")
        phone.click("#export")  # "download all records": the first read after the token's end
        cdp.wait("document.getElementById('status').innerText.includes('登录已过期')")
        assert cdp.eval("document.getElementById('signin').hidden === false")  # sign in again, right there
        assert cdp.eval("sessionStorage.getItem('session')") is None and cdp.eval("!window.__saved")
        text = cdp.eval("document.body.innerText")
        assert "赵桂兰" not in text and "高血压" not in text, text  # the record is off the screen
        phone.shot("fammend19-session-over-360", full=False)
        fits(phone)
    finally:
        phone.close()
