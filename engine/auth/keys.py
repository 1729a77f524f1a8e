"""Token signing keys under ``data_dir/keys/token-*`` (the audit helper's are ``audit-*``).

Access tokens are signed with Ed25519 (JWS ``EdDSA``): small, fast to verify, no parameter
choices to get wrong. OpenID Connect id_tokens are signed with RSA (``RS256``) because SMART App
Launch and OpenID Connect require relying parties to support RS256, and many SMART client
libraries support nothing else. Keys are created on first use so a fresh data directory just
works; ``huren keys init`` creates them ahead of time. Private key files are mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

TOKEN_KEY_FILE = "token-ed25519.pem"
ID_TOKEN_KEY_FILE = "token-rsa.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64int(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    private: Any
    public: Any
    alg: str  # EdDSA | RS256
    kid: str
    path: Path

    def jwk(self) -> dict[str, str]:
        return {**public_jwk_members(self.public), "kid": self.kid, "use": "sig", "alg": self.alg}


def public_jwk_members(public: Any) -> dict[str, str]:
    if isinstance(public, rsa.RSAPublicKey):
        nums = public.public_numbers()
        return {"kty": "RSA", "e": _b64int(nums.e), "n": _b64int(nums.n)}
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint: a stable ``kid`` derived from the public key alone."""
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def key_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def _load_or_create(path: Path, generate: Callable[[], Any]) -> tuple[Any, bool]:
    """The private key in ``path``, made (and written) when missing. A key this call made and linked in place is
    returned as made, not read back: reading an RSA key back checks it whole (its primes tested: ~30 ms of CPU, on
    top of the ~40 ms of making it) -- a check of bytes written from that very key a moment before. A key found in
    the file (an earlier start's, another process's that linked first) is read and checked as always. (forty-fifth
    round, suite45a: the suite made ~1 RSA id_token key for every 6 Engines it opened)"""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = generate()
        pem = made.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            os.link(tmp, path)  # atomic, and never overwrites a key another process just made
            created = True
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        if created:
            return made, created
    return serialization.load_pem_private_key(path.read_bytes(), password=None), created


def _signing_key(path: Path, alg: str, generate: Callable[[], Any], expected: type) -> tuple[SigningKey, bool]:
    private, created = _load_or_create(path, generate)
    if not isinstance(private, expected):
        raise ValueError(f"{path}: not the expected key type for {alg}")
    public = private.public_key()
    return SigningKey(private, public, alg, thumbprint(public_jwk_members(public)), path), created


def load_or_create(data_dir: Path) -> tuple[SigningKey, bool]:
    """The access-token signing key (Ed25519), created when missing. Returns (key, created)."""
    return _signing_key(key_dir(data_dir) / TOKEN_KEY_FILE, "EdDSA", Ed25519PrivateKey.generate, Ed25519PrivateKey)


def load_or_create_id_token_key(data_dir: Path) -> tuple[SigningKey, bool]:
    """The id_token signing key (RSA 2048, RS256), created when missing."""
    return _signing_key(key_dir(data_dir) / ID_TOKEN_KEY_FILE, "RS256",
                        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), rsa.RSAPrivateKey)
