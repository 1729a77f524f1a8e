"""``Patient/$login-phone``: a desk operator registers or changes the number a resident's sign-in
code goes to, after checking the ID card; the resident can then sign in, and sees the change under
"who looked at my record". Real HL7 in (POST /hl7v2), real sign-in flow, real audit trail.
"""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_record_ui import ZHAO, feeds, lab, pid
from tests.test_resident_ui import nid
from tests.test_resident_who_looked import sign_in

SUN = nid("32092319400214005")  # an old man whose hospital has no phone number for him


def params(**values) -> dict:
    kinds = {"nationalId": "valueString", "phone": "valueString", "idCardChecked": "valueBoolean",
             "reason": "valueString"}
    return {"resourceType": "Parameters", "parameter": [{"name": k, kinds[k]: v} for k, v in values.items()]}


def outbox(engine) -> list[dict]:
    path = engine.settings.data_dir / "otp" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_desk_registers_a_phone_then_the_resident_signs_in(engine):
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        messages = [*feeds(), lab("FNZYY", "ZY-LIS-9", "20261001", pid(SUN, "MZ2026000900", "FNZYY", "孙大爷", "19400214", "M"),
                                  ("1100", "生化"), ("GLU", "葡萄糖", "5.0", "mmol/L", "3.9-6.1", "N"))]
        for message in messages:
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        sun_ids = engine.identity.patients_for_number(SUN)
        assert sun_ids

        # no number on file: asking for a code sends nothing anywhere, and the form says what to do
        before = len(outbox(engine))
        form = http.get("/auth/authorize", params={
            "response_type": "code", "client_id": "huren-me", "redirect_uri": engine.settings.public_base_url + "/ui/me/",
            "scope": "launch/patient patient/*.rs", "state": "s", "aud": engine.settings.fhir_base_url,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
        assert "服务台" in form.text and "身份证" in form.text
        rid = re.search(r'name="request_id" value="([^"]+)"', form.text).group(1)
        code_page = http.post("/auth/authorize/login", data={"request_id": rid, "national_id": SUN})
        assert code_page.status_code == 200 and "服务台" in code_page.text
        assert not [s for s in outbox(engine)[before:] if s["to"]]

        engine.auth.registry.add("fnxrmyy-desk", scopes=["system/Patient.ru"], kind="system", name="阜宁县人民医院 服务台")
        desk = {"Authorization": "Bearer " + engine.auth.issue_system_token("fnxrmyy-desk", "system/Patient.ru"),
                "Content-Type": "application/fhir+json"}
        url = "/fhir/Patient/$login-phone"
        # the operator must attest the ID card was checked; the number must be a mobile number
        r = http.post(url, json=params(nationalId=SUN, phone="13811112222", idCardChecked=False), headers=desk)
        assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"
        r = http.post(url, json=params(nationalId=SUN, phone="0515-1234", idCardChecked=True), headers=desk)
        assert r.status_code == 422
        r = http.post(url, json=params(nationalId=SUN[:-1] + ("0" if SUN[-1] != "0" else "1"), phone="13811112222",
                                       idCardChecked=True), headers=desk)
        assert r.status_code == 422  # not a valid ID number (check character)
        r = http.post(url, json=params(nationalId=nid("32092319991231009"), phone="13811112222", idCardChecked=True),
                      headers=desk)
        assert r.status_code == 404  # a valid number with no record: nothing to sign in to
        assert http.post(url, json=params(nationalId=SUN, phone="13811112222", idCardChecked=True),
                         headers={"Content-Type": "application/fhir+json"}).status_code == 401
        reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/Patient.rs"),
                  "Content-Type": "application/fhir+json"}
        assert http.post(url, json=params(nationalId=SUN, phone="13811112222", idCardChecked=True),
                         headers=reader).status_code == 403

        r = http.post(url, json=params(nationalId=SUN, phone="138 1111 2222", idCardChecked=True,
                                       reason="老人首次登记手机号"), headers=desk)
        assert r.status_code == 200, r.text
        answer = {p["name"]: p for p in r.json()["parameter"]}
        assert answer["phone"]["valueString"] == "138****2222"
        assert answer["patient"]["valueReference"]["reference"] in {f"Patient/{i}" for i in sun_ids}

        # now the code goes to that number and he signs in
        tokens = sign_in(http, engine, SUN)
        assert outbox(engine)[-1]["to"] == ["13811112222"]
        assert tokens["patient"] in sun_ids
        entries = http.get("/ui/me/who-looked", headers={"Authorization": "Bearer " + tokens["access_token"]}).json()["entries"]
        change = [e for e in entries if e["what"] == "login-phone"]
        assert change and change[0]["who_name"] == "阜宁县人民医院 服务台"
        assert "13811112222" not in json.dumps(entries)  # the number stays out of the trail

        # a changed number replaces the one from the feeds: the old phone gets no more codes
        sign_in(http, engine, ZHAO)
        assert outbox(engine)[-1]["to"] == ["13700001234"]
        assert http.post(url, json=params(nationalId=ZHAO, phone="13900003333", idCardChecked=True,
                                          reason="换了手机号"), headers=desk).status_code == 200
        sign_in(http, engine, ZHAO)
        assert outbox(engine)[-1]["to"] == ["13900003333"]
