"""A read answers ``_elements``/``_summary`` as a search does, conditional reads and ``HEAD`` as R4 says.

Before this round ``GET Patient/x?_elements=id`` answered the whole resource, untagged (a client
asking for a subset could not tell it got the whole record), ``_summary=count`` on a read was
ignored, ``If-None-Match`` with the current ETag got the whole body again (200) and ``HEAD`` was
405. Now: the subset, tagged ``SUBSETTED`` once (once, also on a resident's AuditEvent that was
already subsetted), a 400 for a ``_summary`` the server does not do, 304 with the ETag and no
body, and ``HEAD`` the headers alone -- each only after the read was admitted: a resident's
conditional read of another's record is the same 404 as any. Real HTTP, real tokens, SQLite.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("api18r") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for pid, name in (("zhang", "张三"), ("li", "李四")):
            body = {"resourceType": "Patient", "id": pid, "name": [{"text": name}], "gender": "male",
                    "birthDate": "1960-01-02"}
            assert http.put(f"/fhir/Patient/{pid}", json=body, headers=system).status_code == 201
        assert http.put("/fhir/Patient/zhang", json={**body, "id": "zhang", "name": [{"text": "张三"}],
                                                       "gender": "female"}, headers=system).status_code == 200
        yield engine, http, system
    engine.close()


def _tags(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return (resource.get("meta") or {}).get("tag") or []


def test_a_read_answers_the_elements_asked_for_and_says_it_is_a_subset(world: Any) -> None:
    _, http, system = world
    whole = http.get("/fhir/Patient/zhang", headers=system).json()
    assert SUBSETTED not in _tags(whole)
    for path in ("/fhir/Patient/zhang?_elements=gender", "/fhir/Patient/zhang/_history/2?_elements=gender"):
        r = http.get(path, headers=system)
        assert r.status_code == 200 and r.headers["etag"] == 'W/"2"', path
        part = r.json()
        assert set(part) == {"resourceType", "id", "meta", "gender"} and part["gender"] == "female"
        assert _tags(part) == [SUBSETTED]
    # the same subset a search answers
    found = http.get("/fhir/Patient?_id=zhang&_elements=gender", headers=system).json()["entry"][0]["resource"]
    read = http.get("/fhir/Patient/zhang?_elements=gender", headers=system).json()
    assert found == read
    assert http.get("/fhir/Patient/zhang?_summary=false", headers=system).json() == whole
    for value in ("count", "true", "text"):
        r = http.get(f"/fhir/Patient/zhang?_summary={value}", headers=system)
        assert r.status_code == 400 and "_summary" in r.text, value


def test_a_subset_of_a_subset_is_tagged_once(world: Any) -> None:
    engine, http, _ = world
    token, _ = engine.auth.issue_token(subject="person-zhang", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient="zhang")
    me = {"Authorization": f"Bearer {token}"}
    system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
    event = {"resourceType": "AuditEvent", "id": "with-query", "recorded": "2026-12-01T08:00:00Z",
             "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
             "agent": [{"who": {"display": "his"}, "requestor": True}], "source": {"observer": {"display": "his"}},
             "entity": [{"what": {"reference": "Patient/zhang"}, "query": "bmFtZT3lvKDkuIk="}]}
    assert http.put("/fhir/AuditEvent/with-query", json=event, headers=system).status_code == 201
    whole = http.get("/fhir/AuditEvent/with-query", headers=me).json()  # its query withheld from the resident
    assert _tags(whole) == [SUBSETTED] and "query" not in whole["entity"][0]
    for path in ("/fhir/AuditEvent?_id=with-query&_elements=entity,type", "/fhir/AuditEvent/with-query?_elements=entity"):
        r = http.get(path, headers=me).json()
        shown = r["entry"][0]["resource"] if r["resourceType"] == "Bundle" else r
        assert _tags(shown) == [SUBSETTED], (path, _tags(shown))


def test_conditional_read_and_head(world: Any) -> None:
    engine, http, system = world
    full = http.get("/fhir/Patient/zhang", headers=system)
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": 'W/"1", ' + etag}, {"If-None-Match": "*"},
                    {"If-Modified-Since": modified}):
        r = http.get("/fhir/Patient/zhang", headers={**system, **headers})
        assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag), headers
    for headers in ({"If-None-Match": 'W/"1"'}, {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"},
                    {"If-Modified-Since": "yesterday"}):
        r = http.get("/fhir/Patient/zhang", headers={**system, **headers})
        assert r.status_code == 200 and r.json() == full.json(), headers
    old = http.get("/fhir/Patient/zhang/_history/1", headers={**system, "If-None-Match": 'W/"1"'})
    assert (old.status_code, old.content) == (304, b"")
    head = http.head("/fhir/Patient/zhang", headers=system)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", etag)
    assert head.headers["content-length"] == str(len(full.content))
    # no answer about a record the caller may not read
    token, _ = engine.auth.issue_token(subject="person-zhang", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient="zhang")
    me = {"Authorization": f"Bearer {token}"}
    missing = http.get("/fhir/Patient/nobody", headers=me)
    for headers in ({"If-None-Match": 'W/"1"'}, {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
        r = http.get("/fhir/Patient/li", headers={**me, **headers})
        assert (r.status_code, r.text) == (404, missing.text), headers
    assert http.head("/fhir/Patient/li", headers=me).status_code == 404


def test_a_bundle_read_entry_is_conditional_too(world: Any) -> None:
    engine, http, system = world
    current = http.get("/fhir/Patient/zhang", headers=system).json()["meta"]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/zhang", "ifNoneMatch": 'W/"2"'}},
        {"request": {"method": "GET", "url": "Patient/zhang", "ifNoneMatch": 'W/"1"'}},
        {"request": {"method": "GET", "url": "Patient/zhang/_history/1", "ifNoneMatch": 'W/"1"'}},
        {"request": {"method": "GET", "url": "Patient/zhang", "ifModifiedSince": current["lastUpdated"]}},
        {"request": {"method": "GET", "url": "Patient/zhang", "ifModifiedSince": "2024-01-01T00:00:00Z"}},
        {"request": {"method": "GET", "url": "Patient/zhang", "ifModifiedSince": "2024-01-01"}}]}
    entries = http.post("/fhir", json=batch, headers=system).json()["entry"]
    assert [e["response"]["status"][:3] for e in entries] == ["304", "200", "304", "304", "200", "400"]
    assert [("resource" in e) for e in entries[:5]] == [False, True, False, False, True]
    assert entries[0]["response"]["etag"] == 'W/"2"'
    token, _ = engine.auth.issue_token(subject="person-zhang", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient="zhang")
    mine = {"Authorization": f"Bearer {token}"}
    other = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/li", "ifNoneMatch": "*"}}]}
    entry = http.post("/fhir", json=other, headers=mine).json()["entry"][0]
    assert entry["response"]["status"].startswith("404") and "resource" not in entry
