"""A resident opens a SMART app on the phone and signs in: PKCE, one-time code, tokens, refresh, revoke.

Everything goes over real HTTP the way a SMART app and a browser would drive it; the one-time code
is read from the development sender's outbox, as the resident would read the SMS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.caller import Caller
from engine.auth.deps import get_caller
from engine.engine import Engine
from engine.identity.nationalid import check_character

APP = "phr-app"
REDIRECT = "https://phr.example/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


def nid(base17: str) -> str:
    return base17 + check_character(base17)


ZHANG = nid("32092319900101123")  # male, born 1990-01-01, 阜宁县
LI = nid("32092319921120004")  # female, born 1992-11-20


def patient(pid: str, number: str | None, name: str, gender: str, birth: str, mrn_system: str,
            phone: str | None = None) -> dict:
    idents = [{"system": mrn_system, "value": pid.upper(),
               "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}]
    if number:
        idents.append({"system": "urn:oid:2.16.156.10011.1.3", "value": number,
                       "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                            "code": "NNCHN"}]}})
    p = {"resourceType": "Patient", "id": pid, "identifier": idents, "name": [{"text": name}],
         "gender": gender, "birthDate": birth}
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    return p


def ingest(engine, resource: dict) -> list:
    """Store a Patient the way ingest does (through the repository and its write hooks, when present)."""
    repo = getattr(engine, "repository", None)
    if repo is not None:
        return repo.update(resource).issues
    return engine.identity.on_write(resource, None)


@pytest.fixture
def people(engine):
    ingest(engine, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "13800001111"))
    ingest(engine, patient("fz-zhang", ZHANG, "张 三", "male", "1990-01-01", "urn:huren:mrn:FNZYY"))
    ingest(engine, patient("fn-li", LI, "李四", "female", "1992-11-20", "urn:huren:mrn:FNXRMYY", "13900002222"))
    return engine


@pytest.fixture
def app(people):
    engine = people
    engine.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT],
                             public=True, name="我的健康")
    app = create_app(engine)

    @app.get("/probe/Observation")
    def probe(caller: Caller = Depends(get_caller)) -> dict:
        caller.require("Observation", "r")
        return {"kind": caller.kind, "patient": caller.patient, "patients": sorted(caller.patient_ids or [])}

    return app


@pytest.fixture
def http(app):
    with TestClient(app, base_url="https://huren.test") as c:
        yield c


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(engine, challenge: str, **over) -> dict:
    p = {"response_type": "code", "client_id": APP, "redirect_uri": REDIRECT, "scope": SCOPE, "state": "s-42",
         "aud": engine.settings.fhir_base_url, "code_challenge": challenge, "code_challenge_method": "S256",
         "nonce": "n-7"}
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}


def outbox(engine) -> list[dict]:
    path = engine.settings.data_dir / "otp" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def request_id(page: str) -> str:
    return re.search(r'name="request_id" value="([^"]+)"', page).group(1)


def sign_in(http, engine, number: str, challenge: str, **over) -> str:
    """Drive the login pages like a browser; returns the redirect Location."""
    page = http.get("/auth/authorize", params=authorize_params(engine, challenge, **over))
    assert page.status_code == 200, page.text
    rid = request_id(page.text)
    sent_before = len(outbox(engine))
    code_page = http.post("/auth/authorize/login", data={"request_id": rid, "national_id": number})
    assert code_page.status_code == 200, code_page.text
    # the browser may follow the form's redirect to the app (CSP form-action covers redirects)
    assert "form-action 'self' https://phr.example" in code_page.headers["content-security-policy"]
    code = outbox(engine)[sent_before]["code"]
    done = http.post("/auth/authorize/verify", data={"request_id": rid, "code": code}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return done.headers["location"]


def exchange(http, code: str, verifier: str, **over) -> object:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": APP,
            "code_verifier": verifier, **over}
    return http.post("/auth/token", data={k: v for k, v in data.items() if v is not None})


def launch(http, engine, number: str = ZHANG) -> dict:
    verifier, challenge = pkce()
    location = sign_in(http, engine, number, challenge)
    q = parse_qs(urlsplit(location).query)
    r = exchange(http, q["code"][0], verifier)
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_document(http, engine):
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        conf = http.get(path).json()
        assert conf["code_challenge_methods_supported"] == ["S256"]
        assert conf["authorization_endpoint"].endswith("/auth/authorize")
        assert {"launch-standalone", "context-standalone-patient", "permission-v2"} <= set(conf["capabilities"])


def test_full_standalone_launch_gives_the_whole_person(http, engine):
    verifier, challenge = pkce()
    location = sign_in(http, engine, ZHANG, challenge)
    assert location.startswith(REDIRECT + "?")
    q = parse_qs(urlsplit(location).query)
    assert q["state"] == ["s-42"]
    assert outbox(engine)[-1]["to"] == ["13800001111"]

    r = exchange(http, q["code"][0], verifier)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["patient"] in ("fn-zhang", "fz-zhang")
    assert set(body["scope"].split()) == set(SCOPE.split())
    assert body["refresh_token"] and body["id_token"]

    me = http.get("/probe/Observation", headers=bearer(body["access_token"])).json()
    assert me == {"kind": "patient", "patient": body["patient"], "patients": ["fn-zhang", "fz-zhang"]}

    oidc = http.get("/.well-known/openid-configuration").json()
    assert oidc["issuer"] == engine.settings.public_base_url and "RS256" in oidc["id_token_signing_alg_values_supported"]
    keys = {k["kid"]: k for k in http.get(urlsplit(oidc["jwks_uri"]).path).json()["keys"]}
    kid = jwt.get_unverified_header(body["id_token"])["kid"]
    idt = jwt.decode(body["id_token"], jwt.PyJWK.from_dict(keys[kid]).key, algorithms=["RS256"], audience=APP)
    assert idt["fhirUser"] == f"{engine.settings.fhir_base_url}/Patient/{body['patient']}"
    assert idt["nonce"] == "n-7"


def test_refresh_rotates_and_reuse_revokes_the_grant(http, engine):
    first = launch(http, engine)
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["patient"] == first["patient"]
    assert http.get("/probe/Observation", headers=bearer(second["access_token"])).status_code == 200
    # the first refresh token was rotated away: using it again is a theft signal
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"],
                                       "client_id": APP})
    assert r.json()["error"] == "invalid_grant"
    assert http.get("/probe/Observation", headers=bearer(second["access_token"])).status_code == 401


def test_introspection_and_revocation(http, engine):
    tokens = launch(http, engine)
    secret = engine.auth.registry.add("gateway", scopes=["system/*.rs"], kind="system")
    auth = (("gateway", secret))
    info = http.post("/auth/introspect", data={"token": tokens["access_token"]}, auth=auth).json()
    assert info["active"] and info["patient"] == tokens["patient"] and info["client_id"] == APP
    info = http.post("/auth/introspect", data={"token": tokens["refresh_token"]}, auth=auth).json()
    assert info["active"] and info["token_type"] == "refresh_token"
    # public clients cannot introspect
    r = http.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": APP})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"

    r = http.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": APP})
    assert r.status_code == 200
    assert http.get("/probe/Observation", headers=bearer(tokens["access_token"])).status_code == 401
    assert http.post("/auth/introspect", data={"token": tokens["access_token"]}, auth=auth).json() == {"active": False}
    r = http.post("/auth/revoke", data={"token": tokens["refresh_token"], "client_id": APP,
                                        "token_type_hint": "refresh_token"})
    assert r.status_code == 200
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                       "client_id": APP})
    assert r.json()["error"] == "invalid_grant"
    assert http.post("/auth/revoke", data={"token": "garbage", "client_id": APP}).status_code == 200


def test_another_clients_token_is_not_revoked(http, engine):
    tokens = launch(http, engine)
    engine.auth.registry.add("other-app", scopes=["patient/*.rs"], kind="patient-app",
                             redirect_uris=["https://other.example/cb"], public=True)
    assert http.post("/auth/revoke", data={"token": tokens["access_token"], "client_id": "other-app"}).status_code == 200
    assert http.get("/probe/Observation", headers=bearer(tokens["access_token"])).status_code == 200


def test_two_residents_get_disjoint_compartments(http, engine):
    zhang = launch(http, engine, ZHANG)
    li = launch(http, engine, LI)
    assert http.get("/probe/Observation", headers=bearer(li["access_token"])).json()["patients"] == ["fn-li"]
    assert "fn-li" not in http.get("/probe/Observation", headers=bearer(zhang["access_token"])).json()["patients"]


# ---- refusals ----------------------------------------------------------------------------------


def test_wrong_pkce_verifier_and_code_replay(http, engine):
    verifier, challenge = pkce()
    q = parse_qs(urlsplit(sign_in(http, engine, ZHANG, challenge)).query)
    r = exchange(http, q["code"][0], pkce()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = exchange(http, q["code"][0], "short")
    assert r.json()["error"] == "invalid_request"

    verifier, challenge = pkce()
    q = parse_qs(urlsplit(sign_in(http, engine, ZHANG, challenge)).query)
    first = exchange(http, q["code"][0], verifier).json()
    r = exchange(http, q["code"][0], verifier)
    assert r.json()["error"] == "invalid_grant"
    # the replay revoked what the code had produced
    assert http.get("/probe/Observation", headers=bearer(first["access_token"])).status_code == 401


def test_redirect_uri_must_match_exactly(http, engine):
    _, challenge = pkce()
    for bad in (REDIRECT + "/", REDIRECT + "?x=1", "https://evil.example/callback"):
        r = http.get("/auth/authorize", params=authorize_params(engine, challenge, redirect_uri=bad),
                     follow_redirects=False)
        assert r.status_code == 400 and "location" not in r.headers
    verifier, challenge = pkce()
    q = parse_qs(urlsplit(sign_in(http, engine, ZHANG, challenge)).query)
    r = exchange(http, q["code"][0], verifier, redirect_uri=REDIRECT + "/")
    assert r.json()["error"] == "invalid_grant"


BAD_REQUESTS = [
    ({"scope": "patient/*.cruds"}, "invalid_scope"),
    ({"scope": "system/*.rs"}, "invalid_scope"),
    ({"scope": "openid fhirUser"}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None, "code_challenge": None}, "invalid_request"),
    ({"aud": "https://other.example/fhir"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
]


def test_bad_authorization_requests_are_redirected_with_the_error(http, engine):
    _, challenge = pkce()
    for over, error in BAD_REQUESTS:
        r = http.get("/auth/authorize", params=authorize_params(engine, challenge, **over), follow_redirects=False)
        assert r.status_code == 303, over
        q = parse_qs(urlsplit(r.headers["location"]).query)
        assert q["error"] == [error] and q["state"] == ["s-42"], over


def test_smart_v1_scope_is_accepted_and_means_read_and_search(http, engine):
    verifier, challenge = pkce()
    location = sign_in(http, engine, LI, challenge, scope="launch/patient patient/*.read")
    tokens = exchange(http, parse_qs(urlsplit(location).query)["code"][0], verifier).json()
    assert tokens["scope"] == "launch/patient patient/*.read"
    assert http.get("/probe/Observation", headers=bearer(tokens["access_token"])).status_code == 200
    assert "refresh_token" not in tokens and "id_token" not in tokens


def test_unknown_id_number_looks_the_same_but_sends_nothing(http, engine):
    _, challenge = pkce()
    rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    stranger = nid("32092319850615222")
    known_page = None
    r = http.post("/auth/authorize/login", data={"request_id": rid, "national_id": stranger})
    assert r.status_code == 200 and outbox(engine) == []
    rid2 = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    known_page = http.post("/auth/authorize/login", data={"request_id": rid2, "national_id": ZHANG})
    assert known_page.text.replace(rid2, "") == r.text.replace(rid, "")
    r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": "000000"})
    assert r.status_code == 400


def test_invalid_id_number_is_a_clear_page_error(http, engine):
    _, challenge = pkce()
    rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    r = http.post("/auth/authorize/login", data={"request_id": rid, "national_id": ZHANG[:-1] + "0"
                                                 if ZHANG[-1] != "0" else ZHANG[:-1] + "1"})
    assert r.status_code == 400 and "valid 18-character" in r.text


def test_wrong_codes_lock_the_id_number_out(http, engine):
    _, challenge = pkce()
    rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    http.post("/auth/authorize/login", data={"request_id": rid, "national_id": ZHANG})
    right = outbox(engine)[-1]["code"]
    wrong = "111111" if right != "111111" else "222222"
    for _ in range(4):
        r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": wrong})
        assert r.status_code == 400 and "not right" in r.text
    r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": wrong})
    assert "locked" in r.text
    # even the right code (and a fresh request) is refused while locked
    r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": right})
    assert r.status_code == 400
    rid2 = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    r = http.post("/auth/authorize/login", data={"request_id": rid2, "national_id": ZHANG})
    assert r.status_code == 400 and "locked" in r.text


def test_codes_per_id_number_are_rate_limited(http, engine):
    _, challenge = pkce()
    statuses = []
    for _ in range(4):
        rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
        statuses.append(http.post("/auth/authorize/login", data={"request_id": rid, "national_id": LI}).status_code)
    assert statuses == [200, 200, 200, 400]
    assert len(outbox(engine)) == 3


def test_expired_login_code_is_refused(settings):
    s = settings.with_(extra={"resident_auth": {"otp_ttl": -1}})
    with Engine(s) as engine:
        ingest(engine, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "138"))
        engine.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT], public=True)
        with TestClient(create_app(engine)) as http:
            _, challenge = pkce()
            rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
            http.post("/auth/authorize/login", data={"request_id": rid, "national_id": ZHANG})
            r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": outbox(engine)[-1]["code"]})
            assert r.status_code == 400 and "expired" in r.text


def test_confidential_clients_cannot_use_resident_grants(http, engine):
    secret = engine.auth.registry.add("his-a", scopes=["system/*.cruds"], kind="system")
    r = http.post("/auth/token", data={"grant_type": "authorization_code", "code": "x", "code_verifier": "y" * 43},
                  auth=("his-a", secret))
    assert r.json()["error"] == "unauthorized_client"


def test_unknown_client_at_authorize_is_shown_not_redirected(http, engine):
    _, challenge = pkce()
    r = http.get("/auth/authorize?" + urlencode(authorize_params(engine, challenge, client_id="nobody")),
                 follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers


def test_expired_state_is_purged_but_live_state_kept(http, engine):
    live = launch(http, engine)
    resident = engine.auth.resident
    old = {"exp": 1}
    resident.codes.insert({"_id": "old-code", **old})
    resident.refresh.insert({"_id": "old-refresh", "family": "f", **old})
    engine.auth.revoked.insert({"_id": "old-jti", **old})
    _, challenge = pkce()
    http.get("/auth/authorize", params=authorize_params(engine, challenge))  # purges as a side effect
    assert resident.codes.get("old-code") is None and resident.refresh.get("old-refresh") is None
    assert engine.auth.revoked.get("old-jti") is None
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": live["refresh_token"],
                                       "client_id": APP})
    assert r.status_code == 200
