"""Family access (家人代查), over real HTTP with records that arrived as HL7 v2.

赵桂兰 (78) lets her son 孙伟 see her record from her own phone; at the county hospital's desk 孙伟,
with the household register, is given access to his daughter 孙小宝's record (she has no phone).
孙伟 signs in as himself and chooses whose record to open; each token opens exactly that person's
records and says who is acting. Withdrawal and an expired period end access on the next request,
and each person's "who looked" names 孙伟 as the family member who looked on their behalf.
"""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.resident import s256
from tests.test_resident_record_ui import QIAN, ZHAO, feeds, lab, pid
from tests.test_resident_ui import nid
from tests.test_resident_who_looked import sign_in

SUN = nid("32092319750412001")  # 孙伟, 赵桂兰's son, with his own record and phone
XIAO = nid("32092320200606002")  # 孙小宝, his daughter: a record, no phone


def family_feeds() -> list[bytes]:
    sun = pid(SUN, "ZY2026001001", "FNXRMYY", "孙^伟", "19750412", "M", "13900001111")
    xiao = pid(XIAO, "ZY2026001002", "FNXRMYY", "孙^小宝", "20200606", "F")
    return [*feeds(),
            lab("FNXRMYY", "RM-LIS-SUN", "20261001", sun, ("1100", "生化"), ("GLU", "葡萄糖", "5.5", "mmol/L", "3.9-6.1", "N")),
            lab("FNXRMYY", "RM-LIS-XIAO", "20261002", xiao, ("XCG", "血常规"), ("HGB", "血红蛋白", "121", "g/L", "110-160", "N"))]


def params(**values) -> dict:
    kinds = {"patient": "valueReference", "nationalId": "valueString", "proxyNationalId": "valueString",
             "proxyName": "valueString", "relationship": "valueCode", "end": "valueDate", "idCardChecked": "valueBoolean",
             "consent": "valueReference", "reason": "valueString"}
    return {"resourceType": "Parameters", "parameter": [{"name": k, kinds[k]: v} for k, v in values.items()]}


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"}


def proxy_sign_in(http: TestClient, engine, national_id: str, choose: str | None, *,
                  app: tuple[str, str, str] | None = None) -> tuple[dict, list[str]]:
    """孙伟's sign-in on /ui/me (or ``app``: client id, redirect URI, scopes): ID number, code, then
    (he holds family access) whose record. ``choose``: a name on the choice page, or None for his
    own record. Returns the token response and the names the choice page offered."""
    client, redirect, scope = app or ("huren-me", engine.settings.public_base_url + "/ui/me/",
                                      "launch/patient openid fhirUser patient/*.rs")
    verifier = secrets.token_urlsafe(48)
    page = http.get("/auth/authorize", params={
        "response_type": "code", "client_id": client, "redirect_uri": redirect, "state": "st",
        "scope": scope, "aud": engine.settings.fhir_base_url,
        "code_challenge": s256(verifier), "code_challenge_method": "S256"})
    rid = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
    assert http.post("/auth/authorize/login", data={"request_id": rid, "national_id": national_id}).status_code == 200
    code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
    done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False)
    offered: list[str] = []
    if done.status_code == 200:  # the choice page
        assert "您要查看谁的档案" in done.text
        buttons = re.findall(r'<button type="submit" name="choice" value="([^"]+)"[^>]*>(.*?)</button>', done.text, re.S)
        offered = [re.sub(r"<[^>]+>|\s+", " ", label).strip() for _, label in buttons]
        value = "self" if choose is None else next(v for v, label in buttons if choose in label)
        done = http.post("/auth/authorize/choose", data={"request_id": rid, "choice": value}, follow_redirects=False)
    assert done.status_code == 303, done.text
    q = parse_qs(urlsplit(done.headers["location"]).query)
    tokens = http.post("/auth/token", data={"grant_type": "authorization_code", "code": q["code"][0],
                                            "redirect_uri": redirect, "client_id": client,
                                            "code_verifier": verifier}).json()
    assert "access_token" in tokens, tokens
    return tokens, offered


def ids_of(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def subjects(bundle: dict) -> set[str]:
    return {e["resource"]["subject"]["reference"].removeprefix("Patient/") for e in bundle.get("entry", [])
            if "subject" in e["resource"]}


@pytest.fixture
def engine(settings):
    """One phone signs 孙伟 in several times within minutes: the per-number limit of code sends
    from one address is raised for that (the limits have their own tests)."""
    from engine.engine import Engine

    eng = Engine(settings.with_(extra={"resident_auth": {"sends_per_id_source": 20, "sends_per_source": 40}}))
    yield eng
    eng.close()


def test_a_son_for_his_mother_and_a_father_for_his_child(engine):
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in family_feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        zhao_ids = set(engine.identity.patients_for_number(ZHAO))
        sun_ids = set(engine.identity.patients_for_number(SUN))
        xiao_ids = set(engine.identity.patients_for_number(XIAO))
        qian_ids = set(engine.identity.patients_for_number(QIAN))
        assert len(zhao_ids) == 3 and sun_ids and xiao_ids

        # 1. 赵桂兰, signed in on her phone, lets her son see her record for a year
        zhao = sign_in(http, engine, ZHAO)
        as_zhao = bearer(zhao["access_token"])
        r = http.post("/fhir/Patient/$family-grant", headers=as_zhao, json=params(
            proxyNationalId=SUN, proxyName="孙伟", relationship="CHILD", end="2099-12-31"))
        assert r.status_code == 201, r.text
        out = {p["name"]: p["resource"] for p in r.json()["parameter"]}
        consent, related = out["consent"], out["relatedPerson"]
        assert consent["status"] == "active" and consent["scope"]["coding"][0]["code"] == "patient-privacy"
        assert consent["provision"]["actor"][0]["reference"]["reference"] == f"RelatedPerson/{related['id']}"
        assert consent["provision"]["period"]["end"].startswith("2099-12-31")
        assert related["patient"]["reference"].removeprefix("Patient/") in zhao_ids
        assert SUN not in json.dumps(out)  # his ID number is not kept, only his pseudonymous key
        # she sees the grant in her own record, like any other record (and the RelatedPerson with it)
        mine = http.get("/fhir/Consent?_include=Consent:actor", headers=as_zhao).json()
        assert ids_of(mine) == {consent["id"], related["id"]}
        # nonsense is refused with the reason, nothing stored
        for bad in (params(proxyNationalId=SUN[:-1] + "0" if SUN[-1] != "0" else SUN[:-1] + "1", proxyName="孙伟",
                           relationship="CHILD"),
                    params(proxyNationalId=SUN, proxyName="孙伟", relationship="BOSS"),
                    params(proxyNationalId=ZHAO, proxyName="赵桂兰", relationship="CHILD"),
                    params(proxyNationalId=nid("32092319991231009"), proxyName="无档案", relationship="CHILD"),
                    params(proxyNationalId=SUN, proxyName="孙伟", relationship="CHILD", end="2020-01-01")):
            r = http.post("/fhir/Patient/$family-grant", headers=as_zhao, json=bad)
            assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome", r.text
        # she cannot grant access to someone else's record: it does not exist for her
        other = sorted(qian_ids)[0]
        r = http.post("/fhir/Patient/$family-grant", headers=as_zhao, json=params(
            patient={"reference": f"Patient/{other}"}, proxyNationalId=SUN, proxyName="孙伟", relationship="CHILD"))
        assert r.status_code == 404 and other not in r.text

        # 2. at the county hospital's desk, after checking his ID card and the household register,
        #    孙伟 gets access to his daughter's record (she has no phone to sign in with)
        engine.auth.registry.add("fnxrmyy-desk", scopes=["system/Consent.cru", "system/RelatedPerson.cru"],
                                 kind="system", name="阜宁县人民医院 服务台")
        desk = bearer(engine.auth.issue_system_token("fnxrmyy-desk", "system/Consent.cru system/RelatedPerson.cru"))
        grant = params(nationalId=XIAO, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN", end="2038-06-06")
        assert http.post("/fhir/Patient/$family-grant", headers=desk, json=grant).status_code == 422  # no attestation
        reader = bearer(engine.auth.issue_system_token("reader", "system/*.rs"))
        assert http.post("/fhir/Patient/$family-grant", headers=reader, json=params(
            nationalId=XIAO, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN", idCardChecked=True)).status_code == 403
        r = http.post("/fhir/Patient/$family-grant", headers=desk, json=params(
            nationalId=XIAO, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN", end="2038-06-06",
            idCardChecked=True, reason="凭户口本核实父女关系"))
        assert r.status_code == 201, r.text
        xiao_consent = {p["name"]: p["resource"] for p in r.json()["parameter"]}["consent"]
        assert xiao_consent["verification"][0]["verified"] is True

        # 3. 孙伟 signs in as himself and is asked whose record to open
        # (on a phone app that keeps him signed in: it holds a refresh token)
        engine.auth.registry.add("phr", scopes=["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
                                 kind="patient-app", redirect_uris=["https://phr.example/cb"], public=True)
        phr = ("phr", "https://phr.example/cb", "launch/patient openid fhirUser offline_access patient/*.rs")
        for_mother, offered = proxy_sign_in(http, engine, SUN, "赵桂兰", app=phr)
        assert len(offered) == 3 and offered[0].startswith("我自己（孙伟）")
        assert any("赵桂兰" in o and "子女" in o for o in offered) and any("孙小宝" in o and "父母" in o for o in offered)
        as_son = bearer(for_mother["access_token"])
        assert for_mother["patient"] in zhao_ids
        claims = jwt.decode(for_mother["access_token"], options={"verify_signature": False})
        assert claims["acting"] == related["id"] and claims["consent"] == consent["id"]
        assert claims["sub"] != zhao["patient"] and claims["sub"] == jwt.decode(
            for_mother["id_token"], options={"verify_signature": False})["sub"]
        fhir_user = f"{engine.settings.fhir_base_url}/RelatedPerson/{related['id']}"
        assert jwt.decode(for_mother["id_token"], options={"verify_signature": False})["fhirUser"] == fhir_user
        info = http.get("/auth/userinfo", headers=as_son).json()
        assert info["fhirUser"] == fhir_user and info["patient"] == for_mother["patient"]
        rs_secret = engine.auth.registry.add("resource-server", scopes=["system/*.rs"], kind="system")
        seen = http.post("/auth/introspect", data={"token": for_mother["access_token"]}, auth=("resource-server", rs_secret))
        assert seen.json()["active"] is True and seen.json()["fhirUser"] == fhir_user

        # exactly his mother's records: all three hospitals, nobody else's, not even his own
        obs = http.get("/fhir/Observation?_count=100", headers=as_son).json()
        assert subjects(obs) == zhao_ids
        for pid_ in sun_ids | xiao_ids | qian_ids:
            assert http.get(f"/fhir/Patient/{pid_}", headers=as_son).status_code == 404
            assert not ids_of(http.get(f"/fhir/Observation?subject=Patient/{pid_}", headers=as_son).json())
        # acting for her, he may not pass her record on to anyone
        r = http.post("/fhir/Patient/$family-grant", headers=as_son, json=params(
            proxyNationalId=QIAN, proxyName="钱多多", relationship="FAMMEMB"))
        assert r.status_code == 403

        # his own sign-in, and his daughter's, open only their own records
        own, _ = proxy_sign_in(http, engine, SUN, None)
        assert subjects(http.get("/fhir/Observation", headers=bearer(own["access_token"])).json()) == sun_ids
        for_daughter, _ = proxy_sign_in(http, engine, SUN, "孙小宝")
        as_father = bearer(for_daughter["access_token"])
        assert subjects(http.get("/fhir/Observation", headers=as_father).json()) == xiao_ids
        assert http.get(f"/fhir/Patient/{sorted(zhao_ids)[0]}", headers=as_father).status_code == 404

        # 4. who looked: each record names 孙伟 as the family member who looked on their behalf
        looked = http.get("/ui/me/who-looked", headers=as_zhao).json()["entries"]
        by_son = [e for e in looked if e["role"] == "family"]
        assert by_son and all(e["who_name"] == "孙伟（子女）" for e in by_son)
        assert any(e["what"] == "search" and "Observation" in e["resource_types"] for e in by_son)
        assert any(e["what"] == "family-access" and e["role"] == "resident" for e in looked)  # her own grant
        assert not any("孙小宝" in json.dumps(e, ensure_ascii=False) for e in looked)
        # the daughter's list (read here by her father, acting for her): his reads, as her parent
        child = http.get("/ui/me/who-looked", headers=as_father).json()["entries"]
        assert any(e["role"] == "family" and e["who_name"] == "孙伟（父母）" and e["what"] in ("search", "read")
                   for e in child)
        assert any(e["what"] == "family-access" and e["who_name"] == "阜宁县人民医院 服务台" for e in child)
        text = json.dumps(child, ensure_ascii=False)
        assert "赵桂兰" not in text and not any(p in text for p in zhao_ids | sun_ids)
        # the audit trail itself names him as the agent, on whose behalf and by which consent
        events = http.get(f"/fhir/AuditEvent?patient={sorted(xiao_ids)[0]}&_count=200", headers=reader).json()
        agents = [a for e in events.get("entry", []) for a in e["resource"]["agent"] if a.get("requestor")]
        mine_ = [a for a in agents if (a["who"].get("reference") or "").startswith("RelatedPerson/")]
        assert mine_ and all(a["policy"] == [f"Consent/{xiao_consent['id']}"] for a in mine_)

        # 5. she withdraws: his very next request is refused, and a refresh gets nothing new
        r = http.post("/fhir/Patient/$family-withdraw", headers=as_zhao,
                      json=params(consent={"reference": f"Consent/{consent['id']}"}))
        assert r.status_code == 200 and r.json()["parameter"][0]["resource"]["status"] == "inactive"
        assert http.get("/fhir/Observation", headers=as_son).status_code == 403
        assert http.get(f"/fhir/Patient/{for_mother['patient']}", headers=as_son).status_code == 403
        assert http.get("/ui/me/who-looked", headers=as_son).status_code == 403
        assert http.get("/auth/userinfo", headers=as_son).status_code == 401  # the token says nothing any more
        gone = http.post("/auth/introspect", data={"token": for_mother["access_token"]}, auth=("resource-server", rs_secret))
        assert gone.json() == {"active": False}
        refreshed = http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": "phr",
                                                   "refresh_token": for_mother["refresh_token"]})
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        _, offered = proxy_sign_in(http, engine, SUN, "孙小宝")
        assert not any("赵桂兰" in o for o in offered)  # no longer offered
        # another resident cannot withdraw (or even see) someone else's grant
        qian = sign_in(http, engine, QIAN)
        r = http.post("/fhir/Patient/$family-withdraw", headers=bearer(qian["access_token"]),
                      json=params(consent={"reference": f"Consent/{xiao_consent['id']}"}))
        assert r.status_code == 404
        assert http.get("/fhir/Observation", headers=as_father).status_code == 200

        # 6. the daughter's grant runs out: from then on nothing, though the token has not expired
        expired = engine.repository.read("Consent", xiao_consent["id"])
        expired["provision"]["period"]["end"] = "2026-01-01T00:00:00+08:00"
        engine.repository.update(expired)
        assert http.get("/fhir/Observation", headers=as_father).status_code == 403
        _, offered = proxy_sign_in(http, engine, SUN, None)
        assert offered == []  # nothing granted any more: straight into his own record
        # the desk records its withdrawal too (the father asked in person): attested, audited
        withdraw = params(consent={"reference": f"Consent/{xiao_consent['id']}"}, reason="父亲到服务台申请撤销")
        assert http.post("/fhir/Patient/$family-withdraw", headers=desk, json=withdraw).status_code == 422
        withdraw["parameter"].append({"name": "idCardChecked", "valueBoolean": True})
        r = http.post("/fhir/Patient/$family-withdraw", headers=desk, json=withdraw)
        assert r.status_code == 200 and r.json()["parameter"][0]["resource"]["status"] == "inactive"
        assert http.post("/fhir/Patient/$family-withdraw", headers=desk, json=params(
            consent={"reference": "Consent/no-such"}, idCardChecked=True)).status_code == 404


# ---- the rule itself, and the grant on both storage backends ---------------------------------------

def _grant_docs(**changes) -> tuple[dict, dict]:
    consent = {"resourceType": "Consent", "id": "c1", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
               "patient": {"reference": "Patient/p1"},
               "provision": {"type": "permit", "period": {"start": "2026-01-01T00:00:00+08:00", "end": "2027-01-01T00:00:00+08:00"},
                             "actor": [{"reference": {"reference": "RelatedPerson/r1"}}]}}
    related = {"resourceType": "RelatedPerson", "id": "r1", "patient": {"reference": "Patient/p1"},
               "identifier": [{"system": "urn:huren:family", "value": "per-son"}]}
    for path, value in changes.items():
        doc = consent if path.startswith("c.") else related
        *parents, last = path[2:].split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    return consent, related


def test_a_grant_holds_only_as_its_consent_says():
    import datetime as dt

    from engine.auth.policy import proxy_grant_holds

    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

    def holds(consent, related, *, proxy="per-son", related_id="r1", patients=frozenset({"p1", "p1b"})):
        return proxy_grant_holds(consent, related, proxy=proxy, related_id=related_id, patients=patients, now=now)

    assert holds(*_grant_docs()) is None
    refused = {
        "withdrawn": _grant_docs(**{"c.status": "inactive"}),
        "not yet": _grant_docs(**{"c.provision.period": {"start": "2026-07-01"}}),
        "expired": _grant_docs(**{"c.provision.period": {"end": "2026-05-31T23:59:59+08:00"}}),
        "unreadable period": _grant_docs(**{"c.provision.period": {"end": "soon"}}),
        "deny": _grant_docs(**{"c.provision.type": "deny"}),
        "another actor": _grant_docs(**{"c.provision.actor": [{"reference": {"reference": "RelatedPerson/r2"}}]}),
        "not privacy": _grant_docs(**{"c.scope": {"coding": [{"code": "research"}]}}),
        "deactivated": _grant_docs(**{"r.active": False}),
        "another record's person": _grant_docs(**{"r.patient": {"reference": "Patient/p9"}}),
        "names someone else": _grant_docs(**{"r.identifier": [{"system": "urn:huren:family", "value": "per-x"}]}),
    }
    for why, (consent, related) in refused.items():
        assert holds(consent, related) is not None, why
    consent, related = _grant_docs()
    assert holds(consent, related, proxy="per-other") is not None  # another person's token
    assert holds(consent, related, related_id="r2") is not None  # a token naming another RelatedPerson
    assert holds(consent, related, patients=frozenset({"p2"})) is not None  # a token for another record
    assert holds(None, related) is not None and holds(consent, None) is not None  # gone


def test_grant_and_withdraw_on_each_backend(backend_settings):
    from engine.auth.family import person_key
    from engine.engine import Engine
    from tests.test_resident_matrix import _patient

    eng = Engine(backend_settings)
    try:
        eng.repository.update(_patient("fn-zhao", "FNXRMYY", ZHAO, "赵桂兰", "female", "1948-03-05"))
        eng.repository.update(_patient("fn-sun", "FNXRMYY", SUN, "孙伟", "male", "1975-04-12"))
        family = eng.auth.resident.family
        key = person_key(eng.identity.nid_key(SUN))
        assert family.grants_for(key) == []
        grant = family.grant("fn-zhao", SUN, name="孙伟", relationship="CHILD", end="2099-01-01")
        again = family.grant("fn-zhao", SUN, name="孙伟", relationship="CHILD", end=None)
        assert again.related_id == grant.related_id  # one RelatedPerson per family member
        assert [g.consent_id for g in family.grants_for(key)] == [grant.consent_id, again.consent_id]
        assert family.grants_for(person_key(eng.identity.nid_key(ZHAO))) == []
        family.withdraw(grant.consent_id)
        assert [g.consent_id for g in family.grants_for(key)] == [again.consent_id]
        assert family.withdraw(grant.consent_id)["status"] == "inactive"  # twice is harmless
    finally:
        eng.close()
