"""A transaction's conditional update whose body names another id than the one matched is a 400.

``PUT Observation?identifier=urn:x|A1`` over HTTP with a body of id ``zzz`` while the one match is
``m1`` answers 400 (R4 conditional update: "one match, resource id provided but does not match
resource found"), but the same entry in a transaction or batch Bundle wrote the body over ``m1``
(200, a new version of a record the client did not name). Now the Bundle entry is refused the same
way and nothing is written; a body without an id, or with the matched one, still updates the
match. Real HTTP through FastAPI, the real store (SQLite and mongomock).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_fhir_api import eng

__all__ = ["eng"]  # the FHIR API tests' engine fixture (SQLite and mongomock), used by name

URL = "Observation?identifier=urn:x|A1"


def _obs(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "identifier": [{"system": "urn:x", "value": "A1"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Organization/org"}], "valueQuantity": {"value": 5.5}, **extra}


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        for body in ({"resourceType": "Organization", "id": "org", "name": "阜宁县人民医院"},
                     {"resourceType": "Patient", "id": "p1", "name": [{"text": "张三"}]}, _obs(id="m1")):
            assert client.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body).status_code == 201
        yield client


def _bundle(kind: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": resource, "request": {"method": "PUT", "url": URL}}]}


def test_a_bundle_conditional_update_naming_another_id_is_refused(http: TestClient) -> None:
    over_http = http.put(f"/fhir/{URL}", json=_obs(id="zzz", valueQuantity={"value": 9.9}))
    assert over_http.status_code == 400
    r = http.post("/fhir", json=_bundle("transaction", _obs(id="zzz", valueQuantity={"value": 9.9})))
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and "zzz" in r.text
    r = http.post("/fhir", json=_bundle("batch", _obs(id="zzz", valueQuantity={"value": 9.9})))
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("400"), r.text
    stored = http.get("/fhir/Observation/m1").json()
    assert stored["meta"]["versionId"] == "1" and stored["valueQuantity"]["value"] == 5.5
    assert http.get("/fhir/Observation/zzz").status_code == 404
    # neighbours: no id, or the matched id, update the match
    for n, body in enumerate((_obs(valueQuantity={"value": 6.1}), _obs(id="m1", valueQuantity={"value": 6.2}))):
        r = http.post("/fhir", json=_bundle("transaction", body))
        assert r.status_code == 200, r.text
        assert r.json()["entry"][0]["response"]["location"] == f"Observation/m1/_history/{n + 2}"
    assert http.get("/fhir/Observation/m1").json()["valueQuantity"]["value"] == 6.2
