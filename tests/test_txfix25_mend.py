"""txfix25: the review of txmend25 mended -- beyond the review's own probes
(tests/test_txfix25_rv_review.py), the edges of each mend, through the real app over the real store
(SQLite and mongomock, the ``eng`` fixture of tests/test_fhir_api.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.module_store import module_eng, module_eng_client  # noqa: F401 -- fixtures (the negotiation test's)
from tests.test_txfix25_rv_review import MRN, OTHER, _local, _methods, _obs, _patient, _tx, eng, http

__all__ = ["eng", "http"]


def _our_base(http: TestClient) -> str:
    """The base this server writes in a transaction-response's fullUrl."""
    r = _tx(http, [{"resource": _patient("base"), "request": {"method": "POST", "url": "Patient"}}])
    assert r.status_code == 200, r.text
    full = r.json()["entry"][0]["fullUrl"]
    return full.rsplit("/", 2)[0]


# --- references read against an entry's fullUrl --------------------------------------------------

def test_foreign_relative_reference_refused_naming_the_element_nothing_written(http: TestClient) -> None:
    assert http.put("/fhir/Patient/p1", json={**_patient("ours"), "id": "p1"}).status_code == 201
    r = _tx(http, [
        {"resource": _patient("x1"), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{OTHER}/Observation/o1", "resource": _obs("Patient/p1", performer=[{"display": "lab"}]),
         "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.subject"], issue
    assert "other.example" in issue["diagnostics"]
    assert http.get("/fhir/Observation").json()["total"] == 0
    assert http.get("/fhir/Patient", params={"identifier": f"{MRN}|x1"}).json()["total"] == 0


def test_relative_reference_in_an_entry_at_our_own_base_is_our_record(http: TestClient) -> None:
    """Guard: the entry's fullUrl at this server's base -> ``Patient/p2`` is this server's Patient/p2."""
    base = _our_base(http)
    assert http.put("/fhir/Patient/p2", json={**_patient("p2"), "id": "p2"}).status_code == 201
    r = _tx(http, [{"fullUrl": f"{base}/Observation/o2", "resource": _obs("Patient/p2"),
                    "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    stored = http.get(_local(r.json()["entry"][0]["response"]["location"])).json()
    assert stored["subject"]["reference"] == "Patient/p2"


def test_versioned_reference_to_a_bundle_entry_at_our_base_refused(http: TestClient) -> None:
    """``Patient/tmp2/_history/1`` in an entry at this server's base, beside the POSTed entry
    ``[base]/Patient/tmp2``: the unversioned spelling is rewritten to the new id; the versioned one
    would have been left naming whatever holds Patient/tmp2 here -- refused 400."""
    base = _our_base(http)
    assert http.put("/fhir/Patient/tmp2", json={**_patient("ours2"), "id": "tmp2"}).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{base}/Patient/tmp2", "resource": _patient("theirs2"),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{base}/Observation/o3", "resource": _obs("Patient/tmp2/_history/1"),
         "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert http.get("/fhir/Observation").json()["total"] == 0
    assert http.get("/fhir/Patient", params={"identifier": f"{MRN}|theirs2"}).json()["total"] == 0


def test_conditional_reference_in_a_foreign_fullurl_entry_still_resolved_here(http: TestClient) -> None:
    """Guard: a conditional reference is a search on this server whatever the entry's fullUrl; it is
    resolved (to ``Patient/cr``) and not then taken for the other server's relative reference."""
    assert http.put("/fhir/Patient/cr", json={**_patient("cr"), "id": "cr"}).status_code == 201
    r = _tx(http, [{"fullUrl": f"{OTHER}/Observation/o4",
                    "resource": _obs(f"Patient?identifier={MRN}|cr", performer=[{"display": "lab"}]),
                    "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    stored = http.get(_local(r.json()["entry"][0]["response"]["location"])).json()
    assert stored["subject"]["reference"] == "Patient/cr"


# --- If-Match: only the version clash is 412 -----------------------------------------------------

def test_stale_if_match_is_still_412(http: TestClient) -> None:
    assert http.put("/fhir/Patient/im", json={**_patient("im"), "id": "im"}).status_code == 201
    assert http.put("/fhir/Patient/im", json={**_patient("im"), "id": "im", "gender": "male"}).status_code == 200
    r = http.put("/fhir/Patient/im", json={**_patient("im"), "id": "im"}, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412 and r.json()["resourceType"] == "OperationOutcome", r.text


# --- history: a note per version a PUT created ----------------------------------------------------

def test_history_post_create_delete_put_recreate(http: TestClient) -> None:
    r = http.post("/fhir/Patient", json=_patient("h7"))
    assert r.status_code == 201
    path = _local(r.headers["location"])
    assert http.delete(path).status_code in (200, 204)
    rid = path.rsplit("/", 1)[1]
    assert http.put(path, json={**_patient("h7"), "id": rid}).status_code == 201
    assert http.delete(path).status_code in (200, 204)
    assert http.put(path, json={**_patient("h7"), "id": rid}).status_code == 201
    assert _methods(http, path) == [('W/"5"', "PUT", "201"), ('W/"4"', "DELETE", "204"), ('W/"3"', "PUT", "201"),
                                    ('W/"2"', "DELETE", "204"), ('W/"1"', "POST", "201")]


# --- Accept: the most specific range decides; operations negotiate; metadata varies ----------------

@pytest.fixture(scope="module")
def a5(module_eng_client: TestClient) -> None:  # noqa: F811
    """Patient a5 PUT by the module's client (201, once a module and backend): the negotiation test only reads it,
    each parameter with its Accept (each had opened an engine and PUT it; trim43)."""
    assert module_eng_client.put("/fhir/Patient/a5", json={**_patient("a5"), "id": "a5"}).status_code == 201


@pytest.mark.parametrize("accept,status", [
    ("application/fhir+json;q=0, application/json", 200),
    ("application/fhir+json;q=0.5, */*;q=0", 200),
    ("*/*;q=0, application/*", 200),
    ("application/*;q=0, */*", 406),
    ("application/json;q=0, */*", 406),
    ("application/fhir+json;q=0, application/*", 406),
])
def test_accept_most_specific_range_decides(module_eng_client: TestClient, a5: None, accept: str, status: int) -> None:  # noqa: F811
    http = module_eng_client
    for path in ("/fhir/Patient/a5", "/fhir/Patient?_id=a5", "/fhir/metadata"):
        r = http.get(path, headers={"Accept": accept})
        assert r.status_code == status, (path, accept, r.status_code)


def test_match_operation_negotiates_accept(http: TestClient) -> None:
    body: dict[str, Any] = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": _patient("m1")}]}
    r = http.post("/fhir/Patient/$match", json=body, headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome", r.text


def test_metadata_vary_accept_on_the_answer(http: TestClient) -> None:
    r = http.get("/fhir/metadata")
    assert r.status_code == 200 and "accept" in r.headers.get("vary", "").lower(), dict(r.headers)
