"""Deterministic resource ids (stand-in until ``engine.repository.ids`` is on main).

The same institution + resource type + local key always gives the same id, so a re-sent or
corrected message updates the resources it created instead of duplicating them. The id is a
UUID-shaped rendering of SHA-256 (valid FHIR id, usable as ``urn:uuid:`` fullUrl).
"""

from __future__ import annotations

import hashlib


def deterministic_id(institution: str, resource_type: str, local_key: str) -> str:
    digest = hashlib.sha256(f"{institution}\x1f{resource_type}\x1f{local_key}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
