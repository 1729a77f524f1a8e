"""Validation on the real write path: a bad resource sent over HTTP gets a 422 naming the element,
and nothing is stored; a bad entry fails the whole transaction Bundle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

FHIR = "application/fhir+json"


@pytest.fixture
def http(engine: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(engine)
        client.headers["Content-Type"] = FHIR
        yield client


def lab_result(pid: str = "pat-1", status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "血红蛋白"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-03-01T08:30:00+08:00",
        "performer": [{"reference": "Organization/FNXRMYY"}],
        "valueQuantity": {"value": 135, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    }


def stored_observations(http: TestClient) -> int:
    return http.get("/fhir/Observation", params={"_summary": "count"}).json()["total"]


def test_a_bad_observation_is_422_naming_each_element_and_nothing_is_stored(http: TestClient) -> None:
    bad = lab_result(status="done")
    del bad["performer"]
    response = http.post("/fhir/Observation", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(FHIR)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"]] == [["Observation.status"], ["Observation.performer"]]
    assert stored_observations(http) == 0
    assert http.post("/fhir/Observation", json=lab_result()).status_code == 201
    assert stored_observations(http) == 1


def test_an_update_that_breaks_the_rules_leaves_the_stored_version(http: TestClient) -> None:
    good = {**lab_result(), "id": "obs-1"}
    assert http.put("/fhir/Observation/obs-1", json=good).status_code in (200, 201)
    broken = {**good, "effectiveDateTime": "2026-02-30"}
    response = http.put("/fhir/Observation/obs-1", json=broken)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Observation.effectiveDateTime"]
    assert http.get("/fhir/Observation/obs-1").json()["effectiveDateTime"] == good["effectiveDateTime"]


def test_one_bad_entry_fails_the_whole_transaction(http: TestClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {**lab_result(), "id": "obs-a"}, "request": {"method": "PUT", "url": "Observation/obs-a"}},
            {"resource": {**lab_result(), "id": "obs-b", "subject": {"reference": "Group/g1"}},
             "request": {"method": "PUT", "url": "Observation/obs-b"}},
        ],
    }
    response = http.post("/fhir", json=bundle)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"][0].endswith("subject") for i in outcome["issue"]] == [True]
    assert stored_observations(http) == 0
