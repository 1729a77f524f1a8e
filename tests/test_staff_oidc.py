"""Staff sign-in through the bureau's OpenID Connect provider: authorization code + PKCE against a small
provider served over real HTTP (uvicorn on a free port) that signs id_tokens with a real RSA key. huren
discovers it, sends the browser there, and accepts the id_token only when signed by the provider's key,
for huren's client id, with the nonce and PKCE verifier of this sign-in."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff_session import SESSION_COOKIE
from engine.settings import Settings
from tests.test_reports_ui import _free_port
from tests.test_staff_signin import flags

CLIENT_ID = "huren-ybj"


@functools.cache
def _provider_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The provider's signing key and the other key a tampered id_token is signed with, made once a process: each
    test's provider had made both (~40 ms of CPU each); one provider serves a test, under an issuer of its own."""
    return (rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048))


class Provider:
    """A minimal OIDC provider: discovery, authorize (the person is already signed in there), token, JWKS."""

    def __init__(self) -> None:
        self.key, self.other_key = _provider_keys()
        self.user: dict[str, Any] = {}
        self.tamper: str | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.issuer = ""
        self.token_requests: list[dict[str, str]] = []
        self.app = FastAPI()
        self.app.get("/.well-known/openid-configuration")(self.discovery)
        self.app.get("/authorize")(self.authorize)
        self.app.post("/token")(self.token)
        self.app.get("/jwks")(self.jwks)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"]}

    def authorize(self, request: Request) -> Any:
        q = request.query_params
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"], "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q["state"]}),
                                status_code=302)

    def token(self, request: Request, grant_type: str = Form(), code: str = Form(), redirect_uri: str = Form(),
              code_verifier: str = Form(), client_id: str = Form()) -> Any:
        self.token_requests.append({"code_verifier": code_verifier, "client_id": client_id})
        grant = self.codes.pop(code, None)
        if grant is None or grant_type != "authorization_code" or redirect_uri != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:  # RFC 7636 §4.6
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "u-" + self.user["preferred_username"], "aud": CLIENT_ID,
                  "iat": now, "exp": now + 300, "nonce": grant["nonce"], **self.user}
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = "something-else"
        elif self.tamper == "aud":
            claims["aud"] = "another-app"
        elif self.tamper == "key":
            key = self.other_key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
        return {"access_token": "at-" + code, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[int]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port unless given; real HTTP); yields the port."""
    port = port or _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def provider() -> Iterator[Provider]:
    """The provider under the host name ``localhost``: a different site from huren at 127.0.0.1, so a
    browser treats the round trip as cross-site, as it is in production."""
    p = Provider()
    with serve(p.app) as port:
        p.issuer = f"http://localhost:{port}"
        yield p


@pytest.fixture
def oidc_engine(tmp_path: Path, provider: Provider) -> Iterator[Any]:
    from engine.engine import Engine

    site = tmp_path / "site"
    (site / "staff").mkdir(parents=True)
    (site / "staff" / "oidc.yaml").write_text(f"""
issuer: {provider.issuer}
client_id: {CLIENT_ID}
scopes: [openid, profile]
username_claim: preferred_username
display_claim: name
institution_claim: org
remit_claim: region
role_claim: groups
roles:
  ybj-auditors: auditor
  ybj-it: operator
""", encoding="utf-8")
    eng = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    yield eng
    eng.close()


def through_provider(http: TestClient, next_path: str = "/ui/duplicates") -> httpx.Response:
    """The browser's round trip: huren → the provider (real HTTP) → back to huren's callback."""
    start = http.get("/ui/signin/oidc", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 303
    location = start.headers["location"]
    assert location.startswith(http.app.state.engine.staff.oidc.config.issuer + "/authorize?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43 and query["nonce"]
    back = httpx.get(location, follow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = urllib.parse.urlsplit(back.headers["location"])
    assert callback.path == "/ui/signin/oidc/callback"
    return http.get(callback.path + "?" + callback.query, follow_redirects=False)


def test_auditor_signs_in_through_the_bureau_and_is_named_in_reviews(oidc_engine, provider) -> None:
    flag = flags(oidc_engine)
    provider.user = {"preferred_username": "li.shen", "name": "李审", "groups": ["staff", "ybj-auditors"], "org": "YBJ"}
    http = TestClient(create_app(oidc_engine))
    page = http.get("/ui/signin")
    assert "使用医保局统一身份认证登录" in page.text and 'href="/ui/signin/oidc?next=/ui/duplicates"' in page.text

    r = through_provider(http)
    assert r.status_code == 200 and r.headers["refresh"] == "0;url=/ui/duplicates"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    # the provider got the PKCE verifier matching the challenge (it checks; a wrong one is invalid_grant)
    assert provider.token_requests[-1]["client_id"] == CLIENT_ID
    me = http.get("/ui/session").json()
    assert (me["name"], me["display"], me["role"], me["institution"]) == ("li.shen", "李审", "auditor", "YBJ")

    r = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": "急诊复查"},
                  headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200 and r.json()["reviews"][-1]["by"] == "staff:li.shen 李审 (auditor)"
    events = oidc_engine.audit.events()
    review = next(e for e in events if any(c.get("code") == "review" for c in e.get("subtype") or []))
    assert review["agent"][0]["who"]["identifier"]["value"] == "li.shen"

    # signed out, then back with another group: the role follows the claim → role mapping
    http.post("/ui/signout", data={"csrf": me["csrf"]})
    assert http.get("/ui/session").status_code == 401
    provider.user["groups"] = ["ybj-it"]
    assert through_provider(http).status_code == 200
    assert http.get("/ui/session").json()["role"] == "operator"


def test_the_providers_remit_claim_binds_the_auditor(oidc_engine, provider) -> None:
    """A bureau account whose ``region`` claim names one institution sees that institution's flags only."""
    flag = flags(oidc_engine)  # the repeat is at B (FNZYY)
    http = TestClient(create_app(oidc_engine))
    provider.user = {"preferred_username": "zhou.qu", "name": "周区", "groups": ["ybj-auditors"], "org": "YBJ",
                     "region": "FNXRMYY"}
    assert through_provider(http).status_code == 200
    assert http.get("/ui/session").json()["remit"] == "FNXRMYY"
    assert http.get("/reports/duplicates").json()["rows"] == []
    assert http.get(f"/reports/duplicates/{flag}").status_code == 404
    http.post("/ui/signout", data={"csrf": http.get("/ui/session").json()["csrf"]})
    provider.user["region"] = "FNZYY"
    assert through_provider(http).status_code == 200
    assert [r["id"] for r in http.get("/reports/duplicates").json()["rows"]] == [flag]


@pytest.mark.parametrize("tamper", ["nonce", "aud", "key"])
def test_an_id_token_that_does_not_verify_signs_no_one_in(oidc_engine, provider, tamper) -> None:
    provider.user = {"preferred_username": "li.shen", "name": "李审", "groups": ["ybj-auditors"]}
    provider.tamper = tamper
    http = TestClient(create_app(oidc_engine))
    r = through_provider(http)
    assert r.status_code == 403 and "无法核验" in r.text and "could not be verified" in r.text
    assert SESSION_COOKIE not in http.cookies
    assert http.get("/ui/session").status_code == 401


def test_no_role_wrong_browser_and_replay_are_refused(oidc_engine, provider) -> None:
    provider.user = {"preferred_username": "zhang.san", "name": "张三", "groups": ["ybj-canteen"]}
    http = TestClient(create_app(oidc_engine))
    r = through_provider(http)
    assert r.status_code == 403 and "没有本系统的角色" in r.text and "has no role in huren" in r.text
    assert http.get("/ui/session").status_code == 401

    provider.user = {"preferred_username": "li.shen", "name": "李审", "groups": ["ybj-auditors"]}
    start = http.get("/ui/signin/oidc", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False, timeout=10)
    callback = urllib.parse.urlsplit(back.headers["location"])
    # an attacker's browser (no binding cookie) handed the victim's callback URL gets nothing ...
    other = TestClient(create_app(oidc_engine))
    r = other.get(callback.path + "?" + callback.query, follow_redirects=False)
    assert r.status_code == 403 and "其他浏览器" in r.text
    # ... and the state it burned cannot be used again, not even by the right browser
    r = http.get(callback.path + "?" + callback.query, follow_redirects=False)
    assert r.status_code == 403 and http.get("/ui/session").status_code == 401
    # a provider's error answer is a plain refusal too
    r = http.get("/ui/signin/oidc/callback?error=access_denied&state=x", follow_redirects=False)
    assert r.status_code == 403


def test_without_a_site_provider_there_is_no_oidc_sign_in(engine) -> None:
    http = TestClient(create_app(engine))
    assert engine.staff.oidc is None
    assert "统一身份认证" not in http.get("/ui/signin").text
    assert http.get("/ui/signin/oidc", follow_redirects=False).status_code == 404
