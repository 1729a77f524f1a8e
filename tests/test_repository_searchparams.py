"""Search parameters as data: the extraction script, the shipped JSON, and the FHIRPath subset."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from conformance.searchparams.extract import extract
from engine.repository.fhirpath import UnsupportedExpression, compile_expression, first_fields, parts_for_type
from engine.repository.indexing import Indexer, date_range
from engine.repository.searchparams import SearchParams, definitions, load, supported

REQUIRED_TYPES = ["Patient", "Practitioner", "Organization", "Encounter", "ServiceRequest", "Specimen", "Observation",
                  "DiagnosticReport", "ImagingStudy", "DocumentReference", "Condition", "AllergyIntolerance",
                  "DetectedIssue", "Flag", "AuditEvent", "Provenance", "MessageHeader"]


def _package(tmp_path: Path, files: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "hl7.fhir.r4.examples-4.0.1.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo("package/" + name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def test_extract_keeps_supported_parameters_and_says_what_it_leaves_out(tmp_path: Path, capsys: Any) -> None:
    base = "http://hl7.org/fhir/SearchParameter/"
    package = _package(tmp_path, {
        "SearchParameter-clinical-patient.json": {
            "resourceType": "SearchParameter", "url": base + "clinical-patient", "code": "patient", "type": "reference",
            "base": ["Observation", "CarePlan"], "target": ["Patient", "Group"],
            "description": "Multiple Resources: \n\n* [Observation](observation.html): The subject that is the patient",
            "expression": "CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient)"},
        "SearchParameter-Observation-value-quantity.json": {
            "resourceType": "SearchParameter", "url": base + "Observation-value-quantity", "code": "value-quantity",
            "type": "quantity", "base": ["Observation"], "description": "The value",
            "expression": "(Observation.value as Quantity) | (Observation.value as SampledData)"},
        "SearchParameter-Patient-deceased.json": {
            "resourceType": "SearchParameter", "url": base + "Patient-deceased", "code": "deceased", "type": "token",
            "base": ["Patient"], "expression": "Patient.deceased.exists() and Patient.deceased != false"},
        "SearchParameter-Observation-code-value-quantity.json": {
            "resourceType": "SearchParameter", "url": base + "Observation-code-value-quantity",
            "code": "code-value-quantity", "type": "composite", "base": ["Observation"]},
        "SearchParameter-Resource-id.json": {
            "resourceType": "SearchParameter", "url": base + "Resource-id", "code": "_id", "type": "token",
            "base": ["Resource"], "expression": "Resource.id", "description": "Logical id"},
        "CompartmentDefinition-patient.json": {
            "resourceType": "CompartmentDefinition", "code": "Patient",
            "resource": [{"code": "Observation", "param": ["patient"]}, {"code": "CarePlan", "param": ["patient"]}]},
    })
    data = extract(package)
    assert data["types"]["Observation"]["patient"] == {
        "type": "reference", "expression": "Observation.subject.where(resolve() is Patient)",
        "url": base + "clinical-patient", "documentation": "The subject that is the patient",
        "target": ["Group", "Patient"]}
    assert "value-quantity" in data["types"]["Observation"]
    assert "deceased" not in data["types"]["Patient"] and "code-value-quantity" not in data["types"]["Observation"]
    assert data["common"]["_id"]["expression"] == "Resource.id"
    assert data["compartment"]["Patient"] == {"Observation": ["patient"]}
    err = capsys.readouterr().err
    assert "Patient.deceased: unsupported FHIRPath" in err and "code-value-quantity: type composite" in err


def test_shipped_data_covers_the_required_resources_and_hot_paths() -> None:
    params = supported()
    for rtype in REQUIRED_TYPES:
        names = {p["name"] for p in params[rtype]}
        assert {"_id", "_lastUpdated"} <= names, rtype
    obs = {p["name"]: p for p in params["Observation"]}
    assert obs["identifier"]["type"] == "token" and obs["subject"]["type"] == "reference"
    assert obs["code"]["definition"] == "http://hl7.org/fhir/SearchParameter/clinical-code"
    assert obs["date"]["type"] == "date" and obs["value-quantity"]["type"] == "quantity"
    assert load().compartment_params("Observation") == ("subject", "performer")
    assert load().compartment_params("Patient") == ("link",)
    for rtype in load().types:  # every shipped expression compiles (the data and the code agree)
        for p in load().for_type(rtype).values():
            compile_expression(p.expression, None if p.expression.startswith("Resource") else rtype)


def test_fhirpath_subset() -> None:
    obs = {"resourceType": "Observation", "effectivePeriod": {"start": "2024"},
           "valueQuantity": {"value": 1}, "component": [{"valueString": "x"}, {"valueQuantity": {"value": 2}}],
           "performer": [{"reference": "Patient/p1"}, {"reference": "Practitioner/d1"}]}
    assert compile_expression("Observation.effective")(obs) == [{"start": "2024"}]
    assert compile_expression("(Observation.value as Quantity) | (Observation.component.value as Quantity)")(obs) == [
        {"value": 1}, {"value": 2}]
    assert compile_expression("Observation.value.as(string)")(obs) == []
    assert compile_expression("Observation.performer.where(resolve() is Patient)")(obs) == [{"reference": "Patient/p1"}]
    tele = {"telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "1"}]}
    assert compile_expression("Patient.telecom.where(system='email')")(tele) == [{"system": "email", "value": "a@b"}]
    assert compile_expression("Patient.name", "Patient")({"name": [{"family": "张"}]}) == [{"family": "张"}]
    for bad in ("Patient.extension('http://x')", "Patient.deceased.exists() and Patient.deceased != false",
                "Patient.name.first()"):
        with pytest.raises(UnsupportedExpression):
            compile_expression(bad)
    with pytest.raises(UnsupportedExpression):
        compile_expression("Observation.code", "Patient")
    assert parts_for_type("Condition.code | Observation.code | (Observation.value as Quantity)", "Observation") == (
        "Observation.code | (Observation.value as Quantity)")
    # a cast of a choice element names the concrete key: no valueQuantity, nothing to evaluate
    assert first_fields("Observation.code | (Observation.value as Quantity)") == frozenset({"code", "valueQuantity"})
    assert first_fields("Observation.effective") == frozenset({"effective"})


def test_index_rows_and_date_precision() -> None:
    assert date_range("2024-02") == (1706745600.0, 1709251200.0)
    assert date_range("2024-03-01T08:00:00+08:00") == (1709251200.0, 1709251201.0)
    with pytest.raises(ValueError):
        date_range("2024-13-01x")
    with_text = SearchParams(definitions(), {"text": {"Observation": ["code"]}})
    rows = Indexer(with_text, "https://huren.example/fhir").rows({
        "resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "subject": {"reference": "https://huren.example/fhir/Patient/p1"},
        "performer": [{"reference": "Practitioner/d1"}, {"identifier": {"system": "urn:staff", "value": "7"}}],
        "effectiveDateTime": "2024-03-01", "valueQuantity": {"value": 130, "code": "g/L"}})
    assert ("code", "http://loinc.org", "718-7") in rows.tokens and ("status", "", "final") in rows.tokens
    assert ("subject", "Patient", "p1") in rows.refs and ("performer", "Practitioner", "d1") in rows.refs
    assert ("performer:identifier", "urn:staff", "7") in rows.tokens
    assert ("code:text", "hemoglobin", "Hemoglobin") in rows.strings
    assert ("value-quantity", 130.0, "", "g/L") in rows.quantities
    assert rows.compartments == {"p1"}
    assert rows.sort["date"] == date_range("2024-03-01")[0]


def test_index_skipping_absent_paths_changes_no_rows() -> None:
    """The interpreter skips parameters whose first element is absent; that must never lose a row
    (and the compiled plans, which skip them by the resource's shape, give the same rows)."""
    params = load()
    fast = Indexer(params)
    full = Indexer(params)
    for rtype in ("Observation", "Condition", "Patient"):
        full._plans[rtype] = [(code, index, evaluate, None) for code, index, evaluate, _ in full._plan(rtype)]
    samples = [
        {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"},
         "valueQuantity": {"value": 1.5, "system": "http://unitsofmeasure.org", "code": "g/L"},
         "effectiveDateTime": "2024-03-01", "subject": {"reference": "Patient/p1"},
         "component": [{"code": {"text": "a"}, "valueCodeableConcept": {"text": "pos"}},
                       {"code": {"text": "b"}, "valueQuantity": {"value": 2}}]},
        {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},
         "valueString": "Hello", "effectivePeriod": {"start": "2024"}},
        {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "x"},
         "valueCodeableConcept": {"coding": [{"system": "s", "code": "c", "display": "Dé"}], "text": "T"},
         "valuePeriod": {"start": "2024-01-01"}},
        {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
         "onsetAge": {"value": 3, "unit": "a"}, "abatementDateTime": "2024-05"},
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "王", "given": ["建国"]}],
         "deceasedBoolean": False, "birthDate": "1985-04-12"},
    ]
    for resource in samples:
        assert fast.interpret(resource) == full.interpret(resource) == fast.rows(resource), resource["id"]
