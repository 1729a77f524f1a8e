"""Provenance source signatures over the canonical stored resource(s)."""

from __future__ import annotations

import base64
import json

import pytest

from engine.audit.keys import AuditKeys, rotate_keys
from engine.audit.provenance import sign_provenance, verify_provenance
from engine.settings import Settings
from tests.rfc9162 import root_from_inclusion_path

OBS = {"resourceType": "Observation", "id": "o1", "status": "final",
       "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
       "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 13.2, "unit": "g/dL"}}
PAT = {"resourceType": "Patient", "id": "p1", "name": [{"text": "张三"}]}


def provenance(*targets: dict) -> dict:
    return {"resourceType": "Provenance", "id": "prov1", "recorded": "2026-11-23T10:00:00Z",
            "target": [{"reference": f"{t['resourceType']}/{t['id']}"} for t in targets],
            "agent": [{"who": {"display": "FNXRMYY LIS"}}]}


@pytest.fixture
def keys(settings: Settings) -> AuditKeys:
    return AuditKeys.load(settings)


def test_signed_provenance_verifies_and_survives_storage_meta(keys: AuditKeys) -> None:
    signed = sign_provenance(provenance(OBS), OBS, keys)
    [sig] = signed["signature"]
    assert sig["type"][0]["code"] == "1.2.840.10065.1.12.1.14" and sig["sigFormat"] == "application/jose"
    header_b64, empty, _ = base64.b64decode(sig["data"]).decode().split(".")
    assert empty == ""  # detached payload
    assert json.loads(base64.urlsafe_b64decode(header_b64 + "=="))["kid"] == keys.current_id
    stored = {**OBS, "meta": {"versionId": "1", "lastUpdated": "2026-11-23T10:00:01Z"}}
    assert verify_provenance(signed, stored, keys)


def test_any_change_to_the_target_breaks_the_signature(keys: AuditKeys) -> None:
    signed = sign_provenance(provenance(OBS), OBS, keys)
    assert not verify_provenance(signed, {**OBS, "valueQuantity": {"value": 31.2, "unit": "g/dL"}}, keys)
    assert not verify_provenance(signed, {**OBS, "id": "o2"}, keys)


def test_one_provenance_over_a_message_signs_all_its_resources(keys: AuditKeys) -> None:
    signed = sign_provenance(provenance(PAT, OBS), [PAT, OBS], keys)
    assert verify_provenance(signed, [PAT, OBS], keys)
    assert not verify_provenance(signed, [OBS, PAT], keys)
    with pytest.raises(ValueError):
        sign_provenance(provenance(PAT), [PAT, OBS], keys)


def test_rotated_keys_still_verify_and_foreign_keys_do_not(keys: AuditKeys, settings: Settings, tmp_path) -> None:
    signed = sign_provenance(provenance(OBS), OBS, keys)
    rotate_keys(settings)
    assert verify_provenance(signed, OBS, AuditKeys.load(settings))
    stranger = AuditKeys.load(settings.with_(data_dir=tmp_path / "other"))
    assert not verify_provenance(signed, OBS, stranger)


def _jws_parts(signature: dict) -> tuple[dict, str, bytes]:
    protected, _, sig = base64.b64decode(signature["data"]).decode().split(".")
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    return header, protected, base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))


def test_an_auditor_verifies_the_digest_layout_with_public_tools_only(keys: AuditKeys) -> None:
    """Offline, without huren: RFC 8785 (the rfc8785 package), SHA-256, and the PEM public key."""
    import hashlib

    import rfc8785
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    stored = [{**PAT, "meta": {"versionId": "1"}}, {**OBS, "meta": {"versionId": "3"}}]
    signed = sign_provenance(provenance(PAT, OBS), stored, keys)
    header, protected, sig = _jws_parts(signed["signature"][0])
    assert header["cty"] == "huren-sha256+json" and header["alg"] == "EdDSA"
    pem = next(k.pem for k in keys.public.values() if k.key_id == header["kid"])
    digest = hashlib.sha256(rfc8785.dumps([PAT, OBS])).digest()  # the targets without meta, in order
    payload = json.dumps({"sha256": base64.urlsafe_b64encode(digest).rstrip(b"=").decode()},
                         separators=(",", ":")).encode()
    signing_input = protected.encode() + b"." + base64.urlsafe_b64encode(payload).rstrip(b"=")
    load_pem_public_key(pem.encode()).verify(sig, signing_input)  # raises when it does not verify
    tampered = hashlib.sha256(rfc8785.dumps([PAT, {**OBS, "status": "amended"}])).digest()
    assert tampered != digest
    assert not verify_provenance(signed, [PAT, {**OBS, "status": "amended"}], keys)


def test_signatures_of_the_whole_layout_made_before_still_verify(keys: AuditKeys) -> None:
    """A signature made before the digest layout (payload = the canonical targets themselves)."""
    import rfc8785

    def b64url(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    protected = b64url(json.dumps({"alg": "EdDSA", "kid": keys.current_id, "typ": "JOSE"}).encode())
    _, sig = keys.sign(f"{protected}.{b64url(rfc8785.dumps(OBS))}".encode())
    old = {**provenance(OBS), "signature": [{
        "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.14"}],
        "when": "2026-11-01T00:00:00Z", "who": {"display": "huren"}, "sigFormat": "application/jose",
        "data": base64.b64encode(f"{protected}..{b64url(sig)}".encode()).decode()}]}
    assert verify_provenance(old, {**OBS, "meta": {"versionId": "1"}}, keys)
    assert not verify_provenance(old, {**OBS, "status": "amended"}, keys)
    # the same signature presented as the digest layout does not verify (the layout is signed too)
    header = b64url(json.dumps({"alg": "EdDSA", "cty": "huren-sha256+json", "kid": keys.current_id,
                                "typ": "JOSE"}).encode())
    relabelled = {**old, "signature": [{**old["signature"][0],
                                        "data": base64.b64encode(f"{header}..{b64url(sig)}".encode()).decode()}]}
    assert not verify_provenance(relabelled, OBS, keys)


def _tree_parts(signature: dict) -> tuple[dict, dict, str, bytes]:
    jws = json.loads(base64.b64decode(signature["data"]))
    protected = jws["protected"]
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    sig = base64.urlsafe_b64decode(jws["signature"] + "=" * (-len(jws["signature"]) % 4))
    return header, jws["header"], protected, sig


def test_provenances_signed_together_each_verify_alone_and_tampering_fails(keys: AuditKeys) -> None:
    from engine.audit.provenance import sign_provenances

    for n in (2, 3, 5, 8, 13):
        pairs = []
        for i in range(n):
            obs = {**OBS, "id": f"o{i}", "valueQuantity": {"value": 10 + i, "unit": "g/L"}}
            prov = {**provenance(PAT, obs), "id": f"prov{i}"}
            pairs.append((prov, [PAT, obs]))
        signed = sign_provenances(pairs, keys)
        assert len({s["signature"][0]["data"] for s in signed}) == n
        for i, (prov, (_, targets)) in enumerate(zip(signed, pairs, strict=True)):
            assert prov["signature"][0]["sigFormat"] == "application/jose+json"
            assert verify_provenance(prov, targets, keys), (n, i)
            other = pairs[(i + 1) % n][1]
            assert not verify_provenance(prov, other, keys)
            assert not verify_provenance(prov, [PAT, {**targets[1], "status": "amended"}], keys)
    # a path moved to another leaf index does not verify
    header, unprotected, protected, sig = _tree_parts(signed[3]["signature"][0])
    moved = {"protected": protected, "signature": base64.urlsafe_b64encode(sig).rstrip(b"=").decode(),
             "header": {**unprotected, "leaf": 4}}
    forged = {**signed[3], "signature": [{**signed[3]["signature"][0],
                                          "data": base64.b64encode(json.dumps(moved).encode()).decode()}]}
    assert not verify_provenance(forged, pairs[3][1], keys)
    assert sign_provenances(pairs[:1], keys)[0]["signature"][0]["sigFormat"] == "application/jose"


def test_an_auditor_verifies_the_tree_layout_with_public_tools_only(keys: AuditKeys) -> None:
    """Offline, without huren: RFC 8785, SHA-256, the RFC 9162 inclusion path, the PEM key."""
    import hashlib

    import rfc8785
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from engine.audit.provenance import sign_provenances

    def b64url(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def unb64url(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    stored = [[{**PAT, "meta": {"versionId": "1"}}, {**OBS, "id": f"o{i}", "meta": {"versionId": "2"}}]
              for i in range(6)]
    signed = sign_provenances([({**provenance(*t), "id": f"p{i}"}, t) for i, t in enumerate(stored)], keys)
    for prov, targets in zip(signed, stored, strict=True):
        header, unprotected, protected, sig = _tree_parts(prov["signature"][0])
        assert header["cty"] == "huren-sha256-tree+json" and header["alg"] == "EdDSA"
        plain = [{k: v for k, v in t.items() if k != "meta"} for t in targets]
        leaf = json.dumps({"sha256": b64url(hashlib.sha256(rfc8785.dumps(plain)).digest()).decode()},
                          separators=(",", ":")).encode()
        # RFC 9162 section 2.1.3.2: from the leaf hash, through the path, to the root
        r = root_from_inclusion_path(
            leaf, unprotected["leaf"], unprotected["leaves"], map(unb64url, unprotected["path"]))
        payload = rfc8785.dumps({"leaves": unprotected["leaves"], "sha256-tree": b64url(r).decode()})
        pem = next(k.pem for k in keys.public.values() if k.key_id == header["kid"])
        load_pem_public_key(pem.encode()).verify(sig, protected.encode() + b"." + b64url(payload))


def _stored_bytes(resource: dict, version: str) -> bytes:
    """A version as the repository stores it: orjson of the resource with its ``meta``."""
    from engine import fhirjson

    return fhirjson.dumps({**resource, "meta": {"versionId": version, "lastUpdated": "2026-11-23T10:00:01Z"}})


def _versioned_provenance(*targets: tuple[dict, str]) -> dict:
    return {**provenance(*[t for t, _ in targets]),
            "target": [{"reference": f"{t['resourceType']}/{t['id']}/_history/{v}"} for t, v in targets]}


def test_a_manifest_signature_covers_the_stored_bytes_of_each_named_version(keys: AuditKeys) -> None:
    """The manifest layout: one Provenance signed over the SHA-256 of each target version's stored
    bytes. It verifies against those bytes or the versions read back as dicts; any change to a
    target's content, its meta, the order or the version a target names does not verify."""
    from engine import fhirjson
    from engine.audit.provenance import sign_stored

    bodies = [_stored_bytes(PAT, "1"), _stored_bytes(OBS, "3")]
    [signed] = sign_stored([(_versioned_provenance((PAT, "1"), (OBS, "3")), bodies)], keys)
    [sig] = signed["signature"]
    assert sig["sigFormat"] == "application/jose"
    assert verify_provenance(signed, bodies, keys)
    assert verify_provenance(signed, [fhirjson.loads(b) for b in bodies], keys)
    assert not verify_provenance(signed, bodies[::-1], keys)
    assert not verify_provenance(signed, [bodies[0], _stored_bytes({**OBS, "status": "amended"}, "3")], keys)
    assert not verify_provenance(signed, [bodies[0], _stored_bytes(OBS, "4")], keys)  # another version's meta
    relabelled = {**signed, "target": [signed["target"][0], {"reference": "Observation/o1/_history/4"}]}
    assert not verify_provenance(relabelled, bodies, keys)
    with pytest.raises(ValueError):  # a target that names no version cannot be signed by its bytes
        sign_stored([(provenance(PAT, OBS), bodies)], keys)
    with pytest.raises(ValueError):
        sign_stored([(_versioned_provenance((PAT, "1")), bodies)], keys)


def test_manifests_signed_together_each_verify_alone_and_tampering_fails(keys: AuditKeys) -> None:
    from engine.audit.provenance import JOSE_JSON, sign_stored

    for n in (2, 3, 5, 8):
        pairs = []
        for i in range(n):
            obs = {**OBS, "id": f"o{i}", "valueQuantity": {"value": 10 + i, "unit": "g/L"}}
            pairs.append(({**_versioned_provenance((PAT, "1"), (obs, "2")), "id": f"prov{i}"},
                          [_stored_bytes(PAT, "1"), _stored_bytes(obs, "2")]))
        signed = sign_stored(pairs, keys)
        assert len({s["signature"][0]["data"] for s in signed}) == n
        for i, (prov, (_, bodies)) in enumerate(zip(signed, pairs, strict=True)):
            assert prov["signature"][0]["sigFormat"] == JOSE_JSON
            assert verify_provenance(prov, bodies, keys), (n, i)
            assert not verify_provenance(prov, pairs[(i + 1) % n][1], keys)
            assert not verify_provenance(prov, [bodies[0], bodies[1].replace(b'"final"', b'"amended"')], keys)


def test_an_auditor_verifies_the_manifest_layouts_with_public_tools_only(keys: AuditKeys) -> None:
    """Offline, without huren: SHA-256 of each version's stored bytes (what a vread returns),
    RFC 8785 of the manifest, the RFC 9162 path fold for a batch, and the PEM public key."""
    import hashlib

    import rfc8785
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from engine.audit.provenance import sign_stored

    def b64url(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def manifest(prov: dict, bodies: list[bytes]) -> bytes:
        return rfc8785.dumps({"targets": [{"reference": t["reference"],
                                           "sha256": hashlib.sha256(b).hexdigest()}
                                          for t, b in zip(prov["target"], bodies, strict=True)]})

    def pem_of(kid: str) -> bytes:
        return next(k.pem for k in keys.public.values() if k.key_id == kid).encode()

    bodies = [_stored_bytes(PAT, "1"), _stored_bytes(OBS, "2")]
    [alone] = sign_stored([(_versioned_provenance((PAT, "1"), (OBS, "2")), bodies)], keys)
    header, protected, sig = _jws_parts(alone["signature"][0])
    assert header["cty"] == "huren-manifest+json" and header["alg"] == "EdDSA"
    load_pem_public_key(pem_of(header["kid"])).verify(
        sig, protected.encode() + b"." + b64url(manifest(alone, bodies)))

    batch = [([_stored_bytes(PAT, "1"), _stored_bytes({**OBS, "id": f"o{i}"}, "1")], i) for i in range(6)]
    signed = sign_stored([({**_versioned_provenance((PAT, "1"), ({**OBS, "id": f"o{i}"}, "1")), "id": f"p{i}"}, b)
                          for b, i in batch], keys)
    for prov, (bodies, _) in zip(signed, batch, strict=True):
        header, unprotected, protected, sig = _tree_parts(prov["signature"][0])
        assert header["cty"] == "huren-manifest-tree+json"
        path = (base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)) for x in unprotected["path"])
        r = root_from_inclusion_path(manifest(prov, bodies), unprotected["leaf"], unprotected["leaves"], path)
        payload = rfc8785.dumps({"leaves": unprotected["leaves"], "sha256-tree": b64url(r).decode()})
        load_pem_public_key(pem_of(header["kid"])).verify(sig, protected.encode() + b"." + b64url(payload))
