"""Provenance source signatures over the canonical stored resource(s)."""

from __future__ import annotations

import base64
import json

import pytest

from engine.audit.keys import AuditKeys, rotate_keys
from engine.audit.provenance import sign_provenance, verify_provenance
from engine.settings import Settings

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
