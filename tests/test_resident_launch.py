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


def test_public_app_refreshes_without_client_id_like_the_smart_js_library(http, engine):
    first = launch(http, engine)
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["patient"] == first["patient"] and second["refresh_token"] != first["refresh_token"]
    assert http.get("/probe/Observation", headers=bearer(second["access_token"])).status_code == 200
    # rotation still holds: the used token replayed without client_id revokes the grant
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert http.get("/probe/Observation", headers=bearer(second["access_token"])).status_code == 401
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "not-a-token"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_a_confidential_clients_refresh_token_still_needs_its_credentials(http, engine):
    """RFC 6749 §6: the token identifies a confidential client but does not authenticate it."""
    tokens = launch(http, engine)
    resident = engine.auth.resident
    doc = next(d for d in resident.refresh.find({}) if not d["used"])
    engine.auth.registry.add("confidential-app", scopes=SCOPE.split(), kind="patient-app",
                             redirect_uris=["https://conf.example/cb"])
    resident.refresh.update(doc["_id"], {"client_id": "confidential-app"})
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


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


def start_login(http, engine, number: str) -> tuple[str, object]:
    """Open a fresh sign-in request and ask for a code; (request id, code page response)."""
    _, challenge = pkce()
    rid = request_id(http.get("/auth/authorize", params=authorize_params(engine, challenge)).text)
    return rid, http.post("/auth/authorize/login", data={"request_id": rid, "national_id": number})


def other_device(app, address: str) -> TestClient:
    """Another phone: its own client address and cookie jar, same server."""
    return TestClient(app, base_url="https://huren.test", client=(address, 40000))


def wrong_code(right: str) -> str:
    return "111111" if right != "111111" else "222222"


def wait_passes(engine, address: str = "testclient") -> None:
    """Let the backoff of ``address`` run out (instead of sleeping through it)."""
    limits = engine.auth.resident.limits
    doc = limits.get("wait:" + address)
    if doc is not None:
        limits.replace({**doc, "until": 0})


def test_wrong_codes_kill_the_challenge_not_the_id_number(app, http, engine):
    rid, page = start_login(http, engine, ZHANG)
    right = outbox(engine)[-1]["code"]
    for _ in range(4):
        r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": wrong_code(right)})
        assert r.status_code == 400 and "not right" in r.text
        wait_passes(engine)
    r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": wrong_code(right)})
    assert r.status_code == 400 and "no longer works" in r.text
    wait_passes(engine)
    # the dead code stays dead, even when the right one is tried now
    r = http.post("/auth/authorize/verify", data={"request_id": rid, "code": right}, follow_redirects=False)
    assert r.status_code == 400
    # the owner, on their own phone, signs in at once: the ID number is not locked
    with other_device(app, "10.0.0.2") as phone:
        verifier, challenge = pkce()
        location = sign_in(phone, engine, ZHANG, challenge)
        assert parse_qs(urlsplit(location).query)["code"]


def test_attacker_hammering_an_id_number_cannot_keep_its_owner_out(app, engine):
    attacker = other_device(app, "203.0.113.9")
    refused = 0
    for _ in range(12):  # request codes for Zhang's number and guess each one wrong, over and over
        rid, page = start_login(attacker, engine, ZHANG)
        if page.status_code != 200:
            refused += 1
            continue
        for _ in range(5):
            attacker.post("/auth/authorize/verify", data={"request_id": rid, "code": "000000"})
    assert refused >= 9  # the attacker's address is throttled and backs off ...
    r = attacker.post("/auth/authorize/login", data={"request_id": start_login(attacker, engine, LI)[0],
                                                     "national_id": LI})
    assert r.status_code == 400 and ("wait" in r.text or "Too many" in r.text)
    # ... while Zhang, from another address, signs in and gets tokens
    with other_device(app, "198.51.100.7") as phone:
        tokens = launch(phone, engine, ZHANG)
        assert tokens["patient"] in ("fn-zhang", "fz-zhang")


def test_wrong_codes_make_the_sending_address_wait_longer_each_time(settings):
    s = settings.with_(extra={"resident_auth": {"code_attempts": 20}})
    with Engine(s) as engine:
        ingest(engine, patient("fn-li", LI, "李四", "female", "1992-11-20", "urn:huren:mrn:FNXRMYY", "139"))
        engine.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT],
                                 public=True)
        with other_device(create_app(engine), "203.0.113.10") as attacker:
            rid, _ = start_login(attacker, engine, LI)

            def guess() -> str:
                return attacker.post("/auth/authorize/verify", data={"request_id": rid, "code": "000000"}).text

            for _ in range(4):  # three free mistakes (a resident mistypes), then the waiting starts
                assert "not right" in guess()
            waits = []
            for _ in range(4):
                waits.append(int(re.search(r"wait (\d+) seconds", guess()).group(1)))
                wait_passes(engine, "203.0.113.10")
                assert "not right" in guess()
            assert waits == [2, 4, 8, 16]


def test_a_spread_out_attack_meets_the_per_id_ceiling_but_not_the_owners_phone(settings):
    s = settings.with_(extra={"resident_auth": {"sends_per_id": 4}})
    with Engine(s) as engine:
        ingest(engine, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "138"))
        engine.auth.registry.add(APP, scopes=SCOPE.split(), kind="patient-app", redirect_uris=[REDIRECT],
                                 public=True)
        app = create_app(engine)
        with other_device(app, "198.51.100.7") as phone:
            launch(phone, engine, ZHANG)  # Zhang signed in on this phone before: it got a device cookie
            assert phone.cookies.get("huren_device")
            for i in range(4):  # a botnet asks for codes from many addresses
                with other_device(app, f"203.0.113.{20 + i}") as bot:
                    start_login(bot, engine, ZHANG)
            with other_device(app, "203.0.113.99") as bot:
                rid, page = start_login(bot, engine, ZHANG)
                assert page.status_code == 400 and "phone you used before" in page.text
            assert launch(phone, engine, ZHANG)["patient"] == "fn-zhang"  # the known phone still gets in


def test_codes_per_id_number_and_address_are_rate_limited(app, http, engine):
    statuses = [start_login(http, engine, LI)[1].status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 400]
    assert len(outbox(engine)) == 3
    with other_device(app, "10.0.0.3") as phone:  # the same number from another phone is not refused
        assert start_login(phone, engine, LI)[1].status_code == 200


def test_limits_are_data_and_unknown_overrides_are_refused(settings):
    from engine.auth.resident import Policy

    assert Policy.load().code_attempts == 5
    assert Policy.load({"code_attempts": 3}).code_attempts == 3
    with pytest.raises(ValueError, match="max_failures"):
        Policy.load({"max_failures": 5})


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


def test_a_residents_app_may_not_store_home_measurements(http, engine):
    """Even an app registered with write scopes gets read and search only for a resident: the shared
    record holds what member institutions sent."""
    engine.auth.registry.add("bp-diary", scopes=["launch/patient", "patient/Observation.cruds"], kind="patient-app",
                             redirect_uris=["https://bp.example/cb"], public=True)
    _, challenge = pkce()
    r = http.get("/auth/authorize", params=authorize_params(
        engine, challenge, client_id="bp-diary", redirect_uri="https://bp.example/cb",
        scope="launch/patient patient/Observation.c"), follow_redirects=False)
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == ["invalid_scope"] and "read and search" in q["error_description"][0]


def test_userinfo_names_the_person_and_their_record(http, engine):
    tokens = launch(http, engine)
    r = http.get("/auth/userinfo", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert r.json() == {"sub": claims["sub"], "fhirUser": claims["fhirUser"]}
    assert http.get("/.well-known/openid-configuration").json()["userinfo_endpoint"].endswith("/auth/userinfo")
    system = engine.auth.issue_system_token("his", "system/*.rs")
    r = http.get("/auth/userinfo", headers=bearer(system))
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"
    assert http.get("/auth/userinfo").status_code == 401
