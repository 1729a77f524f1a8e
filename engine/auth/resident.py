"""Resident access: SMART App Launch (standalone patient) with PKCE, one-time login codes, refresh.

The flow a phone app runs (SMART App Launch 2.x, RFC 6749 §4.1, RFC 7636)::

    GET  /auth/authorize?response_type=code&client_id&redirect_uri&scope&state&aud
                        &code_challenge&code_challenge_method=S256          -> login page
    POST /auth/authorize/login   national ID            -> code sent, code page
    POST /auth/authorize/verify  one-time code          -> 303 redirect_uri?code&state
                                 (a person some family member granted access: -> choice page)
    POST /auth/authorize/choose  own record or a granted one  -> 303 redirect_uri?code&state
    POST /auth/token  grant_type=authorization_code + code_verifier  -> tokens (+ patient)
    POST /auth/token  grant_type=refresh_token                         -> rotated tokens

Every secret at rest is hashed: login codes (salted with the request id), authorization codes
and refresh tokens (SHA-256 of 256-bit random values). State lives in store collections so it is
shared by workers and survives restarts. Nothing a stranger can see distinguishes a known ID
number from an unknown one: both get the same code page, whose words are conditional -- "if this
ID number is registered, a code was sent to the phone on file" -- true of both, so a number no
record holds is never told a code was sent, nor anyone typing numbers who is a patient (a40fix41).
A number a merge carried onto its survivor is registered: it opens the survivor
(``IdentityService.patients_for_number``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from engine.auth import scopes as sc
from engine.auth.clients import Client
from engine.auth.errors import OAuthError
from engine.auth.family import RELATIONSHIPS, FamilyAccess, Grant, person_key
from engine.auth.sender import CodeSender, build_sender
from engine.errors import Gone, NotFound
from engine.identity import nationalid
from engine.repository.port import DuplicateKey
from mappings.sitefiles import safe_load

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
RESIDENT_CONTEXT_SCOPES = frozenset({"openid", "fhirUser", "offline_access", "online_access", "launch/patient",
                                     "profile"})


LIMITS_FILE = Path(__file__).with_name("login_limits.yaml")
DEVICE_COOKIE = "huren_device"


@dataclass(frozen=True)
class Policy:
    """Limits of the resident login, from ``login_limits.yaml`` (which explains each one), with any
    key overridden in ``settings.extra["resident_auth"]``."""

    request_ttl: int
    otp_ttl: int
    otp_digits: int
    code_attempts: int
    window: int
    sends_per_id_source: int
    sends_per_source: int
    sends_per_id: int
    posts_per_source: int
    backoff_free_failures: int
    backoff_base: int
    backoff_max: int
    device_ttl: int
    code_ttl: int
    refresh_ttl: int

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None) -> Policy:
        values = safe_load(LIMITS_FILE.read_text(encoding="utf-8"))  # parsed once per process
        unknown = set(overrides or {}) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown resident_auth setting(s): {', '.join(sorted(unknown))}")
        return cls(**{**values, **(overrides or {})})


@dataclass(frozen=True)
class Choice:
    """After the code: the signed-in person may open their own record or one a family member
    granted them; ``options`` are (value, name, relationship, until) for the page to offer."""

    request_id: str
    options: list[tuple[str, str, str, str]]


@dataclass(frozen=True)
class SignedIn:
    """A finished sign-in: where the browser goes next, and the device cookie it should keep."""

    location: str
    device: str
    device_ttl: int


class LoginError(Exception):
    """A problem to show on the login page (never reveals whether an ID number is known).

    ``str(exc)`` is the English sentence (what the audit trail records as the reason); ``code``
    names the problem for the page, which says it in the words of ``signin_errors`` in
    ``mappings/insurance/words.yaml`` (Chinese first, then this English), with ``params`` filled in."""

    def __init__(self, message: str, code: str = "", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class RedirectError(Exception):
    """An OAuth error to send back to the app's (already validated) redirect URI."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(description)
        params = {"error": error, "error_description": description}
        if state is not None:
            params["state"] = state
        self.location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class ResidentAuth:
    def __init__(self, auth: Any, identity: Any, sender: CodeSender | None = None) -> None:
        self.auth = auth
        self.identity = identity
        # family access: whose records a signed-in person may open besides their own
        self.family: FamilyAccess | None = (FamilyAccess(identity.repository, identity)
                                            if getattr(identity, "repository", None) is not None else None)
        settings = auth.settings
        self.policy = Policy.load(settings.extra.get("resident_auth"))
        self.sender = sender or build_sender(settings)
        store = auth.store
        self.requests = store.collection("auth_requests")
        self.otps = store.collection("auth_otp")
        self.codes = store.collection("auth_codes")
        self.refresh = store.collection("auth_refresh")
        self.limits = store.collection("auth_limits")
        self.devices = store.collection("auth_devices")
        # who redeemed an authorization code or refresh token, and whether it was used again
        # (``_redeem``): rows only ever inserted, the one atomic step both backends share
        self.redeemed = store.collection("auth_redeemed")
        for coll in (self.requests, self.otps, self.codes, self.refresh, self.limits, self.devices, self.redeemed):
            coll.ensure_index(["exp"])
        self.refresh.ensure_index(["family"])

    # ---- /auth/authorize ----------------------------------------------------------------------

    def start(self, params: dict[str, str]) -> dict[str, Any]:
        """Validate an authorization request; return the pending request (to render the login page).

        Raises ``OAuthError`` when the client or redirect URI cannot be trusted (shown as a page,
        never redirected: RFC 6749 §4.1.2.1) and ``RedirectError`` for everything else.
        """
        client = self.auth.registry.get(params.get("client_id", ""))
        if client is None:
            raise OAuthError("invalid_request", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri does not exactly match a registered redirect URI")
        state = params.get("state")

        def fail(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, state, error, description)

        if params.get("response_type") != "code":
            raise fail("unsupported_response_type", "only response_type=code is supported")
        if client.kind != "patient-app":
            raise fail("unauthorized_client", "this client is not registered as a patient app")
        if params.get("aud", "").rstrip("/") != self.auth.audience:
            raise fail("invalid_request", f"aud must be this server's FHIR base URL {self.auth.audience}")
        if params.get("code_challenge_method") != "S256":
            raise fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
        if not _CHALLENGE.match(params.get("code_challenge", "")):
            raise fail("invalid_request", "code_challenge must be the base64url SHA-256 of the code_verifier")
        try:
            scopes = self.resident_scopes(sc.split(params.get("scope")), client)
        except OAuthError as exc:
            raise fail(exc.error, exc.description) from None
        self._purge()
        request_id = secrets.token_urlsafe(24)
        pending = {"_id": request_id, "client_id": client.client_id, "redirect_uri": redirect_uri, "state": state,
                   "scope": scopes, "code_challenge": params["code_challenge"], "nonce": params.get("nonce"),
                   "exp": int(time.time()) + self.policy.request_ttl, "stage": "login"}
        self.requests.insert(pending)
        return {**pending, "client_name": client.name or client.client_id}

    def resident_scopes(self, requested: list[str], client: Client) -> list[str]:
        if not requested:
            raise OAuthError("invalid_scope", "scope is required")
        try:
            granted = sc.narrow(requested, client.scopes)
        except sc.ScopeError as exc:
            raise OAuthError("invalid_scope", str(exc)) from None
        resource = 0
        for s in granted:
            p = sc.parse(s)
            if isinstance(p, str):
                if p not in RESIDENT_CONTEXT_SCOPES:
                    raise OAuthError("invalid_scope", f"scope {s!r} is not available to residents")
                continue
            if p.context != "patient" or not p.actions <= frozenset("rs"):
                raise OAuthError("invalid_scope", f"scope {s!r}: residents get read and search access only")
            resource += 1
        if not resource:
            raise OAuthError("invalid_scope", "request at least one patient/ scope, e.g. patient/*.rs")
        return granted

    def pending(self, request_id: str, stage: str) -> dict[str, Any]:
        req = self.requests.get(request_id or "")
        if req is None or req["exp"] < time.time() or req["stage"] != stage:
            raise LoginError("This sign-in request has expired. Please start again from the app.", "request-expired")
        return req

    # ---- limits: the attacker pays, the resident gets through -----------------------------------

    def _count(self, key: str, limit: int) -> bool:
        """Count one event under ``key`` in the current window; False when over the limit."""
        now = int(time.time())
        doc = self.limits.get(key)
        if doc is None or doc["exp"] < now:
            doc = {"_id": key, "count": 0, "exp": now + self.policy.window}
        doc["count"] += 1
        self.limits.replace(doc)
        return doc["count"] <= limit

    def _admit(self, source: str) -> None:
        """Every post from a client address: refused while that address waits out its backoff."""
        wait = self.limits.get("wait:" + source)
        now = time.time()
        if wait is not None and wait.get("until", 0) > now:
            seconds = math.ceil(wait["until"] - now)
            raise LoginError(f"Too many wrong codes from this device. Please wait {seconds} seconds and try again.",
                             "wait", seconds=seconds)
        if not self._count("posts:" + source, self.policy.posts_per_source):
            raise LoginError("Too many attempts from this device. Please wait and try again later.", "posts")

    def _failed(self, source: str) -> None:
        """A wrong code from ``source``: after a few free ones, each makes it wait twice as long."""
        p, now = self.policy, time.time()
        doc = self.limits.get("wait:" + source)
        failures = (doc["failures"] if doc is not None and doc["exp"] >= now else 0) + 1
        over = failures - p.backoff_free_failures
        until = now + min(p.backoff_base * 2 ** min(over - 1, 32), p.backoff_max) if over > 0 else 0
        # the record outlives the wait by a window, so the doubling continues if guessing resumes
        self.limits.replace({"_id": "wait:" + source, "failures": failures, "until": until,
                             "exp": int(max(until, now)) + p.window})

    def _may_send(self, key: str, source: str, device: str | None) -> None:
        """Throttle codes per address, per (ID number, address), and per ID number with a high
        ceiling that only an attack from many addresses reaches, and that a phone which signed in
        for this number before (device cookie) does not count against."""
        p = self.policy
        if not self._count(f"send:src:{source}", p.sends_per_source):
            raise LoginError("Too many codes requested from this device. Please wait and try again later.",
                             "sends-device")
        if not self._count(f"send:id-src:{key}:{source}", p.sends_per_id_source):
            raise LoginError("Too many codes requested for this number. Please wait and try again later.",
                             "sends-number")
        if self.known_device(device, key):
            return
        if not self._count(f"send:id:{key}", p.sends_per_id):
            raise LoginError("Too many codes were requested for this number from other devices. Please sign "
                             "in from a phone you used before, or try again later.", "sends-elsewhere")

    def known_device(self, device: str | None, key: str) -> bool:
        if not device:
            return False
        doc = self.devices.get(_sha256(device))
        return doc is not None and doc["exp"] > time.time() and key in doc["nid_keys"]

    def _remember_device(self, device: str | None, key: str) -> str:
        """The device cookie value after a successful sign-in (one phone may serve a family)."""
        now = int(time.time())
        doc = self.devices.get(_sha256(device)) if device else None
        if doc is None or doc["exp"] < now:
            device = secrets.token_urlsafe(32)
            doc = {"_id": _sha256(device), "nid_keys": []}
        assert device is not None
        if key not in doc["nid_keys"]:
            doc["nid_keys"] = [*doc["nid_keys"], key][-8:]
        self.devices.replace({**doc, "exp": now + self.policy.device_ttl})
        return device

    def login(self, request_id: str, national_id: str, client_ip: str, device: str | None = None) -> dict[str, Any]:
        """Step 1: the resident gives the ID number; a code goes to the phone on file."""
        req = self.pending(request_id, "login")
        self._admit(client_ip)
        try:
            nid = nationalid.parse(national_id.strip().upper())
        except nationalid.InvalidNationalId:
            raise LoginError("Please enter a valid 18-character resident ID number.", "bad-id") from None
        key = self.identity.nid_key(nid.number)
        self._may_send(key, client_ip, device)
        patients = self.identity.patients_for_number(nid.number)
        code = "".join(secrets.choice("0123456789") for _ in range(self.policy.otp_digits))
        # Unknown numbers get a record too (with no usable code) so the answer looks the same.
        self.otps.replace({"_id": request_id, "nid_key": key, "patients": patients, "failures": 0,
                           "code_hash": _sha256(request_id + ":" + code) if patients else None,
                           "exp": int(time.time()) + self.policy.otp_ttl})
        if patients:
            self.sender.send(phones=self.identity.phones(patients), code=code, purpose="login")
        self.requests.update(request_id, {"stage": "code"})
        return req

    def verify(self, request_id: str, code: str, client_ip: str, device: str | None = None) -> SignedIn | Choice:
        """Step 2: the code is checked; returns the redirect URI carrying the authorization code.

        A wrong code costs the challenge (after ``code_attempts`` it is dead and a new code must be
        sent) and the sending address (backoff), never the ID number: a stranger who knows it
        cannot keep its owner out.
        """
        req = self.pending(request_id, "code")
        self._admit(client_ip)
        otp = self.otps.get(request_id)
        if otp is None or otp["exp"] < time.time():
            self.requests.update(request_id, {"stage": "login"})
            raise LoginError("The code has expired. Please request a new one.", "code-expired")
        good = otp["code_hash"] is not None and hmac.compare_digest(
            otp["code_hash"], _sha256(request_id + ":" + code.strip()))
        if not good:
            self._failed(client_ip)
            failures = otp.get("failures", 0) + 1
            if failures >= self.policy.code_attempts:
                self.otps.delete(request_id)
                self.requests.update(request_id, {"stage": "login"})
                raise LoginError("That code was entered wrongly too often and no longer works. "
                                 "Please request a new one.", "code-dead")
            self.otps.update(request_id, {"failures": failures})
            raise LoginError("That code is not right. Please check the message and try again.", "wrong-code")
        self.otps.delete(request_id)
        grants = self.family.grants_for(person_key(otp["nid_key"])) if self.family is not None else []
        if grants:
            # a family member granted this person access: whose record to open is their choice
            self.requests.update(request_id, {"stage": "choose", "patients": otp["patients"], "nid_key": otp["nid_key"],
                                              "exp": int(time.time()) + self.policy.request_ttl})
            return Choice(request_id, self._options(otp["patients"][0], grants))
        self.requests.delete(request_id)
        patient = otp["patients"][0]
        return self._issue_code(req, patient, self._person(patient), device, otp["nid_key"])

    def _options(self, own_patient: str, grants: list[Grant]) -> list[tuple[str, str, str, str]]:
        repo = self.family.repository if self.family is not None else None

        def name(pid: str) -> str:
            try:
                patient = repo.read("Patient", pid) if repo is not None else {}
            except (NotFound, Gone):  # a record gone since: shown without a name
                return ""
            n = (patient.get("name") or [{}])[0]
            return n.get("text") or "".join([n.get("family", ""), *n.get("given", [])])

        out = [("self", name(own_patient), "", "")]
        for g in grants:
            end = ((g.consent.get("provision") or {}).get("period") or {}).get("end", "")
            out.append((g.consent_id, name(g.patient), RELATIONSHIPS.get(g.relationship, ("", ""))[1], end[:10]))
        return out

    def choices(self, request_id: str) -> list[tuple[str, str, str, str]]:
        """The options of a pending choice, as they stand now."""
        req = self.pending(request_id, "choose")
        grants = self.family.grants_for(person_key(req["nid_key"])) if self.family is not None else []
        return self._options(req["patients"][0], grants)

    def choose(self, request_id: str, choice: str, device: str | None = None) -> SignedIn:
        """Step 3 (only for a person who holds family access): open their own record, or the
        record of the family member whose grant ``choice`` names (checked again now)."""
        req = self.pending(request_id, "choose")
        key = person_key(req["nid_key"])
        if choice == "self":
            self.requests.delete(request_id)
            return self._issue_code(req, req["patients"][0], self._person(req["patients"][0]), device, req["nid_key"])
        grant = self.family.grant_of(key, choice) if self.family is not None else None
        if grant is None:
            raise LoginError("This family access is no longer in force. Please choose again.",
                             "grant-gone")
        self.requests.delete(request_id)
        return self._issue_code(req, grant.patient, key, device, req["nid_key"], acting=grant.related_id,
                                consent=grant.consent_id)

    def _issue_code(self, req: dict[str, Any], patient: str, person: str, device: str | None, nid_key: str, *,
                    acting: str | None = None, consent: str | None = None) -> SignedIn:
        code_value = secrets.token_urlsafe(32)
        self.codes.insert({"_id": _sha256(code_value), "client_id": req["client_id"],
                           "redirect_uri": req["redirect_uri"], "scope": req["scope"],
                           "code_challenge": req["code_challenge"], "nonce": req.get("nonce"),
                           "patient": patient, "person": person, "acting": acting, "consent": consent,
                           "exp": int(time.time()) + self.policy.code_ttl, "used": False, "jtis": []})
        params = {"code": code_value}
        if req.get("state") is not None:
            params["state"] = req["state"]
        uri = req["redirect_uri"]
        return SignedIn(uri + ("&" if "?" in uri else "?") + urlencode(params),
                        self._remember_device(device, nid_key), self.policy.device_ttl)

    def person_of(self, patient_id: str) -> str:
        """The person a resident's sign-in to ``patient_id`` names (their tokens' ``sub``)."""
        return self._person(patient_id)

    def _person(self, patient_id: str) -> str:
        doc = self.identity.record(patient_id) or {}
        return doc.get("person") or f"patient-{patient_id}"

    # ---- /auth/token --------------------------------------------------------------------------

    def token(self, grant: str, client: Client, form: dict[str, str]) -> dict[str, Any]:
        if client.kind != "patient-app":
            raise OAuthError("unauthorized_client", f"this client may not use the {grant} grant")
        if grant == "authorization_code":
            return self._code_grant(client, form)
        return self._refresh_grant(client, form)

    def _code_grant(self, client: Client, form: dict[str, str]) -> dict[str, Any]:
        code, verifier = form.get("code", ""), form.get("code_verifier", "")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        if not _VERIFIER.match(verifier):
            raise OAuthError("invalid_request", "code_verifier is required (43-128 unreserved characters)")
        doc = self.codes.get(_sha256(code))
        if doc is None or doc["exp"] < time.time():
            raise OAuthError("invalid_grant", "the authorization code is invalid or has expired")
        if doc["used"]:
            # RFC 6749 §4.1.2: a replayed code revokes what was issued from it.
            if self._second_use("code", doc["_id"], doc["exp"]):
                self._revoke_code(doc["_id"])
            raise OAuthError("invalid_grant", "the authorization code has already been used")
        if doc["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "the authorization code was issued to another client")
        if form.get("redirect_uri") != doc["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if not hmac.compare_digest(s256(verifier), doc["code_challenge"]):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        if not self._redeem("code", doc["_id"], doc["exp"]):
            # redeemed at this moment through another worker (or thread): a second use as any other
            if self._second_use("code", doc["_id"], doc["exp"]):
                self._revoke_code(doc["_id"])
            raise OAuthError("invalid_grant", "the authorization code has already been used")
        family = secrets.token_urlsafe(12) if "offline_access" in doc["scope"] else None
        issued: tuple[str, int] | None = None
        try:
            response, jti, exp = self._tokens(client, doc["scope"], doc["patient"], doc["person"], doc.get("nonce"),
                                              family, acting=doc.get("acting"), consent=doc.get("consent"))
            issued = (jti, exp)
            self.codes.update(doc["_id"], {"used": True, "jtis": [[jti, exp]], "family": family})
            replayed = self._settle("code", doc["_id"], doc["exp"])
        except Exception:
            # huren failed (a 500) before the client had its tokens: the redemption is undone, so
            # the client's retry of the same code is honoured, as before single use was atomic
            self._unredeem_code(doc["_id"], issued, family)
            raise
        if replayed:  # used again while these were being issued
            self._revoke_code(doc["_id"])
        return response

    def _unredeem_code(self, key: str, issued: tuple[str, int] | None, family: str | None) -> None:
        """Undo the redemption of the code ``key`` whose exchange failed inside huren: revoke what
        was issued (never handed out), mark the code unused, and delete its ``auth_redeemed`` rows
        -- the redeemed row last, so that no other request redeems it before it is reset. Best
        effort: when the store fails here too, the code stays used (refused, never twice honoured)."""
        with contextlib.suppress(Exception):
            if issued is not None:
                self.auth.revoke_jti(*issued)
            if family:
                self._revoke_family(family)
            self.codes.update(key, {"used": False, "jtis": [], "family": None})
            self.redeemed.delete(f"code:{key}:settled")
            self.redeemed.delete(f"code:{key}")

    # ---- single use: one atomic step on both backends -----------------------------------------
    #
    # Of several requests presenting one authorization code or refresh token -- one after the
    # other, or at the same moment through several workers on one store -- exactly one redeems it:
    # the one whose insert of ``<kind>:<hash>`` succeeded (``_redeem``; a unique insert is atomic
    # on SQLite and MongoDB alike, where "read ``used``, then set it" let two through). Every other
    # is a second use, which revokes what the first issued (RFC 6749 §4.1.2; rotation's reuse
    # detection, RFC 9700 §4.14.2). The first may still be issuing, so the two meet on two more
    # inserted rows: the first, once what it issued is recorded, inserts ``:settled`` and then
    # looks for ``:replayed``; a second use inserts ``:replayed`` and then looks for ``:settled``.
    # Whichever looks last sees the other's row and revokes (both may: revoking is idempotent).

    def _redeem(self, kind: str, key: str, exp: int) -> bool:
        """True for the one request that redeems the code or refresh token ``key`` (its hash)."""
        try:
            self.redeemed.insert({"_id": f"{kind}:{key}", "exp": int(exp)})
        except DuplicateKey:
            return False
        return True

    def _settle(self, kind: str, key: str, exp: int) -> bool:
        """The redeemer has recorded what it issued; True when a second use came meanwhile and
        found it unsettled (the redeemer then revokes what it issued itself)."""
        with contextlib.suppress(DuplicateKey):
            self.redeemed.insert({"_id": f"{kind}:{key}:settled", "exp": int(exp)})
        return self.redeemed.get(f"{kind}:{key}:replayed") is not None

    def _second_use(self, kind: str, key: str, exp: int) -> bool:
        """A second use of ``key``; True when the first has settled, so that this request revokes
        what it issued (False: the first will, when it settles). A code or token used before its
        rows were kept (or after they were purged) has settled long ago."""
        with contextlib.suppress(DuplicateKey):
            self.redeemed.insert({"_id": f"{kind}:{key}:replayed", "exp": int(exp)})
        if self.redeemed.get(f"{kind}:{key}") is None:
            return True
        return self.redeemed.get(f"{kind}:{key}:settled") is not None

    def _revoke_code(self, key: str) -> None:
        """Revoke what the authorization code ``key`` issued: its access token and refresh family."""
        doc = self.codes.get(key) or {}
        for jti, exp in doc.get("jtis") or ():
            self.auth.revoke_jti(jti, exp)
        if doc.get("family"):
            self._revoke_family(doc["family"])

    def _tokens(self, client: Client, scopes: list[str], patient: str, person: str, nonce: str | None,
                family: str | None, *, acting: str | None = None,
                consent: str | None = None) -> tuple[dict[str, Any], str, int]:
        """Access (and refresh) tokens; for a family member acting for someone, ``acting`` (their
        RelatedPerson) and ``consent`` (the grant) go into the token, which then opens ``patient``'s
        record while ``sub`` stays the family member."""
        # the app's registration as issued to (``AuthService._client_holds``): removing or
        # re-registering the app ends its residents' tokens on their next request
        extra: dict[str, Any] = {"cgen": client.generation}
        if acting:
            extra.update(acting=acting, consent=consent)
        token, claims = self.auth.issue_token(subject=person, kind="patient", client_id=client.client_id,
                                              scopes=scopes, patient=patient, person=person, extra=extra,
                                              ttl=self.auth.ttl_for(client.client_id))
        response: dict[str, Any] = {"access_token": token, "token_type": "Bearer",
                                    "expires_in": claims["exp"] - claims["iat"], "scope": claims["scope"],
                                    "patient": patient, "need_patient_banner": True}
        if "openid" in scopes and "fhirUser" in scopes:
            response["id_token"] = self.id_token(client, person, patient, nonce, acting)
        if family:
            refresh = secrets.token_urlsafe(32)
            self.refresh.insert({"_id": _sha256(refresh), "family": family, "client_id": client.client_id,
                                 "acting": acting, "consent": consent,
                                 "scope": scopes, "patient": patient, "person": person, "used": False,
                                 "exp": int(time.time()) + self.policy.refresh_ttl, "access": [claims["jti"], claims["exp"]]})
            response["refresh_token"] = refresh
        return response, claims["jti"], claims["exp"]

    def id_token(self, client: Client, person: str, patient: str, nonce: str | None, acting: str | None = None) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": self.auth.issuer, "sub": person, "aud": client.client_id, "iat": now,
                  "exp": now + self.auth.ttl, "fhirUser": self.auth.fhir_user({"patient": patient, "acting": acting})}
        if nonce:
            claims["nonce"] = nonce
        key = self.auth.id_token_key
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})

    def _refresh_grant(self, client: Client, form: dict[str, str]) -> dict[str, Any]:
        value = form.get("refresh_token", "")
        if not value:
            raise OAuthError("invalid_request", "refresh_token is required")
        doc = self.refresh.get(_sha256(value))
        if doc is None or doc["exp"] < time.time() or doc["client_id"] != client.client_id:
            raise OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
        if doc["used"]:
            # Rotation (OAuth 2.0 Security BCP §4.14): reuse of a rotated token means it leaked.
            if self._second_use("refresh", doc["_id"], doc["exp"]):
                self._revoke_family(doc["family"])
            raise OAuthError("invalid_grant", "the refresh token was already used; its grant is revoked")
        scopes = doc["scope"]
        if form.get("scope"):
            asked = sc.split(form["scope"])
            try:
                scopes = sc.narrow(asked, doc["scope"])
            except sc.ScopeError as exc:
                raise OAuthError("invalid_scope", str(exc)) from None
            if "offline_access" not in scopes:
                scopes = [*scopes, "offline_access"]
        # the app's registration as it stands: a refresh may not widen, and may narrow, the grant
        # (an app registered again with fewer scopes gets only those; none left: the grant ends)
        try:
            scopes = sc.within(scopes, client.scopes)
        except sc.ScopeError as exc:  # a hand-edited registration naming a malformed scope: no 500
            raise OAuthError("invalid_client", f"the app's registration holds a scope huren cannot read: {exc}") from None
        if not any(not isinstance(sc.parse(s), str) for s in scopes):
            self._revoke_family(doc["family"])
            raise OAuthError("invalid_grant", "the app is no longer registered for any scope of this grant")
        if doc.get("consent") and not self._grant_holds(doc):
            self._revoke_family(doc["family"])
            raise OAuthError("invalid_grant", "the family access this sign-in relied on was withdrawn or has expired")
        if not self._redeem("refresh", doc["_id"], doc["exp"]):
            # used at this moment through another worker: reuse as a later use is
            if self._second_use("refresh", doc["_id"], doc["exp"]):
                self._revoke_family(doc["family"])
            raise OAuthError("invalid_grant", "the refresh token was already used; its grant is revoked")
        try:
            if not self.refresh.update(doc["_id"], {"used": True}):
                raise OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
            family = doc["family"] if "offline_access" in scopes else None  # no longer registered: no new refresh
            response, jti, exp = self._tokens(client, scopes, doc["patient"], doc["person"], None, family,
                                              acting=doc.get("acting"), consent=doc.get("consent"))
            replayed = self._settle("refresh", doc["_id"], doc["exp"])
        except Exception:
            # A rotation that failed inside huren (a 500, no successor handed out) keeps the token
            # used, as before single use was atomic: it is settled here, so that presenting it again
            # is a reuse that ends the grant (a reuse already waiting on it ends it now).
            with contextlib.suppress(Exception):
                if self._settle("refresh", doc["_id"], doc["exp"]):
                    self._revoke_family(doc["family"])
            raise
        if replayed:  # reused while these were being issued
            self.auth.revoke_jti(jti, exp)
            self._revoke_family(doc["family"])
        return response

    def _grant_holds(self, doc: dict[str, Any]) -> bool:
        """A refresh of a family member's sign-in: only while the grant it was issued under holds."""
        grant = self.family.grant_of(doc["person"], doc["consent"]) if self.family is not None else None
        return grant is not None and grant.related_id == doc.get("acting")

    def _revoke_family(self, family: str) -> None:
        for d in self.refresh.find({"family": family}):
            if d.get("access"):
                self.auth.revoke_jti(*d["access"])
            self.refresh.delete(d["_id"])

    # ---- introspection and revocation ---------------------------------------------------------

    def find_refresh(self, value: str) -> dict[str, Any] | None:
        doc = self.refresh.get(_sha256(value))
        if doc is None or doc["used"] or doc["exp"] < time.time():
            return None
        return doc

    def refresh_client_id(self, value: str) -> str | None:
        """The client a refresh token was issued to (None for an unknown or expired token); a used
        token still names its client, so that its reuse reaches the family revocation."""
        doc = self.refresh.get(_sha256(value)) if value else None
        if doc is None or doc["exp"] < time.time():
            return None
        return doc["client_id"]

    def revoke_refresh(self, value: str, client: Client) -> bool:
        doc = self.refresh.get(_sha256(value))
        if doc is None or doc["client_id"] != client.client_id:
            return False
        self._revoke_family(doc["family"])
        return True

    def _purge(self) -> None:
        """Drop expired state a little at a time (on each new authorization request): requests,
        codes and limits an hour after they expired, refresh tokens and revocations once expired.
        Used authorization codes are kept that hour so a late replay is still recognised."""
        now = int(time.time())
        for coll in (self.requests, self.otps, self.codes, self.limits, self.devices, self.redeemed):
            for d in coll.find({"exp": {"$lt": now - 3600}}, limit=100):
                coll.delete(d["_id"])
        for d in self.refresh.find({"exp": {"$lt": now}}, limit=100):
            self.refresh.delete(d["_id"])
        self.auth.purge_revoked()
