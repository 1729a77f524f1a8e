"""probesec26: what a narrowed SMART scope reaches indirectly -- _include, _revinclude,
$everything, Bundle GET entries, chained parameters -- for a resident's token granted only
patient/Observation.rs (or .s) through the real standalone launch.

scopes-and-launch-context.html (SMART v2): a scope grants the named interactions on the named
type only; "r" read, "s" search. A resource of another type must not come back because the
request reached it from an Observation.
"""

from __future__ import annotations

import json

import pytest

from tests.test_probesec26_smart import _code
from tests.test_resident_launch import app, bearer, exchange, http, people

__all__ = ["app", "http", "people"]


OBS = {"resourceType": "Observation", "id": "obs-z", "status": "final",
       "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                 "code": "vital-signs"}]}],
       "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
       "subject": {"reference": "Patient/fn-zhang"}, "effectiveDateTime": "2026-11-01T08:00:00+08:00",
       "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
COND = {"resourceType": "Condition", "id": "cond-z", "subject": {"reference": "Patient/fn-zhang"},
        "code": {"text": "高血压"}, "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}}


@pytest.fixture
def obs_only(http, engine):
    sysh = bearer(engine.auth.issue_system_token("his-a", "system/*.cruds"))
    for res in (OBS, COND):
        r = http.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res, headers=sysh)
        assert r.status_code in (200, 201), r.text
    code, verifier, _ = _code(http, engine, scope="launch/patient patient/Observation.rs")
    tok = exchange(http, code, verifier).json()
    assert tok["scope"] == "launch/patient patient/Observation.rs"
    return bearer(tok["access_token"])


def _types(r) -> set[str]:
    assert r.status_code == 200, r.text
    return {e["resource"]["resourceType"] for e in r.json().get("entry", [])}


def test_own_observation_is_read_and_searched(http, obs_only):
    assert http.get("/fhir/Observation/obs-z", headers=obs_only).status_code == 200
    assert _types(http.get("/fhir/Observation?patient=fn-zhang", headers=obs_only)) == {"Observation"}


@pytest.mark.parametrize("query", [
    "/fhir/Observation?patient=fn-zhang&_include=Observation:subject",
    "/fhir/Observation?patient=fn-zhang&_include=Observation:patient",
    "/fhir/Observation?patient=fn-zhang&_include=*",
    "/fhir/Observation?patient=fn-zhang&_revinclude=Provenance:target",
    "/fhir/Observation?subject:Patient.name=张三",
])
def test_include_does_not_carry_types_out_of_scope(http, obs_only, query):
    r = http.get(query, headers=obs_only)
    assert r.status_code in (200, 400, 403), r.text
    if r.status_code == 200:
        assert _types(r) <= {"Observation", "OperationOutcome"}, query


def test_everything_with_an_observation_scope_returns_no_other_type(http, obs_only):
    r = http.get("/fhir/Patient/fn-zhang/$everything", headers=obs_only)
    assert r.status_code in (200, 403), r.text
    if r.status_code == 200:
        assert _types(r) <= {"Observation"}, json.dumps(r.json())[:400]


def test_bundle_get_entries_keep_to_the_scope(http, obs_only):
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Condition/cond-z"}},
        {"request": {"method": "GET", "url": "Patient/fn-zhang"}},
        {"request": {"method": "GET", "url": "Condition?patient=fn-zhang"}},
        {"request": {"method": "GET", "url": "Observation/obs-z"}}]}
    r = http.post("/fhir", json=bundle, headers=obs_only)
    # either the batch is refused whole (403, nothing run) or entry by entry; never the data
    assert r.status_code in (200, 403), r.text
    assert "高血压" not in r.text and "张三" not in r.text and "1990-01-01" not in r.text
    if r.status_code == 200:
        entries = r.json()["entry"]
        assert [e["response"]["status"][:3] for e in entries][:3] == ["403", "403", "403"], entries
        assert entries[3]["response"]["status"].startswith("200")


def test_search_only_scope_does_not_read(http, engine):
    code, verifier, _ = _code(http, engine, scope="launch/patient patient/Observation.s")
    h = bearer(exchange(http, code, verifier).json()["access_token"])
    sysh = bearer(engine.auth.issue_system_token("his-a", "system/*.cruds"))
    assert http.put("/fhir/Observation/obs-z", json=OBS, headers=sysh).status_code in (200, 201)
    assert http.get("/fhir/Observation/obs-z", headers=h).status_code == 403
    assert http.get("/fhir/Observation/obs-z/_history", headers=h).status_code == 403
    assert http.get("/fhir/Observation/obs-z/_history/1", headers=h).status_code == 403
