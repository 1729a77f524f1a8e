"""The resident page says the true reason a read was refused, and shows every record (nineteenth
round, fam19), in headless Chromium at 360 px over real HTTP (uvicorn).

(1) 孙伟 reads his newborn daughter's record on /ui/me (granted at the desk while it had no ID
number). An ADT^A08 then gives the record 钱多多's number with his particulars: the server refuses
every read, saying the record was filed under a person since (``policy.FILED``, coded
``filed``). The page had said "家人代查的授权已被撤销或已过期" for any 403 -- nobody withdrew
anything; it now says what the server said, from the reason's code.
(2) A 403 that is not a grant's end (here held in the browser: one search refused without the
reason code) no longer signs the family member out with "撤销或已过期", nor reads as "暂无记录":
that section says it was refused, the rest of her record stays.
Nor does "download all records" save a Bundle missing a record whose ``$everything`` was not
answered usefully (it had saved what it had and said "已下载"; it also stopped after 50 pages).
(3) 赵桂兰 has 2,001 imaging reports (the page reads 100 a page): the page stopped after 20 pages
and showed 2,000 as if they were all; it now pages to the end.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_famfix18_grant_person import declared_site
from tests.test_resident_family import SUN, family_feeds
from tests.test_resident_family_ui import WIDTH, community, fits, sign_in  # noqa: F401 - the fixture
from tests.test_resident_record_ui import QIAN, ZHAO, _http, hl7, lab, msh
from tests.test_resident_ui import CHROMIUM, Phone, _free_port, serving

__all__ = ["community"]
chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


def _hl7(engine, base: str, message: bytes) -> None:
    sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
    status, headers, ack = _http("POST", base + "/hl7v2", sender, message, "x-application/hl7-v2+er7")
    assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack


def _choose(phone: Phone, engine, base: str, name: str) -> None:
    """孙伟 signs in on his phone and opens ``name``'s record."""
    sign_in(phone, engine, base, SUN)
    phone.cdp.wait("document.body.innerText.includes('您要查看谁的档案')")
    phone.cdp.eval(f"[...document.querySelectorAll('button[name=choice]')].find(b => b.innerText.includes('{name}')).click()")


@pytest.fixture
def declared_community(tmp_path):
    """``community`` on a site whose HIS is declared the registration application (famfix18's ``declared_site``):
    there its A08 numbering the newborn's placeholder is the registrar's word and the grant stops holding; on a site
    declaring nothing the same A08 is held for the operator (regfix41d) and nothing stops."""
    port = _free_port()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=port, mllp_port=0,
                             site=declared_site(tmp_path / "site")))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for message in family_feeds():
            status, headers, ack = _http("POST", base + "/hl7v2", sender, message, "x-application/hl7-v2+er7")
            assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
        yield engine, base
    engine.close()


@chromium
def test_the_page_says_why_a_family_grant_stopped(declared_community, tmp_path):
    engine, base = declared_community
    newborn = "PID|1||NB2026000001^^^FNXRMYY^MR||孙^宝宝||20261101|F"
    _hl7(engine, base, lab("FNXRMYY", "RM-LIS-NB", "20261102", newborn, ("XCG", "血常规"),
                           ("HGB", "血红蛋白", "170", "g/L", "145-225", "N")))
    baby = engine.repository.search("Patient", [("identifier", "NB2026000001")]).resources[0]["id"]
    engine.auth.registry.add("fnxrmyy-desk", scopes=["system/Consent.cru", "system/RelatedPerson.cru"], kind="system")
    desk = engine.auth.issue_system_token("fnxrmyy-desk", "system/Consent.cru system/RelatedPerson.cru")
    status, _, body = _http("POST", base + "/fhir/Patient/$family-grant", desk, json.dumps({
        "resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{baby}"}},
            {"name": "proxyNationalId", "valueString": SUN}, {"name": "proxyName", "valueString": "孙伟"},
            {"name": "relationship", "valueCode": "PRN"}, {"name": "idCardChecked", "valueBoolean": True}]}).encode())
    assert status == 201, body
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        _choose(phone, engine, base, "孙宝宝")
        cdp.wait("document.body.dataset.ready === '1'")
        assert "您正在代孙宝宝查看档案" in phone.text("banner")

        # an A08 gives her record 钱多多's number with his particulars: the grant stops holding
        _hl7(engine, base, hl7(msh("HIS", "FNXRMYY", "20261105090000", "ADT^A08^ADT_A01", "RM-A08-NB-QIAN"),
                               "EVN|A08|20261105090000",
                               f"PID|1||{QIAN}^^^公安部^NNCHN~NB2026000001^^^FNXRMYY^MR||钱^多多||19510711|M", "PV1|1|O"))
        cdp.call("Page.reload")
        cdp.wait("document.getElementById('signin')?.hidden === false && document.body.dataset.ready === 'error'")
        said = phone.text("status")
        assert "授权时这份档案还没有身份证号" in said and "重新授权" in said, said
        assert "撤销" not in said and "过期" not in said, said
        assert cdp.eval("sessionStorage.getItem('session')") is None
        text = cdp.eval("document.body.innerText")
        assert "钱多多" not in text and "孙宝宝" not in text, text
        phone.shot("fam19-family-filed-360")
        fits(phone)
        phone.click("#lang")  # the same reason in English, from the same code
        said = phone.text("status")
        assert "had no ID number when this access was given" in said and "withdrawn" not in said, said
    finally:
        phone.close()


@chromium
def test_a_refusal_that_is_not_the_grants_end_is_said_as_such(community, tmp_path):
    engine, base = community
    mother = engine.auth.resident  # 赵桂兰 lets her son see her record (the API, as on her own page)
    zhao = sorted(engine.identity.patients_for_number(ZHAO))[0]
    mother.family.grant(zhao, SUN, name="孙伟", relationship="CHILD", end=None)
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        _choose(phone, engine, base, "赵桂兰")
        cdp.wait("document.body.innerText.includes('您正在代赵桂兰')")
        cdp.wait("document.body.dataset.ready === '1'")
        # reloaded with one search refused by a 403 that carries no family reason (held in the browser)
        cdp.call("Fetch.enable", patterns=[{"urlPattern": "*/fhir/Immunization?*", "requestStage": "Request"}])
        cdp.ws.send(json.dumps({"id": 950, "method": "Page.reload", "params": {}}))
        refused = False
        end = time.monotonic() + 30
        while time.monotonic() < end and not refused:
            msg = json.loads(cdp.ws.recv(timeout=20))
            if msg.get("method") == "Fetch.requestPaused":
                outcome = {"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "forbidden", "diagnostics": "not for this token"}]}
                cdp.ws.send(json.dumps({"id": 951, "method": "Fetch.fulfillRequest", "params": {
                    "requestId": msg["params"]["requestId"], "responseCode": 403,
                    "responseHeaders": [{"name": "Content-Type", "value": "application/fhir+json"}],
                    "body": base64.b64encode(json.dumps(outcome).encode()).decode()}}))
                refused = True
        assert refused, "the page did not search Immunization"
        cdp.call("Fetch.disable")
        cdp.wait("document.body.dataset.ready === '1'")
        said = phone.text("status")
        assert "被服务器拒绝" in said and "撤销" not in said and "过期" not in said, said
        assert "您正在代赵桂兰查看档案" in phone.text("banner")  # still signed in, acting for her
        cdp.eval("document.querySelector('[data-tab=immunisations]').click()")
        section = phone.text("immunisations")
        assert "服务器拒绝了这部分记录的查询" in section and "暂无记录" not in section, section
        cdp.eval("document.querySelector('[data-tab=diagnoses]').click()")
        assert "高血压" in phone.text("diagnoses")  # the rest of her record is there
        phone.shot("fam19-refused-section-360")
        fits(phone)

        # "download all records" with one record's $everything not answered usefully (404, held in
        # the browser): nothing is saved as if it were the whole record, and the page says so
        cdp.eval("window.saveBlob = (blob, name) => { window.__saved = { blob, name }; }")
        cdp.call("Fetch.enable", patterns=[{"urlPattern": "*$everything*", "requestStage": "Request"}])
        cdp.ws.send(json.dumps({"id": 960, "method": "Runtime.evaluate", "params": {
            "expression": "document.getElementById('export').click()"}}))
        held = False
        end = time.monotonic() + 30
        while time.monotonic() < end and not held:
            msg = json.loads(cdp.ws.recv(timeout=20))
            if msg.get("method") == "Fetch.requestPaused":
                outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
                                                                          "diagnostics": "not known"}]}
                cdp.ws.send(json.dumps({"id": 961, "method": "Fetch.fulfillRequest", "params": {
                    "requestId": msg["params"]["requestId"], "responseCode": 404,
                    "responseHeaders": [{"name": "Content-Type", "value": "application/fhir+json"}],
                    "body": base64.b64encode(json.dumps(outcome).encode()).decode()}}))
                held = True
        assert held, "the page did not ask for $everything"
        cdp.call("Fetch.disable")
        cdp.wait("document.getElementById('status').innerText.includes('下载没有完成')")
        assert cdp.eval("!window.__saved") and "已下载" not in phone.text("status")
    finally:
        phone.close()


@chromium
def test_the_page_shows_every_record_not_the_first_twenty_pages(community, tmp_path):
    engine, base = community
    zhao = sorted(engine.identity.patients_for_number(ZHAO))[0]
    reports = [{"resourceType": "DiagnosticReport", "id": f"fam19-ct-{n:04d}", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
                "code": {"text": "最早的胸部CT" if n == 0 else "胸部CT"}, "subject": {"reference": f"Patient/{zhao}"},
                "effectiveDateTime": f"{2000 + n // 300}-{1 + n % 12:02d}-{1 + n % 28:02d}", "conclusion": "未见异常"}
               for n in range(2001)]
    engine.repository.write_many(reports)
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        sign_in(phone, engine, base, ZHAO)
        cdp.wait("document.body.dataset.ready === '1'", timeout=120)
        cdp.eval("document.querySelector('[data-tab=imaging]').click()")
        heading = cdp.eval("document.getElementById('imaging-h').innerText")
        count = int(heading.split("共 ")[1].split(" 条")[0])
        assert count >= 2001, heading  # the page read 100 a page: 20 pages held 2,000 of every kind
        assert "最早的胸部CT" in phone.text("imaging")
        phone.shot("fam19-all-imaging-360", full=False)
    finally:
        phone.close()
