"""Deterministic resource ids for converted HL7 data.

A re-sent or corrected message must update the resources it created before instead of
duplicating them, so the id is a name-based UUID (RFC 4122 version 5) of the institution, the
resource type and the local key (MRN, placer/filler order number, OBX identity...). The result
is a valid FHIR id (36 characters of ``[0-9a-f-]``) that leaks none of its inputs.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from functools import lru_cache

# uuid5(NAMESPACE_URL, "https://huren.example/fhir-ids"): fixed forever, changing it re-keys every resource.
NAMESPACE = uuid.UUID("0d6c2f1e-3b0f-5a8e-9d43-5a3f6c1b2e90")


# the form of the ids made here: a name-based UUID (RFC 4122 version 5, lower-case hex, the variant
# digit 8-b) -- what the feeds write, the indicators' reports and alerts, a referral's summary
_HUREN_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def huren_form(rid: str) -> bool:
    """Whether ``rid`` has the form of an id made here (``deterministic_id``): where a caller some
    labels are withheld from does not create by PUT (``ScopedRepository._claims``)."""
    return _HUREN_FORM.fullmatch(rid) is not None


def deterministic_id(institution: str, resource_type: str, local_key: str) -> str:
    """The id of ``resource_type`` known locally as ``local_key`` at ``institution`` (each is
    required: ``id_maker`` and the function it makes refuse a blank one)."""
    return id_maker(institution, resource_type)(local_key)


@lru_cache(maxsize=4096)
def id_maker(institution: str, resource_type: str) -> Callable[[str], str]:
    """``deterministic_id(institution, resource_type, key)`` as a function of ``key``.

    Why: a converter makes ~20 new ids a message, a few resource types of one institution; the
    name is namespace + institution + type + key, so the SHA-1 state after the shared part is
    computed once per (institution, type) and copied for each key (the same digest: hashing is
    incremental), and the per-call joins, ``upper`` and encodes of the shared part go (measured
    1.25 -> 0.78 us an id)."""
    if not institution or not resource_type:
        raise ValueError("institution, resource type and local key are all required for a deterministic id")
    prefix = hashlib.sha1(_NAMESPACE_BYTES + f"{institution.strip().upper()}\x1f{resource_type}\x1f".encode())
    variant = _VARIANT_DIGIT

    def make(local_key: str) -> str:
        if not local_key:  # (a blank key is hashed as its stripped text, as it always was)
            raise ValueError("institution, resource type and local key are all required for a deterministic id")
        h = prefix.copy()
        h.update(local_key.strip().encode("utf-8"))
        # RFC 4122 4.3: the first 16 bytes of the SHA-1, version 5 and the RFC 4122 variant set on
        # the hex text (digit 13 is ``5``, digit 17 through ``_VARIANT_DIGIT``) rather than on a
        # bytearray (bytes -> bytearray -> hex cost more than the hashing)
        d = h.hexdigest()
        return f"{d[:8]}-{d[8:12]}-5{d[13:16]}-{variant[d[16]]}{d[17:20]}-{d[20:32]}"

    return make


_NAMESPACE_BYTES = NAMESPACE.bytes
# RFC 4122 variant: the top two bits of byte 8 are 10, i.e. its first hex digit maps 0-f to 8-b
_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}

