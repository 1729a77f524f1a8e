"""Provenance signatures: huren signs what it stored from a hospital feed, so a reader can check
that a resource is exactly what the engine converted and filed.

``sign_provenance(provenance, target, keys)`` returns the Provenance with one more
``Provenance.signature`` (FHIR R4 ``Signature``):

- ``type`` = urn:iso-astm:E1762-95:2013#1.2.840.10065.1.12.1.14 (Source Signature);
- ``who`` = the engine (a Device named by the log origin), ``when`` = signing time;
- ``targetFormat`` = application/fhir+json, ``sigFormat`` = application/jose;
- ``data`` = base64 of a detached JWS (RFC 7515 Appendix F: ``header..signature``), EdDSA
  (Ed25519) with the audit signing key; header ``kid`` = the key id published at
  ``/audit/public-key``.

The signed payload is the RFC 8785 canonical JSON of the target resource without ``meta`` (the
repository sets ``meta.versionId``/``lastUpdated`` when it stores the resource, after signing) —
or, when the Provenance covers several resources (one per HL7 message), of the JSON array of
those targets in the order of ``Provenance.target``. ``verify_provenance`` recomputes it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson

from engine.audit.canonical import canonical
from engine.audit.checkpoint import now_utc
from engine.audit.keys import AuditKeys

SOURCE_SIGNATURE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.14",
                    "display": "Source Signature"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _targets(target: dict[str, Any] | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [target] if isinstance(target, dict) else list(target)


def signed_payload(target: dict[str, Any] | Sequence[dict[str, Any]]) -> bytes:
    stripped = [{k: v for k, v in t.items() if k != "meta"} for t in _targets(target)]
    return canonical(stripped[0] if isinstance(target, dict) else stripped)


def _reference(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def sign_provenance(provenance: dict[str, Any], target: dict[str, Any] | Sequence[dict[str, Any]],
                    keys: AuditKeys) -> dict[str, Any]:
    targets = _targets(target)
    refs = [(t.get("reference") or "").split("/_history/")[0] for t in provenance.get("target", [])]
    if refs != [_reference(t) for t in targets]:
        raise ValueError(f"Provenance.target {refs} does not name the signed resources in order")
    header = {"alg": "EdDSA", "kid": keys.current_id, "typ": "JOSE"}
    protected = _b64url(orjson.dumps(header))
    # JWS signing input ``protected.payload``, built as bytes: the payload is ~25 KB for a lab message
    signing_input = b"%s.%s" % (protected.encode(), base64.urlsafe_b64encode(signed_payload(target)).rstrip(b"="))
    key_id, sig = keys.sign(signing_input)
    jws = f"{protected}..{_b64url(sig)}"
    signature = {"type": [SOURCE_SIGNATURE], "when": now_utc(),
                 "who": {"type": "Device", "identifier": {"system": "urn:huren:node", "value": keys.name},
                         "display": "huren integration engine"},
                 "targetFormat": "application/fhir+json", "sigFormat": "application/jose",
                 "data": base64.b64encode(jws.encode()).decode()}
    return {**provenance, "signature": [*provenance.get("signature", []), signature]}


def verify_provenance(provenance: dict[str, Any], target: dict[str, Any] | Sequence[dict[str, Any]],
                      keys: AuditKeys) -> bool:
    """True when one of the Provenance's source signatures is a valid JWS by a known key over
    the target(s) as given."""
    targets = _targets(target)
    refs = [(t.get("reference") or "").split("/_history/")[0] for t in provenance.get("target", [])]
    if refs != [_reference(t) for t in targets]:
        return False
    payload = _b64url(signed_payload(target))
    for sig in provenance.get("signature", []):
        if sig.get("sigFormat") != "application/jose" or SOURCE_SIGNATURE["code"] not in \
                [c.get("code") for c in sig.get("type", [])]:
            continue
        try:
            protected, detached, signature = base64.b64decode(sig["data"], validate=True).decode().split(".")
            header = orjson.loads(_unb64url(protected))
            raw = _unb64url(signature)
        except (KeyError, ValueError, binascii.Error, orjson.JSONDecodeError):
            continue
        if detached or header.get("alg") != "EdDSA":
            continue
        if keys.verify(str(header.get("kid")), raw, f"{protected}.{payload}".encode()):
            return True
    return False
