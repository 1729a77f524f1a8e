"""Token signing keys under ``data_dir/keys/token-*`` (the audit helper's are ``audit-*``).

Access tokens are signed with Ed25519 (JWS ``EdDSA``): small, fast to verify, no parameter
choices to get wrong. Keys are created on first use so a fresh data directory just works;
``huren keys init`` creates them ahead of time. The private key file is written with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TOKEN_KEY_FILE = "token-ed25519.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    kid: str
    path: Path

    def jwk(self) -> dict[str, str]:
        x = _b64url(self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}


def thumbprint(x: str) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: a stable ``kid``."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def key_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def load_or_create(data_dir: Path) -> tuple[SigningKey, bool]:
    """The token signing key, creating it when missing. Returns (key, created)."""
    path = key_dir(data_dir) / TOKEN_KEY_FILE
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        try:
            os.link(tmp, path)  # atomic and refuses to overwrite a key another process just made
            created = True
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    public = private.public_key()
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return SigningKey(private, public, thumbprint(x), path), created
