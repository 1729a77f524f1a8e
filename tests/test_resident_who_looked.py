"""``/ui/me/who-looked``: the signed-in resident's "who looked at my record", over real HTTP.

Two residents' records arrive as HL7 v2 (POST /hl7v2); a hospital system reads one of them; the
other resident tries to. Each resident's list names the hospital system by its registered name and
kind, shows the other resident only as "another resident", and says nothing about anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_record_ui import QIAN, ZHAO, feeds


def sign_in(http: TestClient, engine, national_id: str) -> dict:
    """The resident page's own launch (client huren-me), as the browser runs it."""
    redirect = engine.settings.public_base_url + "/ui/me/"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = http.get("/auth/authorize", params={
        "response_type": "code", "client_id": "huren-me", "redirect_uri": redirect, "state": "st",
        "scope": "launch/patient openid fhirUser patient/*.rs", "aud": engine.settings.fhir_base_url,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    rid = re.search(r'name="request_id" value="([^"]+)"', page.text).group(1)
    assert http.post("/auth/authorize/login", data={"request_id": rid, "national_id": national_id}).status_code == 200
    code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
    done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False)
    q = parse_qs(urlsplit(done.headers["location"]).query)
    return http.post("/auth/token", data={"grant_type": "authorization_code", "code": q["code"][0],
                                          "redirect_uri": redirect, "client_id": "huren-me",
                                          "code_verifier": verifier}).json()


def test_who_looked_names_the_hospital_and_no_other_resident(engine):
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        zhao_ids = engine.identity.patients_for_number(ZHAO)
        qian_ids = engine.identity.patients_for_number(QIAN)
        engine.auth.registry.add("fnzyy-his", scopes=["system/*.rs"], kind="system", name="阜宁县中医院 HIS")
        his = {"Authorization": "Bearer " + engine.auth.issue_system_token("fnzyy-his", "system/*.rs")}
        assert http.get(f"/fhir/Observation?subject=Patient/{zhao_ids[1]}", headers=his).status_code == 200

        zhao = sign_in(http, engine, ZHAO)
        qian = sign_in(http, engine, QIAN)
        as_zhao = {"Authorization": "Bearer " + zhao["access_token"]}
        as_qian = {"Authorization": "Bearer " + qian["access_token"]}
        # 钱 tries 赵's record: refused, and 赵 will see that someone tried, not who
        assert http.get(f"/fhir/Patient/{zhao_ids[0]}", headers=as_qian).status_code == 404
        assert http.get("/fhir/Observation", headers=as_zhao).status_code == 200  # her own look

        r = http.get("/ui/me/who-looked", headers=as_zhao)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        entries = r.json()["entries"]
        hospital = [e for e in entries if e["who"] == "fnzyy-his"]
        assert hospital and hospital[0]["who_name"] == "阜宁县中医院 HIS" and hospital[0]["role"] == "system"
        assert hospital[0]["what"] == "search" and "Observation" in hospital[0]["resource_types"]
        assert any(e["role"] == "resident" and e["what"] == "search" for e in entries)  # her own, as "you"
        others = [e for e in entries if e["role"] == "other-resident"]
        assert others and all(e["who"] == "" for e in others)  # 钱's attempt, without 钱's identity
        text = json.dumps(entries, ensure_ascii=False)
        for pid in qian_ids:
            assert pid not in text
        assert qian.get("patient", "") not in text and "钱" not in text

        # 钱's list has his own records' story, not the hospital's read of 赵's
        qian_entries = http.get("/ui/me/who-looked", headers=as_qian).json()["entries"]
        assert not [e for e in qian_entries if e["who"] == "fnzyy-his"]
        for pid in zhao_ids:
            assert pid not in json.dumps(qian_entries)

        # it answers residents only, and only with a token
        assert http.get("/ui/me/who-looked", headers=his).status_code == 403
        assert http.get("/ui/me/who-looked").status_code == 401
