"""The R4 validators are compiled from the definitions their type reaches, with the same verdicts (suite45a).

``R4Schema`` compiled each type's check from a document holding all ~860 R4 definitions (~2 MB the schema engine
reads into its own values first: ~47 ms a compile, ~16 ms from the ~70 a Patient reaches). The checks must be the
same: the same yes/no, the same explained errors at the same schema paths, valid and broken resources alike."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance import validate
from conformance.validate import R4Schema, _describe, load_schema

PATIENT = {"resourceType": "Patient", "id": "p1", "active": True, "gender": "female", "birthDate": "1980-01-01",
           "name": [{"family": "王", "given": ["小红"]}],
           "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "110101198001010029"}],
           "managingOrganization": {"reference": "Organization/o1"},
           "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">王小红</div>"}}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Hb"},
               "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-02T10:00:00+08:00",
               "valueQuantity": {"value": 132, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}
BROKEN = [("birthDate", "1980-13-01"), ("gender", "woman"), ("active", "yes"), ("status", "done"),
          ("subject", {"reference": "Medication/m1"}), ("managingOrganization", {"reference": "a\x01b"}),
          ("unknownElement", 1), ("name", []), ("code", None), ("effectiveDateTime", "2026-02-30"),
          ("text", {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script/></div>"})]


def _cases(resource: dict[str, Any]) -> list[dict[str, Any]]:
    out = [resource, {k: v for k, v in resource.items() if k != "status"}]
    for key, value in BROKEN:
        changed = copy.deepcopy(resource)
        changed[key] = value
        out.append(changed)
    return out


@pytest.fixture(scope="module")
def r4() -> R4Schema:
    return R4Schema(load_schema())  # a fresh one: its compiles are this module's


def test_a_types_check_is_compiled_from_the_definitions_it_reaches(r4: R4Schema,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[dict[str, Any]] = []
    compile_schema = validate.compile_schema

    def recording(schema: dict[str, Any], **kw: Any) -> Any:
        compiled.append(schema)
        return compile_schema(schema, **kw)

    monkeypatch.setattr(validate, "compile_schema", recording)
    r4.validator("Patient")
    r4.explaining("Patient")
    r4.validator_with("Patient", {"required": ["identifier"]}, {})
    assert len(compiled) == 3
    for schema in compiled:
        names = set(schema["definitions"])
        assert {"Patient", "Identifier", "HumanName", "Reference", "xhtml", "string"} <= names
        assert not names & {"Medication", "Observation", "Bundle", "MeasureReport"}  # what a Patient never reaches
        assert len(names) < len(r4.definitions) // 5


@pytest.mark.parametrize("resource", [PATIENT, OBSERVATION], ids=["Patient", "Observation"])
def test_the_reached_definitions_check_as_the_whole_document_does(r4: R4Schema, resource: dict[str, Any]) -> None:
    rtype = resource["resourceType"]
    whole = validate.compile_schema({"$schema": r4.dialect, "$ref": f"#/definitions/{rtype}",
                                     "definitions": r4.fast_definitions})
    whole_explaining = validate.compile_schema({"$schema": r4.dialect, "$ref": f"#/definitions/{rtype}",
                                                "definitions": r4.definitions}, explaining=True)
    verdicts = []
    for case in _cases(resource):
        for mine, theirs in ((r4.validator(rtype), whole), (r4.explaining(rtype), whole_explaining)):
            verdict = theirs.is_valid(case)
            assert mine.is_valid(case) == verdict, case
            verdicts.append(verdict)
            explained = [(_describe(e, rtype), list(e.schema_path)) for e in mine.iter_errors(case)]
            assert explained == [(_describe(e, rtype), list(e.schema_path)) for e in theirs.iter_errors(case)]
    assert True in verdicts and False in verdicts


# --- the token keys a start makes are used as made (suite45a) ---------------------------------------------------------


def test_a_key_made_now_is_used_as_made_and_one_found_is_read_and_checked(tmp_path, monkeypatch) -> None:
    """A new data folder's keys are made, written and used without reading the file back (an RSA key read back is
    checked whole, ~30 ms); the file holds that very key, and a second start reads it from the file."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from engine.auth import keys

    reads: list[bytes] = []
    load = serialization.load_pem_private_key

    def reading(data: bytes, password: Any = None, **kw: Any) -> Any:
        reads.append(data)
        return load(data, password, **kw)

    monkeypatch.setattr(keys.serialization, "load_pem_private_key", reading)
    made, created = keys.load_or_create_id_token_key(tmp_path)
    token_key, token_created = keys.load_or_create(tmp_path)
    assert created and token_created and reads == []
    for key in (made, token_key):
        stored = load(key.path.read_bytes(), None)
        assert stored.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()) == key.private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        assert oct(key.path.stat().st_mode & 0o777) == "0o600"
    signed = made.private.sign(b"id_token", padding.PKCS1v15(), hashes.SHA256())
    again, created_again = keys.load_or_create_id_token_key(tmp_path)
    assert not created_again and len(reads) == 1 and again.kid == made.kid
    again.public.verify(signed, b"id_token", padding.PKCS1v15(), hashes.SHA256())
    assert again.private.sign(b"id_token", padding.PKCS1v15(), hashes.SHA256()) == signed  # RS256: the same bytes
