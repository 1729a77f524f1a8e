"""Staff sign-in through the bureau's own OpenID Connect identity provider (authorization code + PKCE).

Configured as data: a site file ``staff/oidc.yaml`` (in ``HUREN_SITE``; none is shipped, so the
option is off until a site names its provider) gives the issuer, the client id, how to read the
person's name and institution from the id_token, and which claim values map to which huren role.
The client secret, if the provider issued one, is named by an environment variable
(``client_secret_env``), never written in the file.

The flow (OpenID Connect Core 1.0 §3.1, RFC 7636): ``start`` keeps ``state``, ``nonce`` and the
PKCE verifier in the store under the state's hash, bound to the browser by a cookie; ``finish``
accepts each state once within ten minutes, exchanges the code with the verifier, and accepts the
id_token only when signed by a key of the issuer's JWKS, for this client (``aud``, ``azp``), from
this issuer, unexpired, with the nonce it was sent. A person whose claims map to no role is refused:
being known to the bureau does not make someone an auditor here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from engine.auth.staff import StaffIdentity
from engine.repository.port import Store
from engine.settings import Settings
from mappings.sitefiles import SiteError, check, read_yaml

PENDING_SECONDS = 600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
_TIMEOUT = 10.0

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["issuer", "client_id", "role_claim", "roles"],
    "additionalProperties": False,
    "properties": {
        "issuer": {"type": "string", "pattern": "^https?://"},
        "client_id": {"type": "string", "minLength": 1},
        "client_secret_env": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "username_claim": {"type": "string"},
        "display_claim": {"type": "string"},
        "institution_claim": {"type": "string"},
        "institution": {"type": "string"},
        "remit_claim": {"type": "string"},
        "role_claim": {"type": "string"},
        "roles": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
        "label": {"type": "object", "required": ["zh", "en"],
                  "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
    },
}


class OidcRefused(Exception):
    """The provider's answer is not accepted; ``reason`` is a key of the sign-in page's messages."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: tuple[str, ...]
    username_claim: str
    display_claim: str
    institution_claim: str | None
    institution: str
    role_claim: str
    roles: dict[str, str]  # claim value -> huren role, first match (file order) wins
    label_zh: str
    label_en: str
    remit_claim: str | None = None  # the claim naming the institution/community/region the person audits


def load_oidc(settings: Settings, known_roles: set[str], env: dict[str, str] | None = None) -> OidcConfig | None:
    """The site's provider, or None when the site names none (the shipped defaults name none)."""
    if settings.site is None or not (settings.site / "staff" / "oidc.yaml").is_file():
        return None
    doc = read_yaml(settings.site / "staff" / "oidc.yaml")
    data = check(doc, _SCHEMA)
    unknown = sorted(set(data["roles"].values()) - known_roles)
    if unknown:
        raise SiteError(doc.path, doc.line_of(["roles"]), "roles", f"unknown huren role(s): {', '.join(unknown)}")
    env = dict(os.environ if env is None else env)
    secret = env.get(data["client_secret_env"]) if data.get("client_secret_env") else None
    label = data.get("label") or {"zh": "使用医保局统一身份认证登录", "en": "Sign in with the bureau's identity provider"}
    return OidcConfig(
        issuer=data["issuer"].rstrip("/"), client_id=data["client_id"], client_secret=secret or None,
        scopes=tuple(data.get("scopes") or ("openid", "profile")),
        username_claim=data.get("username_claim", "preferred_username"), display_claim=data.get("display_claim", "name"),
        institution_claim=data.get("institution_claim"), institution=data.get("institution", ""),
        role_claim=data["role_claim"], roles=dict(data["roles"]), remit_claim=data.get("remit_claim"), label_zh=label["zh"], label_en=label["en"])


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json"}),
                                timeout=_TIMEOUT) as resp:
        return json.loads(resp.read())


class OidcSignIn:
    def __init__(self, config: OidcConfig, store: Store, redirect_uri: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.redirect_uri = redirect_uri
        self.clock = clock
        self.pending = store.collection("staff_oidc_pending")
        self.pending.ensure_index(["created"])
        self._metadata: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once); its ``issuer`` must be the configured one."""
        if self._metadata is None:
            meta = _get_json(self.config.issuer + "/.well-known/openid-configuration")
            if str(meta.get("issuer", "")).rstrip("/") != self.config.issuer:
                raise OidcRefused("provider", f"the provider calls itself {meta.get('issuer')!r}, "
                                              f"not the configured {self.config.issuer!r}")
            self._metadata = meta
            self._jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, timeout=int(_TIMEOUT))
        return self._metadata

    def start(self, next_path: str) -> tuple[str, str]:
        """(the provider's authorization URL to send the browser to, the browser-binding cookie value)."""
        meta = self.metadata()
        state, nonce, verifier, binding = (secrets.token_urlsafe(32) for _ in range(4))
        now = self.clock()
        for old in self.pending.find({"created": {"$lt": now - PENDING_SECONDS}}, limit=200):
            self.pending.delete(old["_id"])
        self.pending.insert({"_id": _digest(state), "binding": _digest(binding), "nonce": nonce,
                             "verifier": verifier, "next": next_path, "created": now})
        query = {"response_type": "code", "client_id": self.config.client_id, "redirect_uri": self.redirect_uri,
                 "scope": " ".join(self.config.scopes), "state": state, "nonce": nonce,
                 "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
                 "code_challenge_method": "S256"}
        endpoint = meta["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(query), binding

    def finish(self, *, state: str, code: str, binding: str | None) -> tuple[StaffIdentity, str]:
        """The person the provider vouches for and the page they were going to."""
        doc = self.pending.get(_digest(state)) if state else None
        if doc is None:
            raise OidcRefused("oidc-state", "unknown or already used state")
        self.pending.delete(doc["_id"])  # one use, whatever happens next
        if self.clock() - doc["created"] > PENDING_SECONDS:
            raise OidcRefused("oidc-state", "the sign-in took longer than ten minutes")
        if not binding or not hmac.compare_digest(doc["binding"], _digest(binding)):
            raise OidcRefused("oidc-state", "the answer came back to a different browser")
        if not code:
            raise OidcRefused("oidc-state", "no authorization code")
        claims = self._id_token_claims(self._exchange(code, doc["verifier"]), doc["nonce"])
        return self._person(claims), doc["next"]

    def _exchange(self, code: str, verifier: str) -> str:
        meta = self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": verifier, "client_id": self.config.client_id}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.config.client_secret:  # client_secret_basic (RFC 6749 §2.3.1: form-encode, then Base64)
            pair = f"{urllib.parse.quote(self.config.client_id, safe='')}:" \
                   f"{urllib.parse.quote(self.config.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        req = urllib.request.Request(meta["token_endpoint"], data=urllib.parse.urlencode(form).encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise OidcRefused("provider", f"token endpoint answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise OidcRefused("provider", f"token endpoint unreachable or unreadable: {exc}") from exc
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise OidcRefused("provider", "the token response has no id_token")
        return token

    def _id_token_claims(self, token: str, nonce: str) -> dict[str, Any]:
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=self.config.client_id,
                                issuer=self.metadata()["issuer"], leeway=60,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.PyJWTError as exc:
            raise OidcRefused("oidc-token", f"id_token not accepted: {exc}") from exc
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise OidcRefused("oidc-token", "id_token nonce does not match this sign-in")
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcRefused("oidc-token", "id_token for several audiences without this client as azp")
        return claims

    def _person(self, claims: dict[str, Any]) -> StaffIdentity:
        c = self.config
        name = claims.get(c.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise OidcRefused("oidc-token", f"id_token has no {c.username_claim!r}")
        values = claims.get(c.role_claim)
        held = {values} if isinstance(values, str) else {v for v in values or () if isinstance(v, str)} \
            if isinstance(values, list) else set()
        role = next((r for value, r in c.roles.items() if value in held), None)
        if role is None:
            raise OidcRefused("oidc-role", f"{name}: no huren role for {c.role_claim}={sorted(held)}")
        institution = claims.get(c.institution_claim) if c.institution_claim else None
        display = claims.get(c.display_claim)
        remit = claims.get(c.remit_claim) if c.remit_claim else None
        return StaffIdentity(name=name.strip(), role=role,
                             institution=str(institution) if institution else c.institution,
                             display=str(display) if isinstance(display, str) else "",
                             remit=str(remit) if isinstance(remit, str) else "")

