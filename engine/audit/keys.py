"""Ed25519 signing keys for audit checkpoints and Provenance signatures.

Files under ``data_dir/keys``: ``audit-ed25519-<keyid>.pem`` (PKCS#8 private key, mode 0400 so
nothing rewrites it by accident) and ``audit-ed25519-<keyid>.pub.pem`` (SubjectPublicKeyInfo,
published at ``/audit/public-key`` and shipped in every export). Rotation (``rotate_keys``) adds a new pair and keeps
the old ones: their public halves still verify the checkpoints they signed, and the old private
file is renamed ``*.retired.pem`` so only the newest key signs.

Key ids follow the C2SP signed-note convention: ``key_hash = SHA-256(name || 0x0A || 0x01 ||
public_key)[:4]`` (0x01 = Ed25519), and the key id is its hex. A signature line carries these four
bytes before the 64-byte signature, so every checkpoint names the key that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine.settings import Settings

PREFIX = "audit-ed25519-"


KEY_NAME = "huren-audit"


def key_name(settings: Settings) -> str:
    """The signer's name in signature lines. A constant, not the base URL: the key id hashes the
    name, and a deployment that changes ``HUREN_BASE_URL`` must keep verifying its old checkpoints."""
    return KEY_NAME


def log_origin(settings: Settings) -> str:
    """The origin a new log takes (host/path, no scheme); ``AuditLog`` keeps the first one it used."""
    base = settings.public_base_url.split("://", 1)[-1]
    return f"{base}/audit"


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, pub: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + _raw(pub)).digest()[:4]


@dataclass(frozen=True)
class PublicKey:
    key_id: str  # hex of the 4-byte key hash
    name: str
    key: Ed25519PublicKey

    @property
    def pem(self) -> str:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


class AuditKeys:
    """The current signing key (if this process may sign) and every known public key by key id."""

    def __init__(self, name: str, signer: Ed25519PrivateKey | None, public: dict[str, PublicKey]) -> None:
        self.name = name
        self._signer = signer
        self.public = public
        self.current_id = key_hash(name, signer.public_key()).hex() if signer else None

    @classmethod
    def load(cls, settings: Settings, *, create: bool = True) -> AuditKeys:
        """Load the keys of ``data_dir/keys``; with ``create`` make the first pair when none exists."""
        name = key_name(settings)
        folder = settings.data_dir / "keys"
        if create:
            init_keys(settings)
        public: dict[str, PublicKey] = {}
        for path in sorted(folder.glob(PREFIX + "*.pub.pem")):
            pk = load_public_key(path.read_bytes(), name)
            public[pk.key_id] = pk
        signer = None
        current = _current_private(folder)
        if current is not None:
            loaded = serialization.load_pem_private_key(current.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{current}: not an Ed25519 key")
            signer = loaded
        return cls(name, signer, public)

    @classmethod
    def from_public_pems(cls, name: str, pems: list[bytes]) -> AuditKeys:
        """Verification-only keys (offline verify with ``--public-key``)."""
        keys = [load_public_key(p, name) for p in pems]
        return cls(name, None, {k.key_id: k for k in keys})

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """Sign with the current key: ``(key_id, signature)``."""
        if self._signer is None or self.current_id is None:
            raise RuntimeError("no audit signing key: run `huren keys init`")
        return self.current_id, self._signer.sign(data)

    def verify(self, key_id: str, signature: bytes, data: bytes) -> bool:
        pk = self.public.get(key_id)
        return pk is not None and pk.verify(signature, data)


def load_public_key(pem: bytes, name: str) -> PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return PublicKey(key_hash(name, key).hex(), name, key)


def _current_private(folder: Path) -> Path | None:
    """The newest non-retired private key (file names carry a creation timestamp)."""
    candidates = sorted(p for p in folder.glob(PREFIX + "*.pem")
                        if not p.name.endswith((".pub.pem", ".retired.pem")))
    return candidates[-1] if candidates else None


def init_keys(settings: Settings) -> list[Path]:
    """Create the audit signing key pair unless one exists; return the files created (none when
    the keys already exist). Called by ``huren keys init``."""
    folder = settings.data_dir / "keys"
    if _current_private(folder) is not None:
        return []
    _, paths = _new_pair(settings)
    return paths


def rotate_keys(settings: Settings) -> PublicKey:
    """Make a new signing key and retire the current private key; all public keys stay, so the
    checkpoints the old key signed keep verifying (``huren audit rotate-key``)."""
    current = _current_private(settings.data_dir / "keys")
    pub, _ = _new_pair(settings)
    if current is not None:
        current.rename(current.with_name(current.name[: -len(".pem")] + ".retired.pem"))
    return pub


def _new_pair(settings: Settings) -> tuple[PublicKey, list[Path]]:
    name = key_name(settings)
    folder = settings.data_dir / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    private = Ed25519PrivateKey.generate()
    pub = PublicKey(key_hash(name, private.public_key()).hex(), name, private.public_key())
    # one clock reading for both parts: read apart, a second could turn between them and a newer
    # key's name sort before an older one's (seen as a rotated export's keys listed newest first)
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now // 1_000_000_000)) + f"{now % 1_000_000_000:09d}"
    priv_path = folder / f"{PREFIX}{stamp}-{pub.key_id}.pem"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(priv_path, 0o400)
    pub_path = folder / f"{PREFIX}{stamp}-{pub.key_id}.pub.pem"
    pub_path.write_text(pub.pem)
    return pub, [priv_path, pub_path]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
