"""A family token's refusal carries its reason as a code (nineteenth round, fam19).

The resident page had one sentence for any 403 ("撤销或已过期"); the server's reason was only in its
words (Chinese, then English), which a page cannot translate or tell apart safely. Each 403 for a
grant that no longer holds now names its reason in ``issue.details`` (``urn:huren:family-refusal``),
userinfo's 401 beside its words (``reason``); any other 403 to a family token carries none. Real
HTTP through the app, SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_famfix18_grant_person as famfix18
from tests.test_famfix18_grant_person import PHR, _grant
from tests.test_famlast18_newborn_grant import _a08, _newborn_grant
from tests.test_fammend18_grant_survivor import _send
from tests.test_resident_family import SUN, bearer, params, proxy_sign_in
from tests.test_resident_record_ui import QIAN

world = famfix18.world
SYSTEM = "urn:huren:family-refusal"


def _reason(r) -> str | None:
    assert r.status_code == 403, r.text
    codes = [c["code"] for c in ((r.json()["issue"][0].get("details") or {}).get("coding") or ()) if c.get("system") == SYSTEM]
    return codes[0] if codes else None


def test_a_withdrawn_grant_says_withdrawn(world):
    engine, http, tools = world
    consent = _grant(http, tools)
    token, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    as_father = bearer(token["access_token"])
    assert http.get("/fhir/Observation", headers=as_father).status_code == 200
    # a family member cannot grant on: a 403 that is not the grant's end names no reason
    r = http.post("/fhir/Patient/$family-grant", headers=as_father, json=params(
        proxyNationalId=QIAN, proxyName="钱多多", relationship="FAMMEMB"))
    assert _reason(r) is None and "代查的家人不能再授权" in r.text
    w = http.post("/fhir/Patient/$family-withdraw", headers=tools["desk"],
                  json=params(consent={"reference": f"Consent/{consent['id']}"}, idCardChecked=True))
    assert w.status_code == 200, w.text
    for r in (http.get("/fhir/Observation", headers=as_father), http.get(f"/fhir/Patient/{token['patient']}", headers=as_father),
              http.get("/ui/me/who-looked", headers=as_father)):
        assert _reason(r) == "withdrawn", r.text
    u = http.get("/auth/userinfo", headers=as_father)
    assert u.status_code == 401 and u.json()["reason"] == "withdrawn", u.text


def test_a_record_filed_under_someone_says_filed_not_withdrawn(world):
    engine, http, tools = world
    _, token = _newborn_grant(engine, http, tools)
    _send(http, tools, _a08(QIAN, "钱^多多", "19510711", "M", "RM-A08-NB-QIAN"))
    as_father = bearer(token["access_token"])
    assert _reason(http.get("/fhir/Observation", headers=as_father)) == "filed"
    u = http.get("/auth/userinfo", headers=as_father)
    assert u.status_code == 401 and u.json()["reason"] == "filed", u.text
