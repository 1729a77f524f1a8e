"""The ``ne`` prefix compares the resource's value: a resource without one is not "not equal".

A clinician asking for patients whose birth date is not in 1990 (``birthdate=ne1990``) or for
results whose value is not 5 (``value-quantity=ne5``) was also given every patient with no birth
date recorded and every result with no number (a text result): R4's table reads ``ne`` as "the
value in the resource is not equal to (its range not wholly within) the searched one", which
needs a value; only the token modifier ``:not`` takes resources without the value in, and it still
does. And a quantity searched as ``NaN`` or ``Infinity`` (which Python's Decimal reads) is a 400
naming it, not an empty answer. Over HTTP through FastAPI with a system client's token, on SQLite and mongomock.
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

LOINC = "http://loinc.org"


def _obs(oid: str, **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "2345-7"}]}, "subject": {"reference": "Patient/p1990"},
            "effectiveDateTime": "2026-09-20T08:00:00+08:00", "performer": [{"reference": "Organization/org"}],
            **value}


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        for body in (
            {"resourceType": "Organization", "id": "org", "name": "阜宁县人民医院"},
            {"resourceType": "Patient", "id": "p1990", "name": [{"text": "张三"}], "birthDate": "1990-01-01"},
            {"resourceType": "Patient", "id": "p1992", "name": [{"text": "李四"}], "birthDate": "1992-11-20"},
            {"resourceType": "Patient", "id": "p-none", "name": [{"text": "王五"}]},  # no birth date recorded
            _obs("o5", valueQuantity={"value": 5, "unit": "mmol/L"}),
            _obs("o7", valueQuantity={"value": 7.2, "unit": "mmol/L"}),
            _obs("o-text", valueString="阴性"),  # no number
        ):
            r = client.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body)
            assert r.status_code == 201, r.text
        yield client


def _ids(http: TestClient, query: str) -> list[str]:
    r = http.get(query)
    assert r.status_code == 200, r.text
    bundle = r.json()
    ids = sorted(e["resource"]["id"] for e in bundle.get("entry", []))
    assert bundle["total"] == len(ids)
    return ids


def test_ne_needs_a_value_in_the_resource_and_not_still_takes_none(http: TestClient) -> None:
    assert _ids(http, "/fhir/Patient?birthdate=ne1990") == ["p1992"]
    assert _ids(http, "/fhir/Patient?birthdate=ne1990-01-01") == ["p1992"]
    assert _ids(http, "/fhir/Observation?value-quantity=ne5") == ["o7"]
    assert http.get("/fhir/Observation?value-quantity=ne5&_summary=count").json()["total"] == 1
    # neighbours: the token :not modifier does take resources without the value (R4 says so)
    assert _ids(http, "/fhir/Patient?gender:not=male") == ["p-none", "p1990", "p1992"]
    assert _ids(http, "/fhir/Patient?birthdate:missing=true") == ["p-none"]
    assert _ids(http, "/fhir/Patient?birthdate=eq1990") == ["p1990"]
    assert _ids(http, "/fhir/Patient?birthdate=gt1990") == ["p1992"]
    assert _ids(http, "/fhir/Observation?value-quantity=gt4") == ["o5", "o7"]
    # every resource has a _lastUpdated: ne of a year long past is all of them
    assert _ids(http, "/fhir/Patient?_lastUpdated=ne2000") == ["p-none", "p1990", "p1992"]
    r = http.get("/fhir/Patient?birthdate=ne1990,1992")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    # NaN and Infinity are no FHIR decimals: a 400 naming the value, not an empty answer
    for value in ("NaN", "ltInfinity", "ne-Infinity", "sNaN"):
        r = http.get("/fhir/Observation", params={"value-quantity": value})
        assert r.status_code == 400 and "is not a number" in r.text, (value, r.text)
