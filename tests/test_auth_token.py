"""Hospital systems get tokens with client credentials and use them; everything else is refused.

All through real HTTP (FastAPI TestClient) against the real app, the real client registry file and
real signed JWTs.
"""

from __future__ import annotations

import base64
import json
import stat
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.caller import Caller
from engine.auth.deps import get_caller
from engine.cli import main as cli_main
from engine.engine import Engine


@pytest.fixture
def app(engine):
    app = create_app(engine)

    # A protected probe route: proves the dependency end to end without depending on /fhir.
    @app.get("/probe/Observation")
    def probe(caller: Caller = Depends(get_caller)) -> dict:
        caller.require("Observation", "s")
        return {"subject": caller.subject, "kind": caller.kind, "scopes": list(caller.scopes)}

    return app


@pytest.fixture
def http(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def his_secret(engine) -> str:
    return engine.auth.registry.add("his-a", scopes=["system/*.cruds"], kind="system")


def basic(cid: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_client_secret_basic_gets_a_token_that_opens_the_api(http, his_secret):
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Observation.rs"},
                  headers=basic("his-a", his_secret))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/Observation.rs"
    assert 0 < body["expires_in"] <= 3600
    assert r.headers["cache-control"] == "no-store"
    probe = http.get("/probe/Observation", headers=bearer(body["access_token"]))
    assert probe.status_code == 200
    assert probe.json() == {"subject": "his-a", "kind": "system", "scopes": ["system/Observation.rs"]}


def test_client_secret_post_and_default_scopes(http, his_secret):
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "his-a",
                                       "client_secret": his_secret})
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/*.cruds"


def test_token_is_an_eddsa_jwt_verifiable_with_the_published_jwks(http, his_secret, engine):
    token = http.post("/auth/token", data={"grant_type": "client_credentials"},
                      headers=basic("his-a", his_secret)).json()["access_token"]
    keys = http.get("/auth/jwks").json()["keys"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == keys[0]["kid"]
    key = jwt.PyJWK.from_dict(keys[0])
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience=engine.settings.fhir_base_url)
    assert claims["sub"] == "his-a" and claims["iss"] == engine.settings.public_base_url


def test_bad_client_credentials_are_invalid_client(http, his_secret):
    cases = [
        (basic("his-a", "wrong-secret"), {}),
        ({}, {"client_id": "his-a", "client_secret": "nope"}),
        ({}, {"client_id": "nobody", "client_secret": "x"}),
        ({}, {"client_id": "his-a"}),
    ]
    for headers, data in cases:
        r = http.post("/auth/token", data={"grant_type": "client_credentials", **data}, headers=headers)
        assert r.status_code == 401, data
        assert r.json()["error"] == "invalid_client"
        if headers:
            assert r.headers["www-authenticate"].startswith("Basic")


def test_scope_escalation_is_invalid_scope(http, engine):
    secret = engine.auth.registry.add("lis-b", scopes=["system/Observation.rs"], kind="system")
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/Observation.cruds"},
                  headers=basic("lis-b", secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "scope": "patient/*.rs"},
                  headers=basic("lis-b", secret))
    assert r.json()["error"] == "invalid_scope"


def test_narrowed_token_is_refused_beyond_its_scope(http, engine):
    secret = engine.auth.registry.add("pacs-c", scopes=["system/ImagingStudy.cruds"], kind="system")
    token = http.post("/auth/token", data={"grant_type": "client_credentials"},
                      headers=basic("pacs-c", secret)).json()["access_token"]
    r = http.get("/probe/Observation", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["resourceType"] == "OperationOutcome" and r.json()["issue"][0]["code"] == "forbidden"


def test_malformed_token_requests(http, his_secret):
    for data, error in [({}, "invalid_request"),
                        ({"grant_type": "password", "username": "x", "password": "y"}, "unsupported_grant_type")]:
        r = http.post("/auth/token", data=data, headers=basic("his-a", his_secret))
        assert r.status_code == 400 and r.json()["error"] == error


def test_two_authentication_methods_at_once_are_refused(http, his_secret):
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "his-a",
                                       "client_secret": his_secret}, headers=basic("his-a", his_secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_missing_token_is_401_with_bearer_challenge(http):
    r = http.get("/probe/Observation")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["resourceType"] == "OperationOutcome"


def _assert_invalid_token(r):
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["issue"][0]["code"] == "login"


def test_expired_tampered_foreign_and_revoked_tokens_are_refused(http, engine, tmp_path):
    auth = engine.auth
    expired, _ = auth.issue_token(subject="his-a", kind="system", client_id="his-a", scopes=["system/*.cruds"],
                                  ttl=-10)
    _assert_invalid_token(http.get("/probe/Observation", headers=bearer(expired)))

    good = auth.issue_system_token("his-a")
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "system/*.cruds system/AuditEvent.cruds"
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(), sig])
    _assert_invalid_token(http.get("/probe/Observation", headers=bearer(forged)))

    with Engine(engine.settings.with_(data_dir=tmp_path / "other")) as other:
        foreign = other.auth.issue_system_token("his-a")
    _assert_invalid_token(http.get("/probe/Observation", headers=bearer(foreign)))

    assert http.get("/probe/Observation", headers=bearer(good)).status_code == 200
    claims = auth.decode(good)
    auth.revoke_jti(claims["jti"], claims["exp"])
    _assert_invalid_token(http.get("/probe/Observation", headers=bearer(good)))


def test_token_for_another_audience_is_refused(http, engine, tmp_path):
    other_settings = engine.settings.with_(base_url="https://elsewhere.example")
    # same key (same data_dir), different aud/iss: must not be accepted here
    with Engine(other_settings) as other:
        token = other.auth.issue_system_token("his-a")
    _assert_invalid_token(http.get("/probe/Observation", headers=bearer(token)))


def _es256_client(engine, cid="backend-d"):
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
    engine.auth.registry.add(cid, scopes=["system/*.rs"], kind="system", jwks={"keys": [jwk]})
    return key


def _assertion(key, cid, aud, **over):
    now = int(time.time())
    claims = {"iss": cid, "sub": cid, "aud": aud, "exp": now + 240, "jti": str(uuid.uuid4()), **over}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})


def test_private_key_jwt_client_authentication(http, engine):
    key = _es256_client(engine)
    aud = engine.auth.token_endpoint
    form = {"grant_type": "client_credentials", "scope": "system/Observation.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    assertion = _assertion(key, "backend-d", aud)
    r = http.post("/auth/token", data={**form, "client_assertion": assertion})
    assert r.status_code == 200, r.text
    assert http.get("/probe/Observation", headers=bearer(r.json()["access_token"])).status_code == 200
    # replaying the same assertion, a wrong audience, a too-long lifetime, a foreign key: all refused
    r = http.post("/auth/token", data={**form, "client_assertion": assertion})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = http.post("/auth/token", data={**form, "client_assertion": _assertion(key, "backend-d", "https://x/token")})
    assert r.json()["error"] == "invalid_client"
    r = http.post("/auth/token", data={**form, "client_assertion": _assertion(
        key, "backend-d", aud, exp=int(time.time()) + 3600)})
    assert r.json()["error"] == "invalid_client"
    stranger = ec.generate_private_key(ec.SECP256R1())
    r = http.post("/auth/token", data={**form, "client_assertion": _assertion(stranger, "backend-d", aud)})
    assert r.json()["error"] == "invalid_client"


def test_cli_client_add_prints_secret_once_and_stores_only_a_hash(settings, capsys, monkeypatch):
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    assert cli_main(["client", "add", "his-x", "--scope", "system/*.cruds"]) == 0
    out = capsys.readouterr().out
    secret = out.strip().rsplit(" ", 1)[-1]
    stored = (settings.data_dir / "clients.json").read_text()
    assert secret not in stored and "scrypt$" in stored
    assert stat.S_IMODE((settings.data_dir / "clients.json").stat().st_mode) == 0o600
    assert cli_main(["client", "add", "bad", "--scope", "system/*.xyz"]) == 2
    with Engine(settings) as eng, TestClient(create_app(eng)) as c:
        r = c.post("/auth/token", data={"grant_type": "client_credentials"}, headers=basic("his-x", secret))
        assert r.status_code == 200


def test_cli_keys_init_creates_a_private_key_readable_by_owner_only(settings, capsys, monkeypatch):
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    assert cli_main(["keys", "init"]) == 0
    assert "created" in capsys.readouterr().out
    path = settings.data_dir / "keys" / "token-ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli_main(["keys", "init"]) == 0
    assert "exists" in capsys.readouterr().out
