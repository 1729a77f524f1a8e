"""``AuthService``: issues and verifies access tokens, authenticates OAuth clients.

Access tokens are JWTs signed with the server's Ed25519 key (``engine.auth.keys``): verifying
one is a signature check plus a primary-key lookup in the revocation collection, so the FHIR hot
path never scans a token table. ``aud`` is the FHIR base URL and ``iss`` the public base URL, both
checked on every request. Client secrets are scrypt-hashed (``engine.auth.clients``); a verified
(client, secret) pair is remembered in memory for a few minutes so a busy backend client
fetching tokens does not pay the KDF each time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import jwt

from engine.auth import scopes as sc
from engine.auth.caller import Caller
from engine.auth.clients import Client, ClientRegistry, check_secret
from engine.auth.errors import OAuthError
from engine.auth.keys import load_or_create, load_or_create_id_token_key
from engine.errors import FhirError, Unauthorized
from engine.repository.port import DuplicateKey, Store
from engine.settings import Settings

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS384", "ES384", "RS256", "ES256", "EdDSA"]
ME_CLIENT_ID = "huren-me"  # the resident page /ui/me is itself a public SMART app
_SECRET_CACHE_SECONDS = 300.0
_VERIFIED_CACHE_SIZE = 4096
_KIND_BY_CLIENT = {"system": "system", "auditor": "auditor", "user": "user"}


def _www_authenticate(error: str | None, description: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="huren"'
    if error:
        value += f', error="{error}"'
        if description:
            value += f', error_description="{description}"'
    return {"WWW-Authenticate": value}


def invalid_token(description: str) -> Unauthorized:
    return Unauthorized(f"invalid access token: {description}",
                        headers=_www_authenticate("invalid_token", description))


class AuthService:
    def __init__(self, settings: Settings, store: Store,
                 compartment: Callable[[str], frozenset[str]] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.registry = ClientRegistry(settings.data_dir, builtin=[Client(
            ME_CLIENT_ID, "patient-app", ["launch/patient", "openid", "fhirUser", "patient/*.rs"],
            # named in her words where she reads it (the sign-in page, 谁看过我的档案): not the Latin "huren" (ui39)
            redirect_uris=[settings.public_base_url + "/ui/me/"], name="互认·我的健康档案")])
        self.key, _ = load_or_create(settings.data_dir)
        self._id_token_key = None  # RSA, made on first use: generating it costs ~100 ms
        self.issuer = settings.public_base_url
        self.audience = settings.fhir_base_url
        self.token_endpoint = settings.public_base_url + "/auth/token"
        self.ttl = int(settings.token_ttl_seconds)
        self.me_ttl = min(int(settings.me_token_ttl_seconds), self.ttl)
        # Patient id -> every Patient id linked to the same person; identity wires its MPI here.
        self.compartment: Callable[[str], frozenset[str]] = compartment or (lambda pid: frozenset({pid}))
        self.resident: Any = None  # engine.auth.resident.ResidentAuth, once identity is attached
        self.revoked = store.collection("auth_revoked")
        self.revoked.ensure_index(["exp"])
        self.assertions = store.collection("auth_assertion_jti")
        self._secret_cache: OrderedDict[tuple[str, bytes], tuple[str, float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._callers: OrderedDict[tuple[Any, ...], Caller] = OrderedDict()  # see caller_from_claims
        # exact token string -> its ``Caller`` (not a resident's): see ``authenticate``
        self._token_callers: dict[str, Caller] = {}

    # ---- tokens -------------------------------------------------------------------------------

    def issue_token(self, *, subject: str, kind: str, client_id: str, scopes: list[str],
                    patient: str | None = None, person: str | None = None,
                    ttl: int | None = None, extra: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": self.audience, "iat": now,
            "exp": now + (ttl or self.ttl), "jti": secrets.token_urlsafe(16),
            "client_id": client_id, "kind": kind, "scope": " ".join(scopes),
        }
        if patient:
            claims["patient"] = patient
        if person:
            claims["person"] = person
        if extra:
            claims.update(extra)
        token = jwt.encode(claims, self.key.private, algorithm="EdDSA", headers={"kid": self.key.kid, "typ": "at+jwt"})
        return token, claims

    def ttl_for(self, client_id: str) -> int:
        """The lifetime of a resident's access token for ``client_id``: shorter for the built-in page
        (``me_token_ttl_seconds``), whose revocation at sign-out may never arrive (a beacon lost with
        the network): the token, in no storage any more, then dies within minutes, not an hour."""
        return self.me_ttl if client_id == ME_CLIENT_ID else self.ttl

    def issue_system_token(self, client_id: str, scopes: str | list[str] = "system/*.cruds", *,
                           kind: str = "system") -> str:
        """A token for a trusted in-process caller (tests, the CLI); no client secret involved."""
        scope_list = sc.split(scopes) if isinstance(scopes, str) else list(scopes)
        sc.parse_all(scope_list)
        token, _ = self.issue_token(subject=client_id, kind=kind, client_id=client_id, scopes=scope_list)
        return token

    def decode(self, token: str, *, verify_exp: bool = True) -> dict[str, Any]:
        """Verified claims of one of our tokens; raises ``jwt.InvalidTokenError``."""
        return jwt.decode(token, self.key.public, algorithms=["EdDSA"], audience=self.audience,
                          issuer=self.issuer, options={"require": ["exp", "iat", "sub", "jti"],
                                                       "verify_exp": verify_exp})

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a valid, unexpired, unrevoked access token; ``Unauthorized`` otherwise.

        A client sends the same token on many requests, so the outcome of the signature check is
        remembered per exact token string (bounded LRU); expiry and revocation are checked every time.
        """
        with self._cache_lock:
            claims = self._verified.get(token)
            if claims is not None:
                self._verified.move_to_end(token)
        if claims is None:
            try:
                claims = self.decode(token)
            except jwt.ExpiredSignatureError:
                raise invalid_token("the token has expired") from None
            except jwt.InvalidTokenError:
                raise invalid_token("the token is malformed, not ours, or not for this server") from None
            with self._cache_lock:
                self._verified[token] = claims
                while len(self._verified) > _VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        elif claims["exp"] <= time.time():
            raise invalid_token("the token has expired")
        if claims.get("token_use", "access") != "access":
            raise invalid_token("not an access token")
        if self._revoked(claims["jti"]):  # (a primary-key probe on the store, every request)
            raise invalid_token("the token has been revoked")
        if not self._client_holds(claims):
            raise invalid_token("the client's registration has changed or been removed since the token was issued")
        return claims

    def _revoked(self, jti: str) -> bool:
        """Whether the token ``jti`` was revoked, asked of the store (``Collection.holds``). A store that
        cannot answer decides nothing: 503 with an OperationOutcome (transient: the client may retry),
        never a let-through and never the server's bare 500 (rvperf33); the cause goes to the log."""
        try:
            return self.revoked.holds(jti)
        except Exception as exc:
            log.exception("revocation check failed: the store did not answer")
            raise FhirError("the access token's revocation could not be checked: the store did not answer; "
                            "try again shortly", status=503, code="transient",
                            headers={"Retry-After": "5"}) from exc

    def _client_holds(self, claims: Mapping[str, Any]) -> bool:
        """Whether the client a token was issued to is still registered as it was then: the token's
        claims (scopes, kind, institution) are a copy of the stored client and must not outrank it.
        A ``client_credentials`` token, and a resident's token, carries its client's ``generation``
        (``cgen``); binding the client to an institution, changing its scopes, secret or redirect
        URIs (``huren client add`` again) or removing it (``huren client remove``) refuses its tokens
        on their next request -- a token issued before ``--institution`` had read R/V records until
        it expired. The registry is
        re-read only when its file changes (one ``stat`` a request). A token without ``cgen`` (an
        in-process one, ``issue_system_token``, or one issued before tokens carried it) is refused
        when its client is now bound to an institution the token does not name."""
        client_id = claims.get("client_id")
        cgen = claims.get("cgen")
        if cgen is None and claims.get("kind") != "system":
            return True
        client = self.registry.get(client_id) if isinstance(client_id, str) else None
        if cgen is not None:
            return client is not None and client.generation == cgen
        return client is None or client.institution is None or client.institution == claims.get("institution")

    def caller_from_claims(self, claims: Mapping[str, Any]) -> Caller:
        """The ``Caller`` of verified claims. For anyone but a resident it depends on the claims
        alone, so it is built once per token (bounded LRU; parsing the scopes was a tenth of a plain
        read's server CPU); a resident's compartment is looked up every time, since linking or
        unlinking records changes it while the token lives -- and for a family member acting for
        someone, narrowed to nothing once it is no longer the person the grant was given for."""
        kind = claims.get("kind", "system")
        key = None
        if kind != "patient":
            key = (claims["jti"], claims["sub"], kind, claims.get("scope"), claims.get("client_id"),
                   claims.get("person"), claims.get("patient"), claims.get("institution"))
            with self._cache_lock:
                cached = self._callers.get(key)
            if cached is not None:
                return cached
        patient = claims.get("patient")
        patient_ids = None
        if kind == "patient":
            if not patient:
                raise invalid_token("resident token without a patient")
            patient_ids = self.compartment(patient)
            if claims.get("acting") or claims.get("consent"):
                patient_ids = self._family_opens(claims, patient_ids)
        caller = Caller(subject=claims["sub"], kind=kind, scopes=tuple(sc.split(claims.get("scope"))),
                        client_id=claims.get("client_id", ""), patient_ids=patient_ids,
                        person=claims.get("person"), patient=patient, token_id=claims["jti"],
                        acting=claims.get("acting") if kind == "patient" else None,
                        consent=claims.get("consent") if kind == "patient" else None,
                        # a system client bound to its hospital (``huren client add --institution``)
                        institution=claims.get("institution") if kind == "system" else None)
        if key is not None:
            with self._cache_lock:
                self._callers[key] = caller
                while len(self._callers) > _VERIFIED_CACHE_SIZE:
                    self._callers.popitem(last=False)
        return caller

    def _family_opens(self, claims: Mapping[str, Any], compartment: frozenset[str]) -> frozenset[str]:
        """A family member's token opens its record's compartment only while that is the person
        the grant was given for (``FamilyAccess.opens``); else nothing, and the scoped repository
        answers every request with the reason."""
        family = getattr(self.resident, "family", None)
        return family.opens(dict(claims), compartment) if family is not None else frozenset()

    def fhir_user(self, claims: Mapping[str, Any]) -> str:
        """SMART ``fhirUser`` of a resident's token: their Patient record, or for a family member
        acting for someone the RelatedPerson they are in that person's record."""
        if claims.get("acting"):
            return f"{self.audience}/RelatedPerson/{claims['acting']}"
        return f"{self.audience}/Patient/{claims['patient']}"

    def authenticate_fields(self, fields: Sequence[str]) -> Caller:
        """Every ``Authorization`` field a request carried -> ``Caller``. RFC 9110 (11.6.2, 5.3) makes
        Authorization a single field: two (a proxy appending its own credential beside the client's)
        name two callers, and taking the first would act as whichever one a server happens to read --
        refused 401, never guessed (review rvattr35)."""
        if len(fields) > 1:
            raise Unauthorized("send one Authorization field: this request carried several",
                               headers=_www_authenticate("invalid_request", "one Authorization field expected"))
        return self.authenticate(fields[0] if fields else None)

    def authenticate(self, authorization: str | None) -> Caller:
        """``Authorization`` header value -> ``Caller``; ``Unauthorized`` (401) otherwise."""
        if not authorization:
            raise Unauthorized("this endpoint needs a bearer access token", headers=_www_authenticate(None))
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use 'Authorization: Bearer <access token>'",
                               headers=_www_authenticate("invalid_request", "bearer token expected"))
        claims = self.verify(token)  # signature (remembered), expiry, revocation, client: every request
        if claims.get("kind", "system") == "patient":
            return self.caller_from_claims(claims)  # a resident's compartment is looked up each time
        # A token's claims are its signed bytes', so the ``Caller`` they make is the same every time:
        # kept per exact token string beside the remembered signature check, it spares the read the
        # claims' key and the lock of ``caller_from_claims`` (thirty-second round, perf32). Only
        # reached once ``verify`` has passed this request.
        caller = self._token_callers.get(token)
        if caller is None:
            caller = self.caller_from_claims(claims)
            with self._cache_lock:
                if len(self._token_callers) >= _VERIFIED_CACHE_SIZE:
                    self._token_callers.clear()
                self._token_callers[token] = caller
        return caller

    def attach_identity(self, identity: Any) -> None:
        """Resident tokens: compartments come from the MPI, and the resident sign-in needs it."""
        from engine.auth.resident import ResidentAuth

        self.compartment = identity.resident_compartment  # (remembered under the index's stamp: see there)
        self.resident = ResidentAuth(self, identity)

    def introspect(self, value: str) -> dict[str, Any]:
        """RFC 7662 answer for an access or refresh token; ``{"active": false}`` for anything else."""
        try:
            claims = self.decode(value)
        except jwt.InvalidTokenError:
            claims = None
        if claims is not None and not self._revoked(claims["jti"]) and self._grant_holds(claims) \
                and self._client_holds(claims):
            info = {"active": True, "token_type": "Bearer", **{k: claims[k] for k in (
                "scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti") if k in claims}}
            if claims.get("patient"):
                info["patient"] = claims["patient"]
                info["fhirUser"] = self.fhir_user(claims)
            return info
        doc = self.resident.find_refresh(value) if self.resident else None
        if doc is not None:
            return {"active": True, "token_type": "refresh_token", "scope": " ".join(doc["scope"]),
                    "client_id": doc["client_id"], "sub": doc["person"], "exp": doc["exp"], "patient": doc["patient"]}
        return {"active": False}

    def _grant_holds(self, claims: Mapping[str, Any]) -> bool:
        """A family member's token is active only while the grant it names holds."""
        if not claims.get("acting") and not claims.get("consent"):
            return True
        family = getattr(self.resident, "family", None)
        return family is not None and bool(claims.get("patient")) and family.still_holds(
            dict(claims), self.compartment(claims["patient"]))

    def revoke(self, value: str, client: Client, hint: str | None = None) -> None:
        """RFC 7009: revoke one of ``client``'s tokens (a refresh token takes its whole grant)."""
        try:
            claims = self.decode(value, verify_exp=False)
        except jwt.InvalidTokenError:
            claims = None
        if claims is not None:
            if claims.get("client_id") == client.client_id:
                self.revoke_jti(claims["jti"], claims["exp"])
            return
        if self.resident is not None:
            self.resident.revoke_refresh(value, client)

    def purge_revoked(self) -> int:
        """Forget revocations of tokens that have expired anyway."""
        old = self.revoked.find({"exp": {"$lt": int(time.time())}}, limit=100)
        for d in old:
            self.revoked.delete(d["_id"])
        return len(old)

    def revoke_jti(self, jti: str, exp: int) -> None:
        with contextlib.suppress(DuplicateKey):
            self.revoked.insert({"_id": jti, "exp": int(exp)})

    # ---- clients ------------------------------------------------------------------------------

    def authenticate_client(self, form: Mapping[str, str], fields: Sequence[str]) -> Client:
        """Identify the client of a token request (RFC 6749 §2.3, RFC 7523 §2.2) from its form and
        every ``Authorization`` field it carried.

        Accepts exactly one method: HTTP Basic (``client_secret_basic``), ``client_id`` and
        ``client_secret`` in the body (``client_secret_post``), a signed ``client_assertion``
        (``private_key_jwt``), or, for public clients, ``client_id`` alone. Two ``Authorization``
        fields (a proxy appending its own Basic credential beside the client's) are two methods, as
        at ``authenticate_fields``: refused, never the first one taken (review rv36b).
        """
        if len(fields) > 1:
            raise OAuthError("invalid_request", "send one Authorization field: this request carried several")
        authorization = fields[0] if fields else None
        methods = []
        basic = authorization is not None and authorization[:6].lower() == "basic "
        if basic:
            methods.append("basic")
        if form.get("client_secret"):
            methods.append("post")
        if form.get("client_assertion") or form.get("client_assertion_type"):
            methods.append("jwt")
        if len(methods) > 1:
            raise OAuthError("invalid_request", "use exactly one client authentication method")
        if basic:
            assert authorization is not None
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
                cid, _, secret = raw.partition(":")
                cid, secret = unquote(cid.replace("+", " ")), unquote(secret.replace("+", " "))
            except (ValueError, UnicodeDecodeError):
                raise self._bad_client("malformed Basic credentials", basic=True) from None
            if form.get("client_id") and form["client_id"] != cid:
                raise OAuthError("invalid_request", "client_id in the body differs from the Basic credentials")
            return self._check_secret(cid, secret, basic=True)
        if methods == ["post"]:
            return self._check_secret(form.get("client_id", ""), form["client_secret"], basic=False)
        if methods == ["jwt"]:
            return self._check_assertion(form)
        cid = form.get("client_id", "")
        if not cid and form.get("grant_type") == "refresh_token" and self.resident is not None:
            # A public client may refresh without client_id (SMART App Launch; the fhirclient JS
            # library does): the refresh token names its client. A confidential client must still
            # authenticate (RFC 6749 §6), which the check below enforces.
            cid = self.resident.refresh_client_id(form.get("refresh_token", ""))
            if cid is None:
                raise OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
        client = self.registry.get(cid)
        if client is None or not client.public:
            raise self._bad_client("client authentication required", basic=False)
        return client

    def _bad_client(self, description: str, *, basic: bool) -> OAuthError:
        headers = {"WWW-Authenticate": 'Basic realm="huren"'} if basic else {}
        return OAuthError("invalid_client", description, status=401, headers=headers)

    def _check_secret(self, client_id: str, secret: str, *, basic: bool) -> Client:
        client = self.registry.get(client_id)
        if client is None or client.secret_hash is None:
            raise self._bad_client("unknown client or wrong credentials", basic=basic)
        key = (client_id, hashlib.sha256(secret.encode()).digest())
        now = time.monotonic()
        with self._cache_lock:
            hit = self._secret_cache.get(key)
        if hit and hit[0] == client.secret_hash and hit[1] > now:
            return client
        if not check_secret(secret, client.secret_hash):
            raise self._bad_client("unknown client or wrong credentials", basic=basic)
        with self._cache_lock:
            self._secret_cache[key] = (client.secret_hash, now + _SECRET_CACHE_SECONDS)
            while len(self._secret_cache) > 1024:
                self._secret_cache.popitem(last=False)
        return client

    def _check_assertion(self, form: Mapping[str, str]) -> Client:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise self._bad_client("malformed client assertion", basic=False) from None
        cid = unverified.get("iss")
        client = self.registry.get(cid) if isinstance(cid, str) else None
        if client is None or not client.jwks:
            raise self._bad_client("unknown client or no registered keys", basic=False)
        try:
            keyset = jwt.PyJWKSet.from_dict(client.jwks)
            candidates = [k for k in keyset.keys if header.get("kid") in (None, k.key_id)]
            if not candidates:
                raise jwt.InvalidTokenError("no registered key matches the assertion's kid")
            claims = None
            for k in candidates:
                try:
                    claims = jwt.decode(assertion, k.key, algorithms=ASSERTION_ALGS, audience=self.token_endpoint,
                                        issuer=cid, options={"require": ["exp", "jti", "sub", "iss", "aud"]})
                    break
                except jwt.InvalidSignatureError:
                    continue
            if claims is None:
                raise jwt.InvalidSignatureError("signature does not verify with any registered key")
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            raise self._bad_client(f"client assertion rejected: {exc}", basic=False) from None
        if claims["sub"] != cid:
            raise self._bad_client("client assertion sub must equal iss", basic=False)
        if claims["exp"] - time.time() > 300:
            raise self._bad_client("client assertion lifetime exceeds 5 minutes", basic=False)
        if form.get("client_id") and form["client_id"] != cid:
            raise OAuthError("invalid_request", "client_id differs from the assertion's issuer")
        try:
            self.assertions.insert({"_id": f"{cid}:{claims['jti']}", "exp": int(claims["exp"])})
        except DuplicateKey:
            raise self._bad_client("client assertion already used (jti replay)", basic=False) from None
        return client

    def client_credentials(self, client: Client, scope_param: str | None) -> dict[str, Any]:
        """Token response for the ``client_credentials`` grant (backend systems and auditors)."""
        kind = _KIND_BY_CLIENT.get(client.kind)
        if kind is None:
            raise OAuthError("unauthorized_client", "this client may not use the client_credentials grant")
        requested = sc.split(scope_param) or list(client.scopes)
        try:
            granted = sc.narrow(requested, client.scopes)
        except sc.ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        granted = [s for s in granted if isinstance(sc.parse(s), sc.ResourceScope)]
        if not granted:
            raise OAuthError("invalid_scope", "no resource scope requested")
        extra = {"cgen": client.generation}  # see _client_holds
        if client.institution:
            extra["institution"] = client.institution
        token, claims = self.issue_token(subject=client.client_id, kind=kind, client_id=client.client_id,
                                         scopes=granted, extra=extra)
        return {"access_token": token, "token_type": "Bearer", "expires_in": claims["exp"] - claims["iat"],
                "scope": claims["scope"]}

    @property
    def id_token_key(self):  # noqa: ANN201
        if self._id_token_key is None:
            self._id_token_key, _ = load_or_create_id_token_key(self.settings.data_dir)
        return self._id_token_key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk(), self.id_token_key.jwk()]}

    def close(self) -> None:
        return None
