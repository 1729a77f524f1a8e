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

The signed bytes start from the RFC 8785 canonical JSON of the target resource without ``meta``
(the repository sets ``meta.versionId``/``lastUpdated`` when it stores the resource, after
signing) — or, when the Provenance covers several resources (one per HL7 message), of the JSON
array of those targets in the order of ``Provenance.target`` (``signed_payload``). Two layouts of
the JWS payload exist, told apart by the protected header; ``verify_provenance`` checks both:

- digest (written since the ingest pipeline was measured, header ``cty`` = ``huren-sha256+json``):
  the payload is the canonical JSON ``{"sha256":"<base64url SHA-256 of the canonical targets>"}``
  (``digest_payload``). Why: Ed25519 hashes its whole input twice with SHA-512, and the JWS
  signing input of the whole form is the base64url of ~20-30 KB for a lab message; hashing once
  with SHA-256 and signing 60 bytes measured ~45 us less per message (of ~200). An auditor checks
  it offline with any JOSE library: recompute the canonical targets, hash them, build the
  60-byte payload, verify the detached JWS with the published key.
- whole (every signature made before the digest layout): the payload is the canonical targets
  themselves.
- tree (``sign_provenances``: the Provenances of a batch of messages, one signature for all;
  header ``cty`` = ``huren-sha256-tree+json``, ``sigFormat`` = ``application/jose+json``): each
  Provenance's leaf is its digest layout payload ``{"sha256":"..."}`` above; the leaves, in
  batch order, make an RFC 9162 Merkle tree (leaf hash SHA-256(0x00 || leaf), node hash
  SHA-256(0x01 || left || right)); the signed payload is the canonical JSON
  ``{"leaves":<n>,"sha256-tree":"<base64url root>"}``. ``Signature.data`` is the base64 of a JWS
  in the flattened JSON serialization with a detached payload (RFC 7515 §7.2.2, Appendix F):
  ``{"header":{"leaf":<index>,"leaves":<n>,"path":["<base64url>",...]},"protected":"...",
  "signature":"..."}`` -- the unprotected header carries the Provenance's own inclusion path
  (RFC 9162 §2.1.3), so each Provenance is verified on its own: canonical targets -> SHA-256 ->
  leaf -> root through the path -> payload -> Ed25519 over ``protected.payload`` with the
  published key (public tools: any RFC 8785 library, SHA-256, any JOSE or Ed25519 library;
  ``tests/test_audit_provenance.py`` does it without huren). The path and index are not signed
  and need not be: a path that leads elsewhere gives another root, hence a payload the signature
  does not cover. Why: the ingest pipeline signed every message on its own, an Ed25519 signature
  and a JWS built per message (~40-70 us of a 12-OBX message inside the pipeline); a batch of 50
  now signs once, and each Provenance pays ~6 hashes of 65 bytes for its path.

- manifest (``sign_stored``: what the ingest pipeline writes now; header ``cty`` =
  ``huren-manifest+json``, or ``huren-manifest-tree+json`` for a batch): the Provenance signs a
  *manifest* of the versions it names, not their content: the RFC 8785 form of
  ``{"targets":[{"reference":"<Type/id/_history/n>","sha256":"<hex>"},...]}``, one entry per
  ``Provenance.target`` in order, each the SHA-256 (lower-case hex) of that version's **stored
  bytes** (the exact JSON the repository keeps and a FHIR vread of that version returns, with
  its ``meta``).
  One Provenance alone: a compact JWS (``sigFormat`` ``application/jose``) whose detached payload
  is the manifest. A batch: the manifests are the leaves of the RFC 9162 tree above (leaf hash
  SHA-256(0x00 || manifest)), the signed payload ``{"leaves":<n>,"sha256-tree":"<root>"}`` and
  each Provenance's inclusion path in the unprotected header, exactly as in the tree layout.
  Why: the other layouts put the RFC 8785 form of ~19 KB of targets through orjson and a scan
  of its output per message (~60-95 us of a 12-OBX message in the pipeline), a second
  serialisation of resources the repository has just serialised; the manifest hashes the bytes
  the repository wrote (~20 SHA-256 of ~1 KB) and canonicalises ~2 KB of references. An
  auditor checks it offline with public tools: vread each target version, SHA-256 the response
  body, build the manifest, (fold the path,) verify the JWS with the published key
  (``tests/test_audit_provenance.py`` and ``tests/test_ingest_filing.py`` do it without huren).
  It covers more than the other layouts: the versions' ``meta`` (version and time) too.

All are tamper-evident in the same way: any change to a target changes the bytes hashed, hence
the SHA-256, hence the payload the signature must cover.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from engine import fhirjson
from engine.audit.canonical import canonical, canonical_strings
from engine.audit.checkpoint import now_utc
from engine.audit.keys import AuditKeys
from engine.audit.merkle import inclusion_proof, inclusion_root, leaf_hash, node_hash, range_hash

SOURCE_SIGNATURE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.14",
                    "display": "Source Signature"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _targets(target: dict[str, Any] | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [target] if isinstance(target, dict) else list(target)


def signed_payload(target: dict[str, Any] | Sequence[dict[str, Any]]) -> bytes:
    stripped = [_without_meta(t) for t in _targets(target)]
    return canonical(stripped[0] if isinstance(target, dict) else stripped)


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy without ``meta`` (a C-level copy and one delete: ~3x faster than a
    comprehension over the keys, for the ~20 targets of a message)."""
    copy = resource.copy()
    copy.pop("meta", None)
    return copy


def _reference(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


DIGEST_CONTENT = "huren-sha256+json"  # JWS ``cty`` of the digest layout


def digest_payload(canonical_targets: bytes) -> bytes:
    """The digest layout's payload over ``signed_payload(...)`` (already RFC 8785: one ASCII member)."""
    return b'{"sha256":"%s"}' % _b64url(hashlib.sha256(canonical_targets).digest()).encode()


def _protected(key_id: str, content: str = DIGEST_CONTENT) -> str:
    return _b64url(orjson.dumps({"alg": "EdDSA", "cty": content, "kid": key_id, "typ": "JOSE"}))


def _sign_compact(provenance: dict[str, Any], payload: bytes, content: str, keys: AuditKeys) -> dict[str, Any]:
    """The Provenance with one more source signature: a compact JWS (``application/jose``) whose
    detached payload is ``payload`` and whose ``cty`` names the layout."""
    if keys.current_id is None:
        raise RuntimeError("no audit signing key: run `huren keys init`")
    protected = _protected(keys.current_id, content)
    _, sig = keys.sign(f"{protected}.{_b64url(payload)}".encode())
    signature = _signature(keys, "application/jose", f"{protected}..{_b64url(sig)}".encode(), now_utc())
    return {**provenance, "signature": [*provenance.get("signature", []), signature]}


TREE_CONTENT = "huren-sha256-tree+json"  # JWS ``cty`` of the tree layout
JOSE_JSON = "application/jose+json"  # the tree layout's ``sigFormat`` (JWS JSON serialization)


def tree_payload(root: bytes, leaves: int) -> bytes:
    """The tree layout's signed payload (RFC 8785: two members, sorted, ASCII)."""
    return b'{"leaves":%d,"sha256-tree":"%s"}' % (leaves, _b64url(root).encode())


def _check_targets(provenance: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    refs = [(t.get("reference") or "").split("/_history/")[0] for t in provenance.get("target", [])]
    if refs != [_reference(t) for t in targets]:
        raise ValueError(f"Provenance.target {refs} does not name the signed resources in order")


def _signature(keys: AuditKeys, sig_format: str, data: bytes, when: str) -> dict[str, Any]:
    return {"type": [SOURCE_SIGNATURE], "when": when,
            "who": {"type": "Device", "identifier": {"system": "urn:huren:node", "value": keys.name},
                    "display": "huren integration engine"},
            "targetFormat": "application/fhir+json", "sigFormat": sig_format,
            "data": base64.b64encode(data).decode()}


def sign_provenance(provenance: dict[str, Any], target: dict[str, Any] | Sequence[dict[str, Any]],
                    keys: AuditKeys) -> dict[str, Any]:
    targets = _targets(target)
    _check_targets(provenance, targets)
    return _sign_compact(provenance, digest_payload(signed_payload(target)), DIGEST_CONTENT, keys)


def sign_provenances(pairs: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]],
                     keys: AuditKeys) -> list[dict[str, Any]]:
    """Sign several Provenances, each over its own targets, with one signature (the tree layout of
    the module's docstring); one Provenance alone gets the digest layout."""
    if len(pairs) == 1:
        return [sign_provenance(pairs[0][0], pairs[0][1], keys)]
    leaves = []
    for provenance, target in pairs:
        targets = _targets(target)
        _check_targets(provenance, targets)
        leaves.append(digest_payload(signed_payload(targets)))
    return _sign_tree([p for p, _ in pairs], leaves, TREE_CONTENT, keys)


def _sign_tree(provenances: Sequence[dict[str, Any]], leaves: Sequence[bytes], content: str,
               keys: AuditKeys) -> list[dict[str, Any]]:
    """One signature over the RFC 9162 tree of ``leaves`` (one per Provenance, in order); each
    Provenance gets a JWS JSON serialization carrying its own inclusion path."""
    if keys.current_id is None:
        raise RuntimeError("no audit signing key: run `huren keys init`")
    hashes = [leaf_hash(leaf) for leaf in leaves]
    n = len(hashes)
    levels = [hashes]  # levels[k][j]: the perfect subtree of 2**k leaves from leaf j * 2**k
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[j], below[j + 1]) for j in range(0, len(below) - 1, 2)])

    def subtree(level: int, index: int) -> bytes:
        return levels[level][index]

    root = range_hash(0, n, subtree)
    protected = _b64url(orjson.dumps({"alg": "EdDSA", "cty": content, "kid": keys.current_id,
                                      "typ": "JOSE+JSON"}))
    _, sig = keys.sign(f"{protected}.{_b64url(tree_payload(root, n))}".encode())
    signature, when = _b64url(sig), now_utc()
    out = []
    for i, provenance in enumerate(provenances):
        path = [_b64url(h) for h in inclusion_proof(i, n, subtree)]
        jws = orjson.dumps({"header": {"leaf": i, "leaves": n, "path": path}, "protected": protected,
                            "signature": signature})
        out.append({**provenance, "signature": [*provenance.get("signature", []),
                                                _signature(keys, JOSE_JSON, jws, when)]})
    return out


MANIFEST_CONTENT = "huren-manifest+json"  # JWS ``cty`` of the manifest layout, one Provenance
MANIFEST_TREE_CONTENT = "huren-manifest-tree+json"  # the manifest layout, a batch under one signature


def manifest(references: Sequence[str], bodies: Sequence[bytes]) -> bytes:
    """The manifest layout's RFC 8785 bytes: each versioned reference with the SHA-256 of the
    stored bytes of that version, in ``Provenance.target`` order."""
    sha256 = hashlib.sha256
    return canonical_strings({"targets": [{"reference": str(ref), "sha256": sha256(body).hexdigest()}
                                          for ref, body in zip(references, bodies, strict=True)]})


def _target_references(provenance: dict[str, Any]) -> list[str]:
    return [str(t.get("reference") or "") for t in provenance.get("target", [])]


def sign_stored(pairs: Sequence[tuple[dict[str, Any], Sequence[bytes]]], keys: AuditKeys) -> list[dict[str, Any]]:
    """Sign Provenances over the stored bytes of the versions their targets name (the manifest
    layout of the module's docstring): ``pairs`` = ``[(provenance, [stored bytes of each target,
    in target order])]``; several share one signature over a tree, each with its own path.

    The targets' references must name versions (``Type/id/_history/n``): the bytes signed are
    those of that version, which the history keeps when a later version replaces it."""
    manifests = []
    for provenance, bodies in pairs:
        refs = _target_references(provenance)
        if len(refs) != len(bodies) or not all("/_history/" in r for r in refs):
            raise ValueError(f"Provenance.target {refs} does not name one stored version per signed body")
        manifests.append(manifest(refs, bodies))
    if len(pairs) != 1:
        return _sign_tree([p for p, _ in pairs], manifests, MANIFEST_TREE_CONTENT, keys)
    return [_sign_compact(pairs[0][0], manifests[0], MANIFEST_CONTENT, keys)]


def verify_provenance(provenance: dict[str, Any], target: dict[str, Any] | bytes | Sequence[dict[str, Any] | bytes],
                      keys: AuditKeys) -> bool:
    """True when one of the Provenance's source signatures is a valid JWS by a known key over
    the target(s) as given, in any layout (manifest, digest, tree, or the whole canonical targets).

    A target is the stored version as read (a dict), or its stored bytes; the manifest layout
    hashes the bytes (a dict is written back with ``fhirjson.dumps``, which gives the stored
    bytes of a version read through the repository)."""
    given: list[dict[str, Any] | bytes] = [target] if isinstance(target, dict | bytes) else list(target)
    bodies = [t if isinstance(t, bytes) else fhirjson.dumps(t) for t in given]
    try:
        targets = [fhirjson.loads(t) if isinstance(t, bytes) else t for t in given]
    except fhirjson.DecodeError:
        return False
    if any(not isinstance(t, dict) for t in targets):
        return False
    refs = [(t.get("reference") or "").split("/_history/")[0] for t in provenance.get("target", [])]
    if refs != [_reference(t) for t in targets]:
        return False
    signed: dict[str, bytes] = {}  # what each layout's signature covers, computed when first asked

    def payload(layout: str | None) -> bytes:
        if layout not in signed:
            if layout in (MANIFEST_CONTENT, MANIFEST_TREE_CONTENT):
                signed[layout] = manifest(_target_references(provenance), bodies)
            elif layout in (DIGEST_CONTENT, TREE_CONTENT):
                signed[layout] = digest_payload(payload(None))
            else:
                signed[layout] = signed_payload(targets[0] if isinstance(target, dict | bytes) else targets)
        return signed[layout]

    for sig in provenance.get("signature", []):
        if SOURCE_SIGNATURE["code"] not in [c.get("code") for c in sig.get("type", [])]:
            continue
        if sig.get("sigFormat") == JOSE_JSON:
            if _verify_tree(sig, payload, keys):
                return True
            continue
        if sig.get("sigFormat") != "application/jose":
            continue
        try:
            protected, detached, signature = base64.b64decode(sig["data"], validate=True).decode().split(".")
            header = orjson.loads(_unb64url(protected))
            raw = _unb64url(signature)
        except (KeyError, ValueError, binascii.Error, orjson.JSONDecodeError):
            continue
        if detached or not isinstance(header, dict) or header.get("alg") != "EdDSA" \
                or header.get("cty") not in (MANIFEST_CONTENT, DIGEST_CONTENT, None):
            continue
        data = _b64url(payload(header.get("cty")))
        if keys.verify(str(header.get("kid")), raw, f"{protected}.{data}".encode()):
            return True
    return False


def _verify_tree(sig: dict[str, Any], payload: Callable[[str | None], bytes], keys: AuditKeys) -> bool:
    """The tree layouts: this Provenance's leaf, through its path, to the root the JWS signs."""
    try:
        jws = orjson.loads(base64.b64decode(sig["data"], validate=True))
        protected, unprotected = str(jws["protected"]), jws["header"]
        header = orjson.loads(_unb64url(protected))
        raw = _unb64url(str(jws["signature"]))
        index, size = unprotected["leaf"], unprotected["leaves"]
        path = [_unb64url(str(p)) for p in unprotected["path"]]
    except (KeyError, TypeError, ValueError, binascii.Error, orjson.JSONDecodeError):
        return False
    if "payload" in jws or not isinstance(header, dict) or header.get("alg") != "EdDSA" \
            or header.get("cty") not in (TREE_CONTENT, MANIFEST_TREE_CONTENT) \
            or type(index) is not int or type(size) is not int:
        return False
    root = inclusion_root(index, size, leaf_hash(payload(header["cty"])), path)
    if root is None:
        return False
    return keys.verify(str(header.get("kid")), raw, f"{protected}.{_b64url(tree_payload(root, size))}".encode())
