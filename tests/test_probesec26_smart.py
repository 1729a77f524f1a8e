"""probesec26: SMART App Launch and Bearer errors, probed through real HTTP against the real app.

Expected answers from the published specs: SMART App Launch 2.x (app-launch.html §"Response" of
.well-known/smart-configuration, §"Obtain access token"; scopes-and-launch-context.html;
backend-services.html; client-confidential-asymmetric.html), RFC 6749 §4.1.2 / §6 / §10.5,
RFC 7636 §4.6, RFC 6750 §3 / §3.1.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.test_resident_launch import (
    APP,
    REDIRECT,
    ZHANG,
    app,
    authorize_params,
    bearer,
    exchange,
    http,
    launch,
    people,
    pkce,
    sign_in,
)

__all__ = ["app", "http", "people"]  # fixtures of the real resident launch

OTHER_APP = "other-phr"


def _code(http, engine, number=ZHANG, **over):
    verifier, challenge = pkce()
    q = parse_qs(urlsplit(sign_in(http, engine, number, challenge, **over)).query)
    return q["code"][0], verifier, q


# ---- discovery ---------------------------------------------------------------------------------


def test_smart_configuration_has_the_required_fields(http, engine):
    """app-launch.html §Response: REQUIRED authorization_endpoint, token_endpoint, capabilities,
    code_challenge_methods_supported (S256, SHALL NOT include plain), grant_types_supported;
    jwks_uri and issuer when sso-openid-connect; backend-services.html: the server SHALL support
    RS384 and ES384 for client assertions (token_endpoint_auth_signing_alg_values_supported)."""
    conf = http.get("/.well-known/smart-configuration")
    assert conf.status_code == 200 and conf.headers["content-type"].startswith("application/json")
    c = conf.json()
    for key in ("authorization_endpoint", "token_endpoint", "capabilities", "code_challenge_methods_supported",
                "grant_types_supported", "issuer", "jwks_uri"):
        assert key in c, key
    assert "plain" not in c["code_challenge_methods_supported"] and "S256" in c["code_challenge_methods_supported"]
    assert {"RS384", "ES384"} <= set(c["token_endpoint_auth_signing_alg_values_supported"])
    assert "private_key_jwt" in c["token_endpoint_auth_methods_supported"]
    assert c["issuer"] == engine.settings.public_base_url
    # the token endpoint it names is the one that answers
    assert urlsplit(c["token_endpoint"]).path == "/auth/token"
    assert http.get("/fhir/.well-known/smart-configuration").json() == c


# ---- authorization code: bound, single-use, short-lived ----------------------------------------


def test_code_is_bound_to_its_client(http, engine):
    """RFC 6749 §4.1.3: the code was issued to the authenticated client. Another public app (same
    redirect URI registered, right verifier) must not redeem it."""
    engine.auth.registry.add(OTHER_APP, scopes=["launch/patient", "patient/*.rs"], kind="patient-app",
                             redirect_uris=[REDIRECT], public=True)
    code, verifier, _ = _code(http, engine)
    r = exchange(http, code, verifier, client_id=OTHER_APP)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "access_token" not in r.json()


def test_code_without_redirect_uri_is_refused(http, engine):
    """RFC 6749 §4.1.3: redirect_uri REQUIRED at the token endpoint when it was in the request."""
    code, verifier, _ = _code(http, engine)
    r = exchange(http, code, verifier, redirect_uri=None)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_code_lifetime_is_at_most_ten_minutes_and_an_old_code_is_refused(engine, settings):
    """RFC 6749 §4.1.2: a maximum authorization code lifetime of 10 minutes is RECOMMENDED. The
    configured lifetime, then a code outliving a 1-second lifetime set the documented way."""
    from engine.auth.resident import Policy
    assert Policy.load().code_ttl <= 600

    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine
    from tests.test_resident_launch import ingest, patient
    s = settings.with_(data_dir=settings.data_dir.parent / "short", extra={
        **settings.extra, "resident_auth": {"code_ttl": 1}})
    with Engine(s) as eng:
        ingest(eng, patient("fn-zhang", ZHANG, "张三", "male", "1990-01-01", "urn:huren:mrn:FNXRMYY", "13800001111"))
        eng.auth.registry.add(APP, scopes=["launch/patient", "patient/*.rs"], kind="patient-app",
                              redirect_uris=[REDIRECT], public=True)
        with TestClient(create_app(eng), base_url="https://huren.test") as c:
            code, verifier, _ = _code(c, eng, scope="launch/patient patient/*.rs")
            time.sleep(2.2)
            r = exchange(c, code, verifier)
            assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_token_response_fields(http, engine):
    """app-launch.html §Response to token request: access_token, token_type "Bearer", scope
    REQUIRED; expires_in RECOMMENDED; patient when launch/patient was granted."""
    code, verifier, q = _code(http, engine, scope="launch/patient patient/*.rs")
    assert q["state"] == ["s-42"]
    body = exchange(http, code, verifier).json()
    assert body["token_type"] == "Bearer" and body["scope"] == "launch/patient patient/*.rs"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600
    assert body["patient"] in ("fn-zhang", "fz-zhang")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == body["expires_in"]


# ---- scopes: narrowing, v1/v2, granular, not granted -------------------------------------------


def test_narrowed_v2_scope_opens_only_its_type_over_fhir(http, engine):
    """scopes-and-launch-context.html: patient/Observation.rs grants read+search of Observation
    only. A Patient read with it is 403 (RFC 6750 §3.1 insufficient_scope), own Observation search 200."""
    code, verifier, _ = _code(http, engine, scope="launch/patient patient/Observation.rs")
    tok = exchange(http, code, verifier).json()
    assert tok["scope"] == "launch/patient patient/Observation.rs"
    h = bearer(tok["access_token"])
    assert http.get(f"/fhir/Observation?patient={tok['patient']}", headers=h).status_code == 200
    r = http.get(f"/fhir/Patient/{tok['patient']}", headers=h)
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_insufficient_scope_403_carries_a_bearer_challenge(http, engine):
    """RFC 6750 §3: when the request carries a token that does not enable access, the resource
    server MUST include WWW-Authenticate; §3.1 insufficient_scope -> 403 and MAY carry scope=."""
    code, verifier, _ = _code(http, engine, scope="launch/patient patient/Observation.rs")
    tok = exchange(http, code, verifier).json()
    r = http.get(f"/fhir/Patient/{tok['patient']}", headers=bearer(tok["access_token"]))
    assert r.status_code == 403
    challenge = r.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer") and 'error="insufficient_scope"' in challenge, dict(r.headers)


def test_v1_type_scope_means_read_and_search_of_that_type_only(http, engine):
    code, verifier, _ = _code(http, engine, scope="launch/patient patient/Observation.read")
    tok = exchange(http, code, verifier).json()
    h = bearer(tok["access_token"])
    assert http.get(f"/fhir/Observation?patient={tok['patient']}", headers=h).status_code == 200
    assert http.get(f"/fhir/Condition?patient={tok['patient']}", headers=h).status_code == 403


@pytest.mark.parametrize("scope", [
    "launch/patient patient/Observation.rs?category=laboratory",  # v2 granular: not supported -> refuse, not widen
    "launch/patient patient/Observation.cruds",  # more than registered
    "launch/patient user/*.rs",  # a context the app was not granted
    "launch/patient patient/*.rs system/*.rs",
])
def test_a_scope_not_granted_is_refused_at_authorize(http, engine, scope):
    _, challenge = pkce()
    r = http.get("/auth/authorize", params=authorize_params(engine, challenge, scope=scope), follow_redirects=False)
    assert r.status_code == 303
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["error"] == ["invalid_scope"] and q["state"] == ["s-42"] and "code" not in q


# ---- refresh --------------------------------------------------------------------------------------


def test_refresh_may_narrow_but_not_widen(http, engine):
    """RFC 6749 §6: the requested scope MUST NOT include any scope not originally granted."""
    first = launch(http, engine)
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP, "scope": "patient/*.cruds offline_access"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP, "scope": "launch/patient patient/Observation.rs offline_access"})
    assert r.status_code == 200, r.text
    narrowed = r.json()
    assert "patient/*.rs" not in narrowed["scope"].split()
    assert http.get(f"/fhir/Patient/{narrowed['patient']}", headers=bearer(narrowed["access_token"])).status_code == 403


def test_refresh_token_of_one_client_is_refused_to_another(http, engine):
    engine.auth.registry.add(OTHER_APP, scopes=["launch/patient", "patient/*.rs", "offline_access"],
                             kind="patient-app", redirect_uris=["https://other.example/cb"], public=True)
    first = launch(http, engine)
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": OTHER_APP})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # and its owner still refreshes
    r = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                       "client_id": APP})
    assert r.status_code == 200


def test_reuse_of_a_rotated_refresh_token_kills_the_live_access_token(http, engine):
    first = launch(http, engine)
    second = http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                            "client_id": APP}).json()
    h = bearer(second["access_token"])
    assert http.get("/probe/Observation", headers=h).status_code == 200
    http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                   "client_id": APP})
    r = http.get("/probe/Observation", headers=h)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


# ---- Bearer errors on /fhir ---------------------------------------------------------------------


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_bearer_errors_on_fhir(http, engine):
    """RFC 6750 §3: no token -> 401 + WWW-Authenticate Bearer (no error code); a bad token -> 401
    error="invalid_token". Never data, never a 500."""
    tok = launch(http, engine)
    r = http.get("/fhir/Patient/fn-zhang")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    claims = jwt.decode(tok["access_token"], options={"verify_signature": False})
    unsigned = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."
    pub = engine.auth.key.public
    from cryptography.hazmat.primitives import serialization
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs = _b64({"alg": "HS256", "typ": "JWT", "kid": engine.auth.key.kid}) + "." + _b64(claims)
    import hashlib
    import hmac
    hs += "." + base64.urlsafe_b64encode(hmac.new(pem, hs.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    for bad in (unsigned, hs, tok["id_token"], "abc", tok["access_token"] + "x", tok["refresh_token"]):
        r = http.get("/fhir/Patient/fn-zhang", headers=bearer(bad))
        assert r.status_code == 401, (bad[:20], r.status_code)
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert r.json()["resourceType"] == "OperationOutcome"
    # revoked through RFC 7009
    assert http.post("/auth/revoke", data={"token": tok["access_token"], "client_id": APP}).status_code == 200
    r = http.get("/fhir/Patient/fn-zhang", headers=bearer(tok["access_token"]))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_one_residents_token_against_anothers_compartment(http, engine):
    zhang = launch(http, engine, ZHANG)
    h = bearer(zhang["access_token"])
    assert http.get("/fhir/Patient/fn-zhang", headers=h).status_code == 200
    r = http.get("/fhir/Patient/fn-li", headers=h)
    assert r.status_code == 404 and "fn-li" not in r.text
    s = http.get("/fhir/Patient", headers=h).json()
    assert {e["resource"]["id"] for e in s.get("entry", [])} <= {"fn-zhang", "fz-zhang"}
    s = http.get("/fhir/Observation?patient=fn-li", headers=h)
    assert s.status_code in (200, 403, 404) and "fn-li" not in json.dumps(s.json().get("entry", []))


# ---- backend services: private_key_jwt ----------------------------------------------------------


def _backend(engine, alg="ES384", cid="backend-p"):
    curve = ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()
    key = ec.generate_private_key(curve)
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": alg, "use": "sig"})
    engine.auth.registry.add(cid, scopes=["system/Observation.rs"], kind="system", jwks={"keys": [jwk]})
    return key, jwk


def _assert(key, aud, alg="ES384", headers=None, **over):
    now = int(time.time())
    claims = {"iss": "backend-p", "sub": "backend-p", "aud": aud, "exp": now + 240, "jti": str(uuid.uuid4()), **over}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers=headers or {"kid": "k1", "typ": "JWT"})


FORM = {"grant_type": "client_credentials", "scope": "system/Observation.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}


def test_backend_services_es384_assertion_and_its_refusals(http, engine):
    """backend-services.html §Authorize: ES384 SHALL be supported; jti not reused; exp no more
    than five minutes ahead; aud = the token endpoint; alg none / HMAC refused."""
    key, jwk = _backend(engine)
    aud = http.get("/.well-known/smart-configuration").json()["token_endpoint"]
    r = http.post("/auth/token", data={**FORM, "client_assertion": _assert(key, aud)})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer" and r.json()["scope"] == "system/Observation.rs"
    now = int(time.time())
    x = base64.urlsafe_b64decode(jwk["x"] + "==")
    bad = {
        "expired": _assert(key, aud, exp=now - 5),
        "no jti": _assert(key, aud, jti=None),
        "no exp": _assert(key, aud, exp=None),
        "sub differs": _assert(key, aud, sub="someone"),
        "aud list of another": _assert(key, ["https://elsewhere.example/auth/token"]),
        "alg none": _b64({"alg": "none", "kid": "k1"}) + "." + _b64(
            {"iss": "backend-p", "sub": "backend-p", "aud": aud, "exp": now + 60, "jti": str(uuid.uuid4())}) + ".",
        "HS256 with the public x": jwt.encode({"iss": "backend-p", "sub": "backend-p", "aud": aud, "exp": now + 60,
                                              "jti": str(uuid.uuid4())}, x, algorithm="HS256",
                                             headers={"kid": "k1"}),
        "unknown kid": _assert(key, aud, headers={"kid": "k9"}),
    }
    for why, assertion in bad.items():
        r = http.post("/auth/token", data={**FORM, "client_assertion": assertion})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", (why, r.status_code, r.text)
    # a scope beyond the registration
    r = http.post("/auth/token", data={**FORM, "scope": "system/Patient.rs", "client_assertion": _assert(key, aud)})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_backend_token_refused_beyond_its_scope_on_fhir(http, engine):
    key, _ = _backend(engine)
    aud = engine.auth.token_endpoint
    tok = http.post("/auth/token", data={**FORM, "client_assertion": _assert(key, aud)}).json()["access_token"]
    h = bearer(tok)
    assert http.get("/fhir/Observation", headers=h).status_code == 200
    r = http.get("/fhir/Patient/fn-zhang", headers=h)
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"
    assert http.post("/fhir/Observation", headers=h, json={"resourceType": "Observation"}).status_code == 403


def test_capability_statement_security_agrees_with_discovery(http):
    """conformance.html: rest.security.service SMART-on-FHIR; the oauth-uris extension (deprecated
    but still read by clients) must name the same endpoints as .well-known/smart-configuration."""
    cs = http.get("/fhir/metadata")
    assert cs.status_code == 200
    sec = cs.json()["rest"][0]["security"]
    assert any(c["code"] == "SMART-on-FHIR" for s in sec["service"] for c in s["coding"])
    uris = {e["url"]: e["valueUri"] for x in sec["extension"] if x["url"].endswith("/oauth-uris")
            for e in x["extension"]}
    conf = http.get("/.well-known/smart-configuration").json()
    assert uris["token"] == conf["token_endpoint"] and uris["authorize"] == conf["authorization_endpoint"]
    assert uris["revoke"] == conf["revocation_endpoint"] and uris["introspect"] == conf["introspection_endpoint"]
