"""A Bundle entry runs what the same request over HTTP runs (R4 http.html, batch and transaction).

Found wrong (nineteenth round): ``POST Observation/_search`` in a Bundle created an Observation
from its body (or was a 400 asking for one) instead of searching; ``POST Observation/$validate``
and ``POST Observation/o1`` created one too; ``POST Observation?identifier=...`` (the conditional
create fhirpy sends) dropped its query and created a duplicate; ``HEAD`` (an R4 method) and
``PATCH`` failed the whole batch with a 400; a read entry ignored ``_elements`` and ``_summary``
(a whole resource answered as the subset asked for); ``_format`` was searched and echoed; and an
auditor's ``POST _search`` entry needed a create scope.

Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

LOINC = "http://loinc.org"
MRN = "urn:oid:2.16.840.1.113883.19.5"


def _obs(oid: str | None, status: str = "final", code: str = "2345-7", ident: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": status, "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/zhang"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
        "performer": [{"reference": "Organization/fnxrmyy"}], "valueQuantity": {"value": 5.5, "unit": "mmol/L"}}
    if oid:
        obs["id"] = oid
    if ident:
        obs["identifier"] = [{"system": MRN, "value": ident}]
    return obs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("labels19") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                     {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]},
                     _obs("glu"), _obs("prelim", status="preliminary", code="718-7")):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text
        yield engine, http, system
    engine.close()


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _count(http: TestClient, headers: dict[str, str]) -> int:
    return http.get("/fhir/Observation?_summary=count", headers=headers).json()["total"]


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry") or ()}


def test_a_post_search_entry_searches_and_never_creates(world: Any) -> None:
    _, http, system = world
    before = _count(http, system)
    form = base64.b64encode(b"status=final&code=2345-7").decode()
    shapes = [
        {"request": {"method": "POST", "url": "Observation/_search?status=final"}},
        {"request": {"method": "POST", "url": "Observation/_search"},
         "resource": {"resourceType": "Parameters", "parameter": [{"name": "status", "valueString": "final"}]}},
        {"request": {"method": "POST", "url": "Observation/_search"},
         "resource": {"resourceType": "Binary", "contentType": "application/x-www-form-urlencoded", "data": form}},
    ]
    for kind in ("batch", "transaction"):
        r = http.post("/fhir", json=_bundle(kind, *shapes), headers=system)
        assert r.status_code == 200, r.text
        for entry in r.json()["entry"]:
            assert entry["response"]["status"] == "200 OK", entry
            found = entry["resource"]
            assert found["type"] == "searchset" and _ids(found) == {"glu"} and found["total"] == 1, found
    # a resource of the type as a search entry's body: a 400, not a create
    wrong = {"request": {"method": "POST", "url": "Observation/_search"}, "resource": _obs(None)}
    r = http.post("/fhir", json=_bundle("batch", wrong), headers=system)
    assert r.json()["entry"][0]["response"]["status"].startswith("400"), r.text
    r = http.post("/fhir", json=_bundle("transaction", wrong), headers=system)
    assert r.status_code == 400, r.text
    assert _count(http, system) == before


def test_a_transaction_runs_its_post_search_after_its_writes(world: Any) -> None:
    _, http, system = world
    r = http.post("/fhir", json=_bundle(
        "transaction",
        {"request": {"method": "POST", "url": "Observation/_search?code=1558-6"}},
        {"request": {"method": "POST", "url": "Observation"}, "resource": _obs(None, code="1558-6")}), headers=system)
    assert r.status_code == 200, r.text
    search, create = r.json()["entry"]
    assert create["response"]["status"] == "201 Created"
    assert search["resource"]["total"] == 1  # R4: GETs (and searches) after the writes


def test_an_operation_or_an_instance_post_is_refused_and_creates_nothing(world: Any) -> None:
    _, http, system = world
    before = _count(http, system)
    r = http.post("/fhir", json=_bundle(
        "batch",
        {"request": {"method": "POST", "url": "Observation/$validate"}, "resource": _obs(None)},
        {"request": {"method": "POST", "url": "Observation/glu"}, "resource": _obs(None)},
        {"request": {"method": "DELETE", "url": "Observation?code=2345-7"}},
        {"request": {"method": "GET", "url": "Patient/zhang/$everything"}},
        {"request": {"method": "GET", "url": "Observation/glu"}}), headers=system)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"][:3] for e in r.json()["entry"]]
    # 405 where HTTP has no such interaction (POST /fhir/Observation/glu, DELETE /fhir/Observation?...)
    assert statuses == ["400", "405", "405", "400", "200"], r.text
    outcomes = [e["response"].get("outcome") for e in r.json()["entry"][:4]]
    assert all(o["issue"][0]["code"] == "not-supported" for o in outcomes), outcomes
    assert http.get("/fhir/Observation/glu", headers=system).status_code == 200  # not deleted
    assert _count(http, system) == before
    r = http.post("/fhir", json=_bundle(
        "transaction", {"request": {"method": "POST", "url": "Observation"}, "resource": _obs(None)},
        {"request": {"method": "POST", "url": "Observation/$validate"}, "resource": _obs(None)}), headers=system)
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "not-supported", r.text
    assert _count(http, system) == before  # all or nothing


def test_a_post_with_a_query_is_the_conditional_create_it_is_over_http(world: Any) -> None:
    _, http, system = world
    entry = {"request": {"method": "POST", "url": f"Observation?identifier={MRN}|lab-7"},
             "resource": _obs(None, ident="lab-7")}
    first = http.post("/fhir", json=_bundle("batch", entry), headers=system).json()["entry"][0]
    again = http.post("/fhir", json=_bundle("batch", entry), headers=system).json()["entry"][0]
    assert first["response"]["status"] == "201 Created"
    assert again["response"]["status"] == "200 OK" and again["fullUrl"] == first["fullUrl"]
    found = http.get(f"/fhir/Observation?identifier={MRN}|lab-7", headers=system).json()
    assert found["total"] == 1


def test_head_and_patch_entries_are_answered_on_their_own(world: Any) -> None:
    _, http, system = world
    r = http.post("/fhir", json=_bundle(
        "batch",
        {"request": {"method": "HEAD", "url": "Observation/glu"}},
        {"request": {"method": "HEAD", "url": "Observation?status=final"}},
        {"request": {"method": "PATCH", "url": "Observation/glu"},
         "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "W10="}},
        {"request": {"method": "GET", "url": "Observation/glu"}}), headers=system)
    assert r.status_code == 200, r.text
    head, head_search, patch, read = r.json()["entry"]
    assert head["response"]["status"] == "200 OK" and head["response"]["etag"] == 'W/"1"' and "resource" not in head
    assert head_search["response"]["status"] == "200 OK" and "resource" not in head_search
    assert patch["response"]["status"].startswith("405"), patch
    assert read["resource"]["id"] == "glu"


def test_a_read_entry_answers_elements_and_summary_as_a_read_over_http(world: Any) -> None:
    _, http, system = world
    r = http.post("/fhir", json=_bundle(
        "batch",
        {"request": {"method": "GET", "url": "Observation/glu?_elements=status"}},
        {"request": {"method": "GET", "url": "Observation/glu/_history/1?_elements=status"}},
        {"request": {"method": "GET", "url": "Observation/glu?_summary=true"}},
        {"request": {"method": "GET", "url": "Observation?status=final&_format=json&_count=1"}}), headers=system)
    subset, version, summary, search = r.json()["entry"]
    over_http = http.get("/fhir/Observation/glu?_elements=status", headers=system).json()
    for entry in (subset, version):
        assert entry["resource"] == over_http, entry
        assert "valueQuantity" not in entry["resource"]
    assert summary["response"]["status"].startswith("400")
    assert http.get("/fhir/Observation/glu?_summary=true", headers=system).status_code == 400
    assert "_format" not in search["resource"]["link"][0]["url"]


def test_an_auditor_searches_by_post_in_a_batch_with_a_search_scope(world: Any) -> None:
    engine, http, _ = world
    token, _ = engine.auth.issue_token(subject="auditor-x", kind="auditor", client_id="auditor-app",
                                       scopes=["system/Observation.rs"])
    auditor = {"Authorization": f"Bearer {token}"}
    r = http.post("/fhir", json=_bundle(
        "batch", {"request": {"method": "POST", "url": "Observation/_search?status=preliminary"}}),
        headers=auditor)
    assert r.status_code == 200, r.text
    assert _ids(r.json()["entry"][0]["resource"]) == {"prelim"}
    # and still may not create through one
    r = http.post("/fhir", json=_bundle(
        "batch", {"request": {"method": "POST", "url": "Observation"}, "resource": _obs(None)}), headers=auditor)
    assert r.status_code == 403, r.text


def test_two_entries_under_one_full_url_are_refused_not_resolved_to_the_later(world: Any) -> None:
    _, http, system = world
    same = "urn:uuid:2b0a5c34-7f7e-4a53-9a47-1b1f0c0e5d11"
    encounter = {"resourceType": "Encounter", "status": "finished", "subject": {"reference": same},
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}
    before = http.get("/fhir/Patient?_summary=count", headers=system).json()["total"]
    r = http.post("/fhir", json=_bundle(
        "transaction",
        {"fullUrl": same, "resource": {"resourceType": "Patient", "name": [{"text": "甲"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": same, "resource": {"resourceType": "Patient", "name": [{"text": "乙"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}}), headers=system)
    # was 200: the Encounter stored as 乙's, whichever patient the sender meant
    assert r.status_code == 400 and "bdl-7" in r.text, r.text
    assert http.get("/fhir/Patient?_summary=count", headers=system).json()["total"] == before
    assert http.get("/fhir/Encounter?_summary=count", headers=system).json()["total"] == 0


def test_malformed_entry_fields_are_a_400_of_their_entry_not_a_500(world: Any) -> None:
    _, http, system = world
    glu = http.get("/fhir/Observation/glu", headers=system).json()
    r = http.post("/fhir", json=_bundle(
        "batch",
        {"request": {"method": "PUT", "url": "Observation/glu", "ifMatch": 1}, "resource": glu},  # was a 500
        {"request": {"method": "GET", "url": "Observation/glu", "ifNoneMatch": 1}},
        {"request": {"method": "POST", "url": "Observation/_search"},
         "resource": {"resourceType": "Parameters", "parameter": 5}},  # was a 500 too
        {"request": {"method": "GET", "url": "Observation/glu"}}), headers=system)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["400", "400", "400", "200"], r.text
