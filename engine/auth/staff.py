"""Named staff accounts (auditors, operators, clinicians) for the signed-in pages.

A staff member signs in to ``/ui/...`` with a password and a TOTP code (RFC 6238) instead of
pasting a bearer token. Accounts live in ``data_dir/staff.json`` (mode 0600) so ``huren staff add``
works on a running server, like the client registry: the file is re-read when it changes.

- Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``, memory-hard), the same KDF and
  parameters as client secrets (``engine.auth.clients.hash_secret``): one hashing rule.
- The TOTP secret must be stored as is (the server computes the same codes); it is shown once at
  enrolment as an ``otpauth://`` URI for the authenticator app.
- A role (``mappings/staff/roles.yaml``, overlaid by ``HUREN_SITE``) gives the session its Caller
  kind and scopes, so a signed-in person is judged by exactly the checks a bearer token meets.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyotp

from engine.auth.caller import Caller, Kind
from engine.auth.clients import check_secret, hash_secret
from engine.auth.secret_file import SecretJsonFile
from engine.settings import Settings
from mappings.sitefiles import check, find_file, read_yaml

STAFF_FILE = "staff.json"
STAFF_CLIENT_ID = "huren-staff-pages"  # the application a signed-in person acts through (audit trail)
ISSUER = "huren"  # shown by authenticator apps next to the account name
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
DEFAULTS = Path(__file__).resolve().parents[2] / "mappings"

_ROLES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": {
        "type": "object",
        "required": ["kind", "scopes", "label"],
        "additionalProperties": False,
        "properties": {
            "kind": {"enum": ["auditor", "user"]},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "label": {"type": "object", "required": ["zh", "en"],
                      "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}},
        },
    },
}


@dataclass(frozen=True)
class Role:
    name: str
    kind: Kind
    scopes: tuple[str, ...]
    label_zh: str
    label_en: str


def load_roles(settings: Settings) -> dict[str, Role]:
    folders = [DEFAULTS] + ([settings.site] if settings.site else [])
    path = find_file("staff/roles.yaml", folders)
    data = check(read_yaml(path), _ROLES_SCHEMA)
    return {name: Role(name, spec["kind"], tuple(spec["scopes"]), spec["label"]["zh"], spec["label"]["en"])
            for name, spec in data.items()}


@dataclass(frozen=True)
class StaffIdentity:
    """Who a signed-in person is, from a local account or from the bureau's identity provider."""

    name: str  # the audit trail's identifier (sign-in name, or the provider's username)
    role: str
    institution: str
    display: str  # the person's name as people write it (王丽)
    remit: str = ""  # the institution, community or pooling region they audit; "" for the whole site

    def caller(self, role: Role) -> Caller:
        """The same ``Caller`` a bearer token yields: every access check treats both alike."""
        return Caller(subject=self.name, kind=role.kind, scopes=role.scopes, client_id=STAFF_CLIENT_ID,
                      role=self.role, display=self.display or self.name, institution=self.institution,
                      remit=self.remit or None)


@dataclass(frozen=True)
class StaffAccount:
    name: str  # the sign-in name, also the audit trail's identifier
    role: str
    institution: str
    display: str  # the person's name as people write it (王丽)
    password_hash: str
    totp_secret: str
    created: float
    remit: str = ""  # see StaffIdentity.remit (accounts written before remits existed have none)

    def check_password(self, password: str) -> bool:
        return check_secret(password, self.password_hash)

    def totp(self) -> pyotp.TOTP:
        return pyotp.TOTP(self.totp_secret)

    @property
    def identity(self) -> StaffIdentity:
        return StaffIdentity(self.name, self.role, self.institution, self.display, self.remit)


@dataclass(frozen=True)
class Enrolment:
    """What the new staff member needs once: the secret for their authenticator app."""

    account: StaffAccount
    secret: str
    uri: str  # otpauth://totp/huren:NAME?secret=...&issuer=huren


def check_password_strength(password: str, name: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
    if name.lower() in password.lower():
        raise ValueError("the password must not contain the sign-in name")


class StaffDirectory:
    """The accounts file, re-read when it changes (``huren staff add`` on a running server)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STAFF_FILE
        self._lock = threading.Lock()
        self._file: SecretJsonFile[dict[str, StaffAccount]] = SecretJsonFile(
            self.path, lambda raw: {a["name"]: StaffAccount(**a) for a in raw.get("accounts", [])}, dict, indent=1)

    def _load(self) -> dict[str, StaffAccount]:
        return self._file.read()

    def get(self, name: str) -> StaffAccount | None:
        with self._lock:
            return self._load().get(name)

    def all(self) -> list[StaffAccount]:
        with self._lock:
            return sorted(self._load().values(), key=lambda a: a.name)

    def add(self, name: str, *, role: str, institution: str, password: str, display: str = "",
            roles: dict[str, Role], remit: str = "") -> Enrolment:
        """``remit``: bind the person to one institution, community or pooling region (the caller
        checks the code against the site); empty for the whole site."""
        if not NAME.match(name):
            raise ValueError("the sign-in name must be 2-40 characters: lower-case letters, digits, '.', '_' or '-'")
        if role not in roles:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(sorted(roles))})")
        if not institution.strip():
            raise ValueError("an institution code is required")
        check_password_strength(password, name)
        secret = pyotp.random_base32()
        account = StaffAccount(name=name, role=role, institution=institution.strip(), display=display.strip(),
                               password_hash=hash_secret(password), totp_secret=secret, created=time.time(),
                               remit=remit.strip())
        with self._lock:
            accounts = dict(self._load())
            if name in accounts:
                raise ValueError(f"staff account {name} already exists")
            accounts[name] = account
            self._write(accounts)
        return Enrolment(account, secret, account.totp().provisioning_uri(name=name, issuer_name=ISSUER))

    def set_password(self, name: str, password: str) -> None:
        check_password_strength(password, name)
        self._change(name, password_hash=hash_secret(password))

    def new_totp(self, name: str) -> Enrolment:
        """Re-enrol the second factor (a lost phone): the old codes stop working at once."""
        secret = pyotp.random_base32()
        account = self._change(name, totp_secret=secret)
        return Enrolment(account, secret, account.totp().provisioning_uri(name=name, issuer_name=ISSUER))

    def remove(self, name: str) -> bool:
        with self._lock:
            accounts = dict(self._load())
            if accounts.pop(name, None) is None:
                return False
            self._write(accounts)
            return True

    def _change(self, name: str, **fields: Any) -> StaffAccount:
        with self._lock:
            accounts = dict(self._load())
            if name not in accounts:
                raise ValueError(f"no staff account {name}")
            accounts[name] = StaffAccount(**{**asdict(accounts[name]), **fields})
            self._write(accounts)
            return accounts[name]

    def _write(self, accounts: dict[str, StaffAccount]) -> None:
        self._file.write({"accounts": [asdict(a) for a in accounts.values()]})
