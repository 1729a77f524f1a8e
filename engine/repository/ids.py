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
# RFC 4122 variant: the top two bits of byte 8 are 10, i.e. its first hex digit maps 0-f to 8-b
_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without building UUID objects (an ORU needs ~22).

    RFC 4122 §4.3: SHA-1 of namespace + name, first 16 bytes, version 5 and the RFC 4122 variant,
    set on the hex text (version: digit 13 is ``5``; variant: digit 17 through ``_VARIANT_DIGIT``)
    rather than on a bytearray: 1.3 µs instead of 2.0 µs (bytes → bytearray → hex cost more than
    the hashing).
    """
    h = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"
