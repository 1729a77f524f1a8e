"""Bad input gets a clean 4xx OperationOutcome, never a 500, and nothing is stored.

Each case was a 500 or a silent accept before: serialiser recursion on deeply nested extensions,
integer overflow in the store on huge offsets, a 10 MiB string, a reference to the wrong type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.api.limits import json_depth_exceeds
from engine.engine import Engine
from tests.module_store import module_sqlite_eng  # noqa: F401 -- a fixture

FHIR = "application/fhir+json"


@pytest.fixture
def http(engine: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = "Bearer " + client_token(engine, "system/*.cruds")
        client.headers["Content-Type"] = FHIR
        yield client


def outcome_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(FHIR)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


def patients(http: TestClient) -> int:
    return http.get("/fhir/Patient", params={"_summary": "count"}).json()["total"]


def nested_extensions(depth: int) -> dict[str, Any]:
    ext: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        ext = {"url": "http://example.org/nest", "extension": [ext]}
    return {"resourceType": "Patient", "extension": [ext]}


@pytest.mark.parametrize("depth", [126, 400])
def test_deeply_nested_extensions_are_a_400_and_nothing_is_stored(http: TestClient, depth: int) -> None:
    r = http.post("/fhir/Patient", json=nested_extensions(depth))
    assert "nested deeper than 100" in outcome_of(r, 400)["issue"][0]["diagnostics"]
    assert patients(http) == 0
    # a reasonably nested resource still goes through
    assert http.post("/fhir/Patient", json=nested_extensions(20)).status_code == 201


def test_depth_check_ignores_brackets_inside_strings() -> None:
    assert not json_depth_exceeds(b'{"a": "' + b"[" * 500 + b'"}', 10)
    assert not json_depth_exceeds(b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[["}', 5)
    assert json_depth_exceeds(b"[" * 11 + b"]" * 11, 10)
    assert not json_depth_exceeds(b"[" * 10 + b"]" * 10, 10)
    assert not json_depth_exceeds(b"[" + b"[[]]," * 50 + b"[]]", 3)


def test_a_body_over_the_limit_is_413(settings: Any, client_token: Any) -> None:
    with Engine(settings.with_(max_request_bytes=4096)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + client_token(engine)
        big = {"resourceType": "Patient", "name": [{"text": "x" * 5000}]}
        r = http.post("/fhir/Patient", json=big, headers={"Content-Type": FHIR})
        assert "larger than 4,096 bytes" in outcome_of(r, 413)["issue"][0]["diagnostics"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes actually received count
            yield b'{"resourceType": "Patient", "name": [{"text": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}]}'

        r = http.post("/fhir/Patient", content=chunks(), headers={"Content-Type": FHIR})
        outcome_of(r, 413)
        assert http.get("/fhir/Patient", params={"_summary": "count"}).json()["total"] == 0


def test_a_string_over_one_mebibyte_is_422(http: TestClient) -> None:
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "张" * (1024 * 1024 + 1)}]})
    issue = outcome_of(r, 422)["issue"][0]
    assert issue["expression"] == ["Patient.name[0].text"] and "1 MiB" in issue["diagnostics"]
    assert patients(http) == 0


def test_ten_mebibytes_are_refused_before_parsing(http: TestClient) -> None:
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "x" * (10 * 1024 * 1024)}]})
    outcome_of(r, 413)
    assert patients(http) == 0


def test_a_reference_to_the_wrong_resource_type_is_422(http: TestClient) -> None:
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "managingOrganization": {"reference": "Patient/p1"}})
    issue = outcome_of(r, 422)["issue"][0]
    assert issue["expression"] == ["Patient.managingOrganization.reference"]
    assert "must point at Organization" in issue["diagnostics"]
    # choice elements and arrays are narrowed too; the right type is accepted
    r = http.post("/fhir/Observation", json={
        "resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-01-01", "performer": [{"reference": "Medication/m1"}], "valueString": "x"})
    assert outcome_of(r, 422)["issue"][0]["expression"] == ["Observation.performer[0].reference"]
    assert patients(http) == 0
    # an absolute RESTful URL names its type too, with or without a version
    for url in ("https://fhir.example.cn/fhir/Patient/p1", "http://hosp.example/r4/base/Encounter/e1/_history/2"):
        r = http.post("/fhir/Patient", json={"resourceType": "Patient", "managingOrganization": {"reference": url}})
        issue = outcome_of(r, 422)["issue"][0]
        assert issue["expression"] == ["Patient.managingOrganization.reference"], url
        assert "must point at Organization" in issue["diagnostics"]
    assert patients(http) == 0
    ok = {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/o1"},
          "generalPractitioner": [{"reference": "Practitioner/d1"}]}
    assert http.post("/fhir/Patient", json=ok).status_code == 201
    # absolute URLs of the right type, or of no RESTful shape at all, keep being accepted
    for url in ("https://fhir.example.cn/fhir/Organization/o1", "https://fhir.example.cn/fhir/Organization/o1/_history/4",
                "https://registry.example.cn/orgs?code=4403", "https://registry.example.cn/Patient"):
        ok = {"resourceType": "Patient", "managingOrganization": {"reference": url}}
        assert http.post("/fhir/Patient", json=ok).status_code == 201, url


HUGE = "393604153575934072455168"


@pytest.mark.parametrize("path", [
    f"/admin/quarantine?_offset={HUGE}",
    "/audit/checkpoints?since=18675331157364503893045141475164160",
    f"/audit/proof/inclusion?leaf={HUGE}",
    f"/audit/proof/consistency?first=1&second={HUGE}",
    f"/fhir/Patient?_offset={HUGE}",
    f"/fhir/Patient?_count={HUGE}",
    "/fhir/Patient?_count=%C2%B2",
    f"/reports/duplicates?_offset={HUGE}",
])
def test_huge_integers_in_queries_are_400_not_500(module_sqlite_eng: Engine, client_token: Any,  # noqa: F811
                                                  path: str) -> None:
    token = client_token(module_sqlite_eng, "system/*.cruds system/AuditEvent.rs system/DetectedIssue.rs", "auditor")
    with TestClient(create_app(module_sqlite_eng), raise_server_exceptions=False) as http:  # (reads: the module's engine)
        outcome_of(http.get(path, headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR}), 400)


def test_huge_version_and_etag_are_4xx(http: TestClient) -> None:
    r = http.post("/fhir/Patient", json={"resourceType": "Patient"})
    rid = r.json()["id"]
    outcome_of(http.get(f"/fhir/Patient/{rid}/_history/{HUGE}"), 404)
    r = http.put(f"/fhir/Patient/{rid}", json={"resourceType": "Patient", "id": rid},
                 headers={"If-Match": f'W/"{HUGE}"'})
    outcome_of(r, 400)
