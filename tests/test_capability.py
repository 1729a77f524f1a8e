"""The CapabilityStatement: generated from what is registered, valid R4, public at GET /fhir/metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conformance.capability import (
    EVERYTHING,
    SMART_OAUTH_URIS,
    build_capability_statement,
    check_recognition,
    smart_security,
)
from conformance.validate import Validator
from engine.api.app import create_app
from engine.api.metadata import mounted_paths, operations_from_routes, registered_search_params
from engine.engine import Engine
from engine.settings import Settings

SP = "http://hl7.org/fhir/SearchParameter/"


@dataclass(frozen=True)
class Param:
    """A search parameter given as an object rather than a mapping (both are accepted)."""

    name: str
    type: str
    url: str
    target: tuple[str, ...] = ()


SEARCH_PARAMS: dict[str, list[Any]] = {
    "Patient": [
        {"name": "identifier", "type": "token", "url": SP + "Patient-identifier"},
        {"name": "name", "type": "string", "url": SP + "Patient-name"},
        {"name": "organization", "type": "reference", "url": SP + "Patient-organization", "target": ["Organization"]},
    ],
    "Observation": [
        {"name": "code", "type": "token", "url": SP + "clinical-code"},
        {"name": "date", "type": "date", "url": SP + "clinical-date"},
        Param("subject", "reference", SP + "Observation-subject", ("Device", "Group", "Location", "Patient")),
        Param("performer", "reference", SP + "Observation-performer", ("Organization", "Practitioner")),
    ],
    "DiagnosticReport": [
        {"name": "result", "type": "reference", "url": SP + "DiagnosticReport-result", "target": ["Observation"]},
        {"name": "patient", "type": "reference", "url": SP + "clinical-patient", "target": ["Patient"]},
    ],
}


@pytest.fixture
def statement(settings: Settings) -> dict[str, Any]:
    return build_capability_statement(
        settings.with_(base_url="https://fhir.funing.example.cn"),
        SEARCH_PARAMS,
        resource_types=["Patient", "Observation", "DiagnosticReport", "Organization"],
        extra_operations=[EVERYTHING, check_recognition(settings.with_(base_url="https://fhir.funing.example.cn"))],
        security=smart_security(settings.with_(base_url="https://fhir.funing.example.cn")),
        date=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    )


def resource(statement: dict[str, Any], rtype: str) -> dict[str, Any]:
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == rtype]
    return entry


def test_the_statement_is_valid_r4(statement: dict[str, Any]) -> None:
    Validator().validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert statement["format"] == ["application/fhir+json", "json"]
    assert statement["date"] == "2026-03-01T08:00:00Z"
    assert statement["software"]["name"] == "huren" and statement["software"]["version"]
    assert statement["implementation"]["url"] == "https://fhir.funing.example.cn/fhir"


def test_it_lists_exactly_the_registered_types_and_search_parameters(statement: dict[str, Any]) -> None:
    assert [r["type"] for r in statement["rest"][0]["resource"]] == [
        "DiagnosticReport", "Observation", "Organization", "Patient", "ServiceRequest"  # ServiceRequest: its operation
    ]
    observation = resource(statement, "Observation")
    assert [(p["name"], p["type"]) for p in observation["searchParam"]] == [
        ("code", "token"), ("date", "date"), ("performer", "reference"), ("subject", "reference")
    ]
    assert observation["searchParam"][3]["definition"] == SP + "Observation-subject"
    assert "searchParam" not in resource(statement, "Organization")  # readable, not searchable
    assert {i["code"] for i in observation["interaction"]} == {
        "read", "vread", "update", "delete", "history-instance", "create", "search-type"
    }
    assert observation["versioning"] == "versioned-update"
    assert observation["conditionalCreate"] is True
    assert [i["code"] for i in statement["rest"][0]["interaction"]] == ["transaction", "batch"]


def test_include_and_revinclude_follow_reference_parameters_and_their_targets(statement: dict[str, Any]) -> None:
    assert resource(statement, "Observation")["searchInclude"] == ["Observation:performer", "Observation:subject"]
    assert resource(statement, "Patient")["searchRevInclude"] == [
        "DiagnosticReport:patient", "Observation:subject"
    ]
    assert resource(statement, "Observation")["searchRevInclude"] == ["DiagnosticReport:result"]
    assert resource(statement, "Organization")["searchRevInclude"] == ["Observation:performer", "Patient:organization"]
    assert "searchInclude" not in resource(statement, "Organization")


def test_operations_everything_and_check_recognition(statement: dict[str, Any]) -> None:
    assert resource(statement, "Patient")["operation"][0] == {
        "name": "everything",
        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        "documentation": EVERYTHING.documentation,
    }
    (check,) = resource(statement, "ServiceRequest")["operation"]
    assert check["name"] == "check-recognition"
    assert check["definition"] == (
        "https://fhir.funing.example.cn/fhir/OperationDefinition/ServiceRequest-check-recognition"
    )


def test_smart_oauth_uris_are_under_the_public_base_url(statement: dict[str, Any]) -> None:
    security = statement["rest"][0]["security"]
    (oauth,) = [e for e in security["extension"] if e["url"] == SMART_OAUTH_URIS]
    assert {e["url"]: e["valueUri"] for e in oauth["extension"]} == {
        "token": "https://fhir.funing.example.cn/auth/token",
        "authorize": "https://fhir.funing.example.cn/auth/authorize",
        "introspect": "https://fhir.funing.example.cn/auth/introspect",
        "revoke": "https://fhir.funing.example.cn/auth/revoke",
    }
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"


def test_without_oauth_endpoints_the_statement_says_so_and_stays_valid(settings: Settings) -> None:
    bare = build_capability_statement(settings, {}, ["Patient"], [], {})
    assert "extension" not in bare["rest"][0]["security"]
    Validator().validate(bare)


def test_a_search_parameter_without_name_or_type_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="needs a name and a type"):
        build_capability_statement(settings, {"Patient": [{"name": "x"}]}, [], [], {})


def test_operations_are_read_from_the_mounted_routes(settings: Settings) -> None:
    ops = operations_from_routes(
        ["/fhir/metadata", "/fhir/Patient/{id}/$everything", "/fhir/ServiceRequest/$check-recognition",
         "/fhir/{type}/{id}", "/fhir/Observation/$lastn", "/fhir/Patient/$ihe-pix", "/auth/token"],
        settings,
    )
    assert {(o.resource_type, o.name, o.definition) for o in ops} == {
        ("Patient", "everything", EVERYTHING.definition),
        ("ServiceRequest", "check-recognition", check_recognition(settings).definition),
        ("Observation", "lastn", "http://hl7.org/fhir/OperationDefinition/Observation-lastn"),
        ("Patient", "ihe-pix", f"{settings.fhir_base_url}/OperationDefinition/Patient-ihe-pix"),
    }


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine))


def test_metadata_is_served_without_a_token_as_fhir_json(client: TestClient, engine: Engine) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"  # R4 http.html#mime-type (ffix40)
    body = response.json()
    engine.validator.validate(body)
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    assert body["implementation"]["url"] == engine.settings.fhir_base_url
    assert [r["type"] for r in body["rest"][0].get("resource", [])] == sorted(
        {*registered_search_params(),
         *(o.resource_type for o in operations_from_routes(mounted_paths(client.app), engine.settings))}
    )
    # only OAuth endpoints the app actually mounts are advertised; the token endpoint always is
    (oauth,) = body["rest"][0]["security"]["extension"]
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    assert uris["token"] == engine.settings.public_base_url + "/auth/token"
    app_paths = set(mounted_paths(client.app))
    assert "/auth/token" in app_paths and "/fhir/metadata" in app_paths
    assert all(u.removeprefix(engine.settings.public_base_url) in app_paths for u in uris.values())
    # built once, then served as stored bytes
    assert client.get("/fhir/metadata").content == response.content


def test_includes_by_reference_parameters_left_out_of_search_are_advertised(client: TestClient) -> None:
    """The shipped list leaves Observation.performer out of search (a 400), but ``_include`` by it
    reads the matched results themselves: the statement says both."""
    body = client.get("/fhir/metadata").json()
    observation = next(r for r in body["rest"][0]["resource"] if r["type"] == "Observation")
    assert "performer" not in {p["name"] for p in observation["searchParam"]}
    assert {"Observation:performer", "Observation:specimen", "Observation:subject"} <= set(observation["searchInclude"])
    report = next(r for r in body["rest"][0]["resource"] if r["type"] == "DiagnosticReport")
    assert "DiagnosticReport:result" in report["searchInclude"]
    specimen = next(r for r in body["rest"][0]["resource"] if r["type"] == "Specimen")
    assert "Observation:specimen" not in specimen.get("searchRevInclude", [])  # a revinclude needs rows
    # a report's results are indexed since labelmark27 (a result's label finds its reports): both ways
    assert "result" in {p["name"] for p in report["searchParam"]}
    assert "DiagnosticReport:result" in observation.get("searchRevInclude", [])


def test_metadata_accepts_json_formats_and_refuses_others(client: TestClient) -> None:
    assert client.get("/fhir/metadata", params={"_format": "application/fhir+json"}).status_code == 200
    response = client.get("/fhir/metadata", params={"_format": "xml"})
    assert response.status_code == 406
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
