"""A family member's sign-in on /ui/me whose grant is withdrawn while the page asks who he is there
(review of uifix18), in headless Chromium over real HTTP.

孙伟 chooses his mother's record; the page's userinfo request is held in the browser while 赵桂兰
withdraws the grant, then let through: userinfo answers 401 (the token says nothing any more) and
every read 403. The page took any answer but a 5xx for "the resident himself": it stored a session
without the family banner, read each 403 as an empty section ("档案已加载", allergies "暂无记录"),
and offered him the form to grant access to *her* record. A refused userinfo is a failed sign-in:
the page says so, stores no session and shows nothing of her record. Fails on main eedad94.
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_family import SUN, params
from tests.test_resident_family_ui import community, sign_in  # noqa: F401 - the fixture
from tests.test_resident_record_ui import ZHAO
from tests.test_resident_ui import CHROMIUM, Phone
from tests.test_resident_who_looked import sign_in as token_for

__all__ = ["community"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_a_grant_withdrawn_during_sign_in_is_a_failed_sign_in(community, tmp_path):
    engine, base = community
    with TestClient(create_app(engine)) as http:  # 赵桂兰 lets her son see her record (her own sign-in)
        mother = token_for(http, engine, ZHAO)["access_token"]
        as_zhao = {"Authorization": "Bearer " + mother, "Content-Type": "application/fhir+json"}
        r = http.post("/fhir/Patient/$family-grant", headers=as_zhao, json=params(
            proxyNationalId=SUN, proxyName="孙伟", relationship="CHILD", end="2099-12-31"))
        assert r.status_code == 201, r.text
        consent = {p["name"]: p["resource"] for p in r.json()["parameter"]}["consent"]
        phone = Phone(tmp_path)
        cdp = phone.cdp
        try:
            phone.size(360, 740, mobile=True)
            sign_in(phone, engine, base, SUN)
            cdp.wait("document.body.innerText.includes('您要查看谁的档案')")
            cdp.call("Fetch.enable", patterns=[{"urlPattern": "*/auth/userinfo*", "requestStage": "Request"}])
            cdp.ws.send(json.dumps({"id": 900, "method": "Runtime.evaluate", "params": {"expression":
                "[...document.querySelectorAll('button[name=choice]')].find(b => b.innerText.includes('赵桂兰')).click()"}}))
            held = False
            end = time.monotonic() + 30
            while time.monotonic() < end:  # userinfo held; she withdraws; let through
                msg = json.loads(cdp.ws.recv(timeout=20))
                if msg.get("method") == "Fetch.requestPaused":
                    w = http.post("/fhir/Patient/$family-withdraw", headers=as_zhao,
                                  json=params(consent={"reference": f"Consent/{consent['id']}"}))
                    assert w.status_code == 200, w.text
                    held = True
                    cdp.ws.send(json.dumps({"id": 901, "method": "Fetch.continueRequest",
                                            "params": {"requestId": msg["params"]["requestId"]}}))
                    break
            assert held, "the page did not ask who he is"
            cdp.call("Fetch.disable")
            cdp.wait("document.body.dataset.ready === 'error'")
            said = phone.text("status")
            assert "登录没有完成" in said and "档案已加载" not in said, said
            assert cdp.eval("document.getElementById('signin').hidden") is False
            assert cdp.eval("sessionStorage.getItem('session')") is None
            text = cdp.eval("document.body.innerText")
            assert "赵桂兰" not in text and "暂无记录" not in text and "授权" not in phone.text("banner"), text
            phone.shot("lead18-family-userinfo-refused-360")
        finally:
            phone.close()
