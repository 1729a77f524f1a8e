"""Validation of resources before they are stored: R4 structure plus huren's rules, 422 naming the element.

Fixtures under tests/fixtures/r4/ are unmodified examples from the FHIR R4 specification (npm
``hl7.fhir.r4.examples@4.0.1``, CC0).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.profiles import ProfileError
from conformance.validate import Validator, load_schema
from engine.errors import Unprocessable
from engine.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "r4"


def example(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def issues_of(validator: Validator, resource: Any, status: int = 422) -> list[dict[str, Any]]:
    """``status``: 400 for what FHIR's formats cannot carry -- a control character, a narrative that is not one
    (http43) -- 422 for the rest."""
    with pytest.raises(Unprocessable) as caught:
        validator.validate(resource)
    assert caught.value.status == status
    outcome = caught.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(i["severity"] == "error" and i["diagnostics"] for i in outcome["issue"])
    # the OperationOutcome is itself a valid R4 resource
    validator.validate(outcome)
    return outcome["issue"]


def paths_of(validator: Validator, resource: Any, status: int = 422) -> list[str]:
    return [i["expression"][0] for i in issues_of(validator, resource, status)]


def lab_result() -> dict[str, Any]:
    """A lab result the way huren stores it: everything its rules ask for."""
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": "2026-03-01T08:30:00+08:00",
        "performer": [{"reference": "Organization/FNXRMYY"}],
        "valueQuantity": {"value": 135, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    }


# --- official examples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Observation-f001",
        "Patient-f001",
        "Patient-example",
        "DiagnosticReport-f201",
        "ServiceRequest-lipid",
        "Bundle-bundle-transaction",
        "Specimen-101",
        "ImagingStudy-example",
        "Condition-f201",
        "AllergyIntolerance-example",
    ],
)
def test_examples_from_the_r4_specification_pass(validator: Validator, name: str) -> None:
    validator.validate(example(name))
    assert validator.is_valid(example(name))


def test_a_vital_sign_needs_no_performer_but_a_result_that_can_enter_recognition_does(validator: Validator) -> None:
    bmi = example("Observation-bmi")
    assert "performer" not in bmi and bmi["category"][0]["coding"][0]["code"] == "vital-signs"
    validator.validate(bmi)  # an R4 vital sign: R4 structure and a Patient subject are enough
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    as_lab = {**bmi, "category": [{"coding": [{"system": category, "code": "laboratory"}]}]}
    without_category = {k: v for k, v in bmi.items() if k != "category"}
    for result in (as_lab, without_category):
        issues = issues_of(validator, result)
        assert [i["expression"] for i in issues] == [["Observation.performer"]]
        assert issues[0]["code"] == "required"
        assert "required by huren" in issues[0]["diagnostics"]
    del bmi["subject"]  # every Observation still needs its patient
    assert [i["expression"] for i in issues_of(validator, bmi)] == [["Observation.subject"]]


def test_the_lab_result_shape_passes(validator: Validator) -> None:
    validator.validate(lab_result())


# --- structure errors name the element ---------------------------------------------------------


def _set(path: str, value: Any) -> Any:
    def mutate(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = resource
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (_set("status", "done"), "Observation.status", "not one of the allowed codes"),
        (_set("code", _DELETE), "Observation.code", "required by the FHIR R4 definition"),
        (_set("colour", "red"), "Observation.colour", "unknown element"),
        (_set("id", "obs 1"), "Observation.id", "not a valid id"),
        (_set("id", "x" * 65), "Observation.id", "not a valid id"),
        (_set("subject.reference", "Patient pat-1"), "Observation.subject.reference", "not a valid reference"),
        (_set("subject.reference", "Patiens/pat-1"), "Observation.subject.reference", "not a valid reference"),
        (_set("subject.reference", "urn:uuid:NOT-A-UUID"), "Observation.subject.reference", "not a valid reference"),
        (_set("performer.0.reference", "Organization/"), "Observation.performer[0].reference", "not a valid reference"),
        (_set("effectiveDateTime", "2026-02-29"), "Observation.effectiveDateTime", "a day that does not exist"),
        (_set("effectiveDateTime", "2026-04-31T08:00:00Z"), "Observation.effectiveDateTime", "does not exist"),
        (_set("effectiveDateTime", "2026-03-01T08:30:00"), "Observation.effectiveDateTime", "time zone"),
        (_set("effectiveDateTime", "20260301"), "Observation.effectiveDateTime", "not a valid dateTime"),
        (_set("issued", "2026-03-01"), "Observation.issued", "not a valid instant"),
        (_set("valueQuantity.value", "135"), "Observation.valueQuantity.value", "not of type number"),
        (_set("valueQuantity.code", "g /  L"), "Observation.valueQuantity.code", "not a valid code"),
        (_set("code.coding.0.system", "http://loinc .org"), "Observation.code.coding[0].system", "not a valid uri"),
        (_set("code.coding.0.display", ""), "Observation.code.coding[0].display", "must not be empty"),
        (_set("identifier", []), "Observation.identifier", "must not be empty"),
        (_set("subject", "Patient/pat-1"), "Observation.subject", "not of type object"),
    ],
)
def test_a_broken_observation_is_rejected_naming_the_element(
    validator: Validator, mutate: Any, path: str, words: str
) -> None:
    resource = lab_result()
    mutate(resource)
    issues = issues_of(validator, resource)
    assert [i["expression"] for i in issues] == [[path]], issues
    assert words in issues[0]["diagnostics"]
    assert issues[0]["diagnostics"].startswith(path)


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"valueString": "high"}, "Observation.value[x]"),
        ({"effectivePeriod": {"start": "2026-03-01"}}, "Observation.effective[x]"),
    ],
)
def test_only_one_choice_of_a_choice_element(validator: Validator, extra: dict[str, Any], path: str) -> None:
    resource = lab_result()
    resource.update(extra)
    issues = issues_of(validator, resource)
    assert [i["expression"] for i in issues] == [[path]]
    assert "only one" in issues[0]["diagnostics"]


def test_choice_names_sharing_a_prefix_are_still_one_group(validator: Validator) -> None:
    patient = {"resourceType": "Patient", "deceasedBoolean": False, "deceasedDateTime": "2026-03-01"}
    assert paths_of(validator, patient) == ["Patient.deceased[x]"]
    patient = {"resourceType": "Patient",
               "extension": [{"url": "http://example.cn/ext", "valueDate": "2026-03-01", "valueDateTime": "2026-03-01"}]}
    assert paths_of(validator, patient) == ["Patient.extension[0].value[x]"]
    resource = lab_result()
    resource["component"] = [{"code": {"text": "收缩压"}, "valueString": "120", "valueInteger": 120}]
    assert paths_of(validator, resource) == ["Observation.component[0].value[x]"]


def test_every_problem_gets_its_own_issue(validator: Validator) -> None:
    resource = lab_result()
    resource["status"] = "done"
    resource["subject"]["reference"] = "Group/g1"
    del resource["effectiveDateTime"]
    resource["valueQuantity"]["value"] = "high"
    paths = paths_of(validator, resource)
    assert sorted(paths) == sorted(
        ["Observation.status", "Observation.valueQuantity.value", "Observation.effective[x]", "Observation.subject"]
    )


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("subject", {"reference": "Group/g1"}),
        ("subject", {"identifier": {"system": "urn:oid:2.16.156", "value": "110101199003074258"}}),
    ],
)
def test_results_must_belong_to_a_patient(validator: Validator, element: str, value: Any) -> None:
    resource = lab_result()
    resource[element] = value
    issues = issues_of(validator, resource)
    assert [i["expression"] for i in issues] == [["Observation.subject"]]
    assert issues[0]["code"] == "invariant"
    assert "Patient" in issues[0]["diagnostics"]


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/pat-1",
        "Patient/pat-1/_history/3",
        "urn:uuid:8f1c6a36-5e0e-4b8a-9f59-3c4a3b0d2f11",
        "https://fhir.example.cn/fhir/Patient/pat-1",
        "Patient?identifier=urn:oid:2.16.156.10011.1.1|110101199003074258",
    ],
)
def test_allowed_reference_shapes(validator: Validator, reference: str) -> None:
    resource = lab_result()
    resource["subject"] = {"reference": reference}
    validator.validate(resource)


@pytest.mark.parametrize("date", ["2024-02-29", "2000-02-29", "2026", "2026-03", "2026-03-01T23:59:60+08:00"])
def test_calendar_dates_that_exist_pass(validator: Validator, date: str) -> None:
    resource = lab_result()
    resource["effectiveDateTime"] = date
    validator.validate(resource)


@pytest.mark.parametrize("date", ["1900-02-29", "2026-02-29", "2026-06-31", "2026-13-01", "2026-00"])
def test_calendar_dates_that_do_not_exist_fail(validator: Validator, date: str) -> None:
    resource = lab_result()
    resource["effectiveDateTime"] = date
    assert paths_of(validator, resource) == ["Observation.effectiveDateTime"]


def test_chinese_text_with_full_width_and_no_break_spaces_is_a_valid_string(validator: Validator) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "pat-1",
        "name": [{"text": "欧阳\u3000娜娜", "family": "欧阳", "given": ["娜娜\u00a0"]}],
        "address": [{"text": "江苏省盐城市阜宁县\u3000阜城街道"}],
    }
    validator.validate(patient)
    patient["name"][0]["text"] = "\u3000"  # only a full-width space: still a non-empty FHIR string
    validator.validate(patient)
    patient["name"][0]["family"] = "\x0b"  # a vertical tab is not allowed in FHIR strings (400 since http43)
    assert paths_of(validator, patient, 400) == ["Patient.name[0].family"]


@pytest.mark.parametrize(("value", "ok"), [(2, True), (1.5, False), (2147483648, False)])
def test_integers_must_be_integers(validator: Validator, value: Any, ok: bool) -> None:
    patient = {"resourceType": "Patient", "id": "twin", "multipleBirthInteger": value}
    assert validator.is_valid(patient) is ok
    if not ok:
        assert paths_of(validator, patient) == ["Patient.multipleBirthInteger"]


def test_narrative_div_must_be_xhtml(validator: Validator) -> None:
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": "plain text"}}
    assert paths_of(validator, patient, 400) == ["Patient.text.div"]  # (400 since http43: no narrative)
    patient["text"]["div"] = '<div xmlns="http://www.w3.org/1999/xhtml">王小明</div>'
    validator.validate(patient)


# --- nested resources -------------------------------------------------------------------------


def test_errors_inside_a_bundle_entry_name_the_entry(validator: Validator) -> None:
    broken = lab_result()
    broken["status"] = "done"
    del broken["performer"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:8f1c6a36-5e0e-4b8a-9f59-3c4a3b0d2f11", "resource": lab_result(),
             "request": {"method": "PUT", "url": "Observation/obs-1"}},
            {"resource": broken, "request": {"method": "PUT", "url": "Observation/obs-2"}},
            {"resource": {"resourceType": "Observatoin"}, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    assert paths_of(validator, bundle) == [
        "Bundle.entry[1].resource.status",
        "Bundle.entry[1].resource.performer",
        "Bundle.entry[2].resource.resourceType",
    ]


def test_errors_inside_a_contained_resource_name_it_and_huren_rules_do_not_apply(validator: Validator) -> None:
    request = example("ServiceRequest-lipid")
    contained = request["contained"][0]
    assert contained["resourceType"] == "Observation" and "performer" not in contained
    validator.validate(request)  # a contained fragment needs no performer
    contained["status"] = "done"
    assert paths_of(validator, request) == ["ServiceRequest.contained[0].status"]


def test_errors_inside_parameters_name_the_part(validator: Validator) -> None:
    broken = lab_result()
    broken["status"] = "done"
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "order", "resource": lab_result()},
            {"name": "context", "part": [{"name": "prior", "resource": broken}]},
        ],
    }
    assert paths_of(validator, parameters) == ["Parameters.parameter[1].part[0].resource.status"]


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ({"resourceType": "Observatoin", "status": "final"}, "resourceType"),
        ({"status": "final"}, "resourceType"),
    ],
)
def test_unknown_or_missing_resource_type(validator: Validator, resource: dict[str, Any], path: str) -> None:
    assert paths_of(validator, resource) == [path]


@pytest.mark.parametrize("not_a_resource", [[], "Observation", None, 3])
def test_non_objects_are_rejected(validator: Validator, not_a_resource: Any) -> None:
    with pytest.raises(Unprocessable) as caught:
        validator.validate(not_a_resource)
    assert "JSON object" in caught.value.diagnostics


def test_validation_does_not_change_the_resource(validator: Validator) -> None:
    resource = lab_result()
    resource["status"] = "done"
    before = copy.deepcopy(resource)
    with pytest.raises(Unprocessable):
        validator.validate(resource)
    assert resource == before


# --- the schema and the profiles --------------------------------------------------------------


def test_the_shipped_schema_is_r4_with_4_0_1() -> None:
    schema = load_schema()
    definitions = schema["definitions"]
    assert "4.0.1" in definitions["CapabilityStatement"]["properties"]["fhirVersion"]["enum"]
    assert definitions["id"]["pattern"] == "^[A-Za-z0-9\\-\\.]{1,64}$"
    assert len(schema["discriminator"]["mapping"]) == 146  # every R4 resource type


def test_profiles_are_data_and_a_site_can_ship_its_own(tmp_path: Path) -> None:
    (tmp_path / "Patient.yaml").write_text(
        "resourceType: Patient\nrequired:\n  identifier: the institution's MRN links records\n", encoding="utf-8"
    )
    strict = Validator(profiles_dir=tmp_path)
    assert set(strict.profiles) == {"Patient"}
    issues = issues_of(strict, {"resourceType": "Patient", "id": "p"})
    assert issues[0]["expression"] == ["Patient.identifier"]
    assert "MRN" in issues[0]["diagnostics"]
    strict.validate(example("Observation-bmi"))  # no Observation profile in this folder


def test_a_site_folder_replaces_a_shipped_profile(settings: Settings, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "profiles").mkdir(parents=True)
    (site / "profiles" / "Observation.yaml").write_text(
        "resourceType: Observation\nrequired:\n  status: results are released by status\n"
        "  method: this community records the analyser method (OBX-17)\n",
        encoding="utf-8",
    )
    validator = Validator.from_settings(settings.with_(site=site))
    resource = lab_result()
    del resource["performer"]  # the shipped rule is replaced, not added to
    issues = issues_of(validator, resource)
    assert [i["expression"] for i in issues] == [["Observation.method"]]
    assert "OBX-17" in issues[0]["diagnostics"]
    assert "DiagnosticReport" in validator.profiles  # other shipped rules stay
    assert Validator.from_settings(settings).profiles.keys() == Validator().profiles.keys()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("resourceType: Observatoin\n", "resourceType: 'Observatoin' is not an R4 resource type"),
        ("resourceType: Observation\nrequired:\n  colour: why\n", "required.colour: Observation has no element"),
        ("resourceType: Observation\nrequired:\n  status: ''\n", "required.status: give the reason"),
        ("resourceType: Observation\nrequired: [status]\n", "required: must map element names"),
        ("resourceType: Observation\nrules:\n  - element: subject\n", "rules[0]: needs exactly the keys"),
        ("resourceType: Observation\nrules:\n  - {element: subject, schema: {type: 5}, message: m}\n",
         "rules[0].schema: not a valid JSON schema"),
        ("resourceType: Observation\nextra: 1\n", "unknown keys ['extra']"),
        ("resourceType: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_malformed_profile_names_the_file_and_field(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "Observation.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        Validator(profiles_dir=tmp_path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)
