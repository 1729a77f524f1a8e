"""The client registry: who may ask for tokens, with what scopes, and how they authenticate.

Stored as ``data_dir/clients.json`` so ``huren client add`` works on a running server (the
registry reloads when the file changes). Secrets are never stored: only an scrypt hash (a
memory-hard KDF, stdlib ``hashlib.scrypt``). Public SMART apps carry no secret but must register
their exact redirect URIs; backend clients may register a JWKS for ``private_key_jwt``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.auth import scopes as sc
from engine.auth.secret_file import SecretJsonFile

CLIENTS_FILE = "clients.json"
KINDS = ("system", "auditor", "user", "patient-app")

# scrypt cost: n=2**14, r=8, p=1 (RFC 7914 interactive parameters, ~16 MiB, tens of ms).
_N, _R, _P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, dk = stored.split("$")
    except ValueError:
        return False
    if algo != "scrypt":
        return False
    want = base64.b64decode(dk)
    got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(want), maxmem=128 * 1024 * 1024)
    return hmac.compare_digest(got, want)


_REDIRECT = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*):(//(?P<host>[A-Za-z0-9.\-\[\]:]+))?[^\s#\"';,]*$")


def check_redirect_uri(uri: str) -> None:
    """RFC 6749 §3.1.2 / RFC 8252: absolute, no fragment; https, or http only to this machine
    (development), or an app's private-use scheme (``com.example.app:/callback``)."""
    m = _REDIRECT.match(uri)
    if not m:
        raise ValueError(f"redirect URI {uri!r} must be an absolute URI without fragment")
    scheme, host = m.group("scheme"), (m.group("host") or "")
    if scheme == "http" and host.split(":")[0] not in ("localhost", "127.0.0.1", "[::1]"):
        raise ValueError(f"redirect URI {uri!r}: plain http is only allowed to localhost")
    if scheme in ("http", "https") and not host:
        raise ValueError(f"redirect URI {uri!r} has no host")
    if scheme in ("javascript", "data", "file", "vbscript"):
        raise ValueError(f"redirect URI {uri!r}: scheme {scheme} is not allowed")


@dataclass
class Client:
    client_id: str
    kind: str  # system | auditor | user | patient-app (a public SMART app used by residents)
    scopes: list[str]
    secret_hash: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    jwks: dict[str, Any] | None = None  # public keys for private_key_jwt
    name: str = ""
    # a system client's institution (``--institution``): another hospital's system, which reads no
    # record labelled R or V (``engine.auth.confidentiality``); None: a trusted system, reads all
    institution: str | None = None

    @property
    def public(self) -> bool:
        return self.secret_hash is None and self.jwks is None

    @cached_property
    def generation(self) -> str:
        """A fingerprint of this registration as stored (kind, scopes, secret hash, keys, binding...),
        carried in the tokens issued to it (``cgen``). Why: a token's claims are what the client was
        when it was issued; re-registering it (``huren client add`` again: a binding to an institution,
        narrower scopes, a new secret) or removing it must take effect on the next request, not when
        its tokens expire -- a token whose ``cgen`` is not its client's current one is refused
        (``AuthService.verify``). Derived from the record, so clients registered before tokens
        carried it need no stored counter."""
        record = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(record.encode()).hexdigest()[:16]


class ClientRegistry:
    def __init__(self, data_dir: Path, builtin: list[Client] = ()) -> None:
        self.path = data_dir / CLIENTS_FILE
        # Clients that ship with huren (the /ui/me page): not in the file, cannot be replaced.
        self.builtin = {c.client_id: c for c in builtin}
        self._lock = threading.Lock()
        self._file: SecretJsonFile[dict[str, Client]] = SecretJsonFile(
            self.path, lambda raw: {cid: Client(client_id=cid, **c) for cid, c in raw.get("clients", {}).items()},
            dict)

    def _load(self) -> dict[str, Client]:
        return self._file.read()

    def get(self, client_id: str) -> Client | None:
        if client_id in self.builtin:
            return self.builtin[client_id]
        with self._lock:
            return self._load().get(client_id)

    def all(self) -> list[Client]:
        with self._lock:
            return [*self.builtin.values(), *self._load().values()]

    def add(self, client_id: str, *, scopes: list[str], kind: str = "system", redirect_uris: list[str] = (),
            jwks: dict[str, Any] | None = None, public: bool = False, name: str = "",
            institution: str | None = None) -> str | None:
        """Register (or replace) a client; returns the new secret, shown once, or None for
        public clients and private_key_jwt clients. ``institution`` binds a system client to the
        hospital whose system it is (its tokens carry it)."""
        if kind not in KINDS:
            raise ValueError(f"client kind must be one of {', '.join(KINDS)}")
        if institution is not None and (kind != "system" or not institution.strip()
                                        or any(ch.isspace() for ch in institution)):
            raise ValueError("--institution binds a system client to an institution code (no spaces); "
                             "other kinds read no R/V record already")
        if not client_id or any(ch.isspace() or ch in ":/" for ch in client_id):
            raise ValueError("client id must be non-empty, without spaces, ':' or '/'")
        if client_id in self.builtin:
            raise ValueError(f"client id {client_id!r} is reserved for huren's own pages")
        sc.parse_all(scopes)  # refuse malformed scopes at registration
        if kind == "patient-app" and not redirect_uris:
            raise ValueError("a patient app must register at least one redirect URI")
        for uri in redirect_uris:
            check_redirect_uri(uri)
        secret = None if (public or jwks) else secrets.token_urlsafe(32)
        client = Client(client_id, kind, list(scopes), hash_secret(secret) if secret else None,
                        list(redirect_uris), jwks, name, institution)
        with self._lock:
            clients = dict(self._load())
            clients[client_id] = client
            self._write(clients)
        return secret

    def remove(self, client_id: str) -> bool:
        with self._lock:
            clients = dict(self._load())
            if clients.pop(client_id, None) is None:
                return False
            self._write(clients)
            return True

    def _write(self, clients: dict[str, Client]) -> None:
        self._file.write({"clients": {cid: {k: v for k, v in asdict(c).items() if k != "client_id"}
                                      for cid, c in clients.items()}})
