"""Staff sign-in: password + TOTP, login throttling, and sessions that expire.

Throttling hurts the attacker, not the account holder:

- **per source address**: at most ``ADDRESS_LIMIT`` failed sign-ins in ``ADDRESS_WINDOW`` seconds;
  further attempts from that address wait until the oldest failure ages out (whatever account).
- **per account**, after ``ACCOUNT_FREE`` consecutive failures: exponential backoff (2, 4, 8 ...
  seconds, capped at ``ACCOUNT_CAP``) before the next attempt is even checked. Never a permanent
  lock: a stranger can only slow the account down, and a success resets it.
- **known devices skip both**: a browser that signed in to the account before carries a device
  cookie (random, stored hashed, bound to that account); its attempts are judged only by its own
  failure count (``DEVICE_LIMIT``, after which the device is forgotten). So a stranger hammering an
  account, or sharing the owner's address (NAT), does not keep its owner out.

Throttles are checked before the password hash is computed, so refused attempts cost no KDF work.
The throttle state, sessions, devices and the last accepted TOTP step (a code is accepted once,
RFC 6238 §5.2) are in the store, so every worker process of one server counts and decides alike.

Sessions: a random token in an HttpOnly, SameSite=Strict cookie (Secure over https); the store
keeps only its SHA-256, so a copy of the database opens no session. Each session expires after
``HUREN_STAFF_SESSION_IDLE_SECONDS`` without use and ``HUREN_STAFF_SESSION_MAX_SECONDS`` after
sign-in, whichever comes first; it carries a CSRF token that state-changing requests must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.auth.caller import Caller
from engine.auth.clients import check_secret, hash_secret
from engine.auth.staff import Role, StaffAccount, StaffDirectory, StaffIdentity, load_roles
from engine.auth.staff_oidc import OidcSignIn, load_oidc
from engine.repository.port import DuplicateKey, Store
from engine.settings import Settings

SESSION_COOKIE = "huren_staff"
DEVICE_COOKIE = "huren_staff_device"
ADDRESS_LIMIT, ADDRESS_WINDOW = 20, 900.0
ACCOUNT_FREE, ACCOUNT_CAP = 5, 300.0
ACCOUNT_MEMORY = 86400.0  # an account's failures count towards its backoff for a day at most
DEVICE_LIMIT = 10
TOTP_STEP = 30


@cache
def _dummy_hash() -> str:
    """A hash to check unknown names against: the same KDF work as for a real account, so response
    time does not tell which names exist. Made on first need (scrypt costs tens of ms)."""
    return hash_secret(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInRefused(Exception):
    """A refused sign-in. ``retry_after`` (seconds) when throttled; the message is plain words."""

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "credentials" | "throttled"
        self.retry_after = retry_after


class LoginThrottle:
    """The sign-in throttle, shared by every process over one store (``huren serve --workers N``).

    Each failed sign-in is one document (address, name, time) in ``staff_login_failures``, and each
    success a reset time per account in ``staff_login_resets``: inserts and replaces only, so two
    workers failing at the same moment both count (no read-modify-write to lose an increment) on
    SQLite and MongoDB alike. The limits are answered by indexed range queries. Failures are kept
    for ``ADDRESS_WINDOW`` (the address limit) and ``ACCOUNT_MEMORY`` (the account backoff): after a
    day without an attempt an account starts afresh, so a throttle never grows without bound.
    """

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.failures = store.collection("staff_login_failures")
        self.failures.ensure_index(["address", "at"])
        self.failures.ensure_index(["name", "at"])
        self.failures.ensure_index(["at"])
        self.resets = store.collection("staff_login_resets")

    def wait(self, address: str, name: str, known_device: bool) -> float:
        """Seconds this attempt must wait (0: go ahead)."""
        if known_device:
            return 0.0  # a browser that signed in to this account before (see the module notes)
        now = self.clock()
        oldest = self.failures.find({"address": address, "at": {"$gt": now - ADDRESS_WINDOW}},
                                    sort=[("at", 1)], limit=ADDRESS_LIMIT)
        if len(oldest) >= ADDRESS_LIMIT:
            return oldest[0]["at"] + ADDRESS_WINDOW - now
        since = max(float((self.resets.get(name) or {}).get("at", 0.0)), now - ACCOUNT_MEMORY)
        count = self.failures.count({"name": name, "at": {"$gt": since}})
        if count >= ACCOUNT_FREE:
            [last] = self.failures.find({"name": name, "at": {"$gt": since}}, sort=[("at", -1)], limit=1)
            return max(0.0, last["at"] + min(2.0 ** (count - ACCOUNT_FREE + 1), ACCOUNT_CAP) - now)
        return 0.0

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        self.failures.insert({"_id": secrets.token_hex(12), "address": address, "name": name, "at": now})
        for doc in self.failures.find({"at": {"$lt": now - max(ADDRESS_WINDOW, ACCOUNT_MEMORY)}}, limit=100):
            self.failures.delete(doc["_id"])

    def succeeded(self, name: str) -> None:
        self.resets.replace({"_id": name, "at": self.clock()})


@dataclass(frozen=True)
class StaffSession:
    person: StaffIdentity
    role: Role
    csrf: str
    created: float
    expires: float  # when it ends if used again now (the earlier of idle and absolute)

    @property
    def caller(self) -> Caller:
        return self.person.caller(self.role)


@dataclass(frozen=True)
class SignedIn:
    token: str  # the session cookie's value
    device: str  # the device cookie's value (new or the one presented)
    session: StaffSession


class StaffAuth:
    """Sign-in, sessions and sign-out for named staff (``engine.staff``)."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.directory = StaffDirectory(settings.data_dir)
        self.roles = load_roles(settings)
        self.idle = float(settings.staff_session_idle_seconds)
        self.max_age = float(settings.staff_session_max_seconds)
        self.clock = clock
        self.throttle = LoginThrottle(store, lambda: self.clock())
        self.sessions = store.collection("staff_sessions")
        self.sessions.ensure_index(["seen"])
        self.devices = store.collection("staff_devices")
        self.state = store.collection("staff_state")  # last accepted TOTP step per account
        # each accepted (account, step) once, by key: two workers given the same code at the same
        # moment cannot both accept it (the second insert is a duplicate key)
        self.used_steps = store.collection("staff_totp_used")
        self.used_steps.ensure_index(["at"])
        # the bureau's identity provider, when the site configures one (staff/oidc.yaml)
        config = load_oidc(settings, set(self.roles))
        self.oidc = OidcSignIn(config, store, settings.public_base_url + "/ui/signin/oidc/callback",
                               clock=lambda: self.clock()) if config else None
        self._step_lock = threading.Lock()

    # ---- sign-in --------------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, code: str, *, address: str, device: str | None) -> SignedIn:
        name = name.strip().lower()
        dev = self.devices.get(_digest(device)) if device else None
        known = dev is not None and dev.get("name") == name and int(dev.get("failures", 0)) < DEVICE_LIMIT
        wait = self.throttle.wait(address, name, known)
        if wait > 0:
            raise SignInRefused("throttled", retry_after=int(wait) + 1)
        account = self.directory.get(name)
        role = self.roles.get(account.role) if account else None
        if account is None or role is None:
            check_secret(password, _dummy_hash())
            return self._fail(address, name, dev)
        if not account.check_password(password) or not self._accept_code(account, code):
            return self._fail(address, name, dev)
        self.throttle.succeeded(name)
        now = self.clock()
        if known and device:
            self.devices.update(_digest(device), {"failures": 0, "seen": now})
        else:
            device = secrets.token_urlsafe(32)
            self.devices.insert({"_id": _digest(device), "name": name, "created": now, "seen": now, "failures": 0})
        token, session = self.open_session(account.identity, role, address=address)
        return SignedIn(token, device, session)

    def open_session(self, person: StaffIdentity, role: Role, *, address: str,
                     issuer: str | None = None) -> tuple[str, StaffSession]:
        """A new session for a person signed in locally, or (``issuer``) by the bureau's identity
        provider: a federated person has no local account, so who they are is kept in the session."""
        now = self.clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        doc: dict[str, Any] = {"_id": _digest(token), "name": person.name, "csrf": csrf, "created": now,
                               "seen": now, "address": address}
        if issuer:
            doc["federated"] = {"issuer": issuer, "name": person.name, "role": person.role,
                                "institution": person.institution, "display": person.display,
                                "remit": person.remit}
        self.sessions.insert(doc)
        self._purge(now)
        return token, StaffSession(person, role, csrf, now, self._expires(now, now))

    def _fail(self, address: str, name: str, dev: dict[str, Any] | None) -> SignedIn:
        self.throttle.failed(address, name)
        if dev is not None:
            failures = int(dev.get("failures", 0)) + 1
            if failures >= DEVICE_LIMIT:
                self.devices.delete(dev["_id"])  # forgotten: it is judged like any stranger from now on
            else:
                self.devices.update(dev["_id"], {"failures": failures})
        raise SignInRefused("credentials")

    def _accept_code(self, account: StaffAccount, code: str) -> bool:
        """RFC 6238 with one step of clock drift either way; each step's code is accepted once."""
        code = "".join(code.split())
        if not (code.isdigit() and len(code) == 6):
            return False
        totp, now = account.totp(), self.clock()
        step = next((int(now // TOTP_STEP) + d for d in (0, -1, 1)
                     if hmac.compare_digest(totp.at(now + d * TOTP_STEP), code)), None)
        if step is None:
            return False
        with self._step_lock:
            last = (self.state.get(account.name) or {}).get("totp_step", -1)
            if step <= last:
                return False  # replayed (or older than one already used)
            try:
                self.used_steps.insert({"_id": f"{account.name}#{step}", "at": now})
            except DuplicateKey:
                return False  # another worker accepted this very code a moment ago
            self.state.replace({"_id": account.name, "totp_step": step})
        for doc in self.used_steps.find({"at": {"$lt": now - 4 * TOTP_STEP}}, limit=100):
            self.used_steps.delete(doc["_id"])  # past the drift window: "last" alone refuses them
        return True

    # ---- sessions -------------------------------------------------------------------------------

    def _expires(self, created: float, seen: float) -> float:
        return min(created + self.max_age, seen + self.idle)

    def session(self, token: str | None) -> StaffSession | None:
        """The live session for a cookie value, its idle clock restarted; None when unknown or expired."""
        if not token:
            return None
        key = _digest(token)
        doc = self.sessions.get(key)
        if doc is None:
            return None
        now = self.clock()
        if now >= self._expires(doc["created"], doc["seen"]):
            self.sessions.delete(key)
            return None
        fed = doc.get("federated")
        if fed:
            person: StaffIdentity | None = StaffIdentity(fed["name"], fed["role"], fed["institution"], fed["display"],
                                                         fed.get("remit") or "")
        else:
            account = self.directory.get(doc["name"])
            person = account.identity if account else None
        role = self.roles.get(person.role) if person else None
        if person is None or role is None:  # removed (or role withdrawn) while signed in
            self.sessions.delete(key)
            return None
        if now - doc["seen"] >= 1.0:
            self.sessions.update(key, {"seen": now})
        return StaffSession(person, role, doc["csrf"], doc["created"], self._expires(doc["created"], now))

    def sign_out(self, token: str | None) -> None:
        if token:
            self.sessions.delete(_digest(token))

    def _purge(self, now: float) -> None:
        """Drop sessions idle past their limit (run at each sign-in: cheap, indexed on ``seen``)."""
        for doc in self.sessions.find({"seen": {"$lt": now - self.idle}}, limit=500):
            self.sessions.delete(doc["_id"])


def csrf_matches(session: StaffSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())
