"""txfix25: the review of txmend25 mended -- beyond the review's own probes
(tests/test_txfix25_rv_review.py), the edges of each mend, through the real app over the real store
(SQLite and mongomock). One engine a module and backend (``tests.module_store.module_eng``, its clients ``http``
and ``module_eng_client``): each test writes and reads under ids and record numbers of its own (``Names.number``),
and counts only its own (suite44e) -- each test had opened an engine."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.module_store import Names, module_eng, module_eng_client, module_eng_http, names
from tests.test_probef25_rest import OBS
from tests.test_txfix25_rv_review import MRN, OTHER, _local, _methods, _obs, _patient, _tx

__all__ = ["module_eng", "module_eng_client", "module_eng_http", "names"]


def _our_base(http: TestClient) -> str:
    """The base this server writes in a transaction-response's fullUrl."""
    r = _tx(http, [{"resource": _patient("base"), "request": {"method": "POST", "url": "Patient"}}])
    assert r.status_code == 200, r.text
    full = r.json()["entry"][0]["fullUrl"]
    return full.rsplit("/", 2)[0]


# --- references read against an entry's fullUrl --------------------------------------------------

def test_foreign_relative_reference_refused_naming_the_element_nothing_written(http: TestClient, names: Names) -> None:
    n = names.number
    mine = [{"system": OBS, "value": n("obs")}]  # counted among this test's own
    assert http.put(f"/fhir/Patient/{n('p1')}", json={**_patient(n("ours")), "id": n("p1")}).status_code == 201
    r = _tx(http, [
        {"resource": _patient(n("x1")), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{OTHER}/Observation/{n('o1')}", "resource": _obs(f"Patient/{n('p1')}", performer=[{"display": "lab"}], identifier=mine),
         "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.subject"], issue
    assert "other.example" in issue["diagnostics"]
    assert http.get(f"/fhir/Observation?identifier={OBS}|{n('obs')}").json()["total"] == 0
    assert http.get("/fhir/Patient", params={"identifier": f"{MRN}|{n('x1')}"}).json()["total"] == 0


def test_relative_reference_in_an_entry_at_our_own_base_is_our_record(http: TestClient, names: Names) -> None:
    """Guard: the entry's fullUrl at this server's base -> ``Patient/p2`` is this server's Patient/p2."""
    n = names.number
    base = _our_base(http)
    assert http.put(f"/fhir/Patient/{n('p2')}", json={**_patient(n("p2")), "id": n("p2")}).status_code == 201
    r = _tx(http, [{"fullUrl": f"{base}/Observation/{n('o2')}", "resource": _obs(f"Patient/{n('p2')}"),
                    "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    stored = http.get(_local(r.json()["entry"][0]["response"]["location"])).json()
    assert stored["subject"]["reference"] == f"Patient/{n('p2')}"


def test_versioned_reference_to_a_bundle_entry_at_our_base_refused(http: TestClient, names: Names) -> None:
    """``Patient/tmp2/_history/1`` in an entry at this server's base, beside the POSTed entry
    ``[base]/Patient/tmp2``: the unversioned spelling is rewritten to the new id; the versioned one
    would have been left naming whatever holds Patient/tmp2 here -- refused 400."""
    n = names.number
    mine = [{"system": OBS, "value": n("obs")}]  # counted among this test's own
    base = _our_base(http)
    assert http.put(f"/fhir/Patient/{n('tmp2')}", json={**_patient(n("ours2")), "id": n("tmp2")}).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{base}/Patient/{n('tmp2')}", "resource": _patient(n("theirs2")),
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{base}/Observation/{n('o3')}", "resource": _obs(f"Patient/{n('tmp2')}/_history/1", identifier=mine),
         "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert http.get(f"/fhir/Observation?identifier={OBS}|{n('obs')}").json()["total"] == 0
    assert http.get("/fhir/Patient", params={"identifier": f"{MRN}|{n('theirs2')}"}).json()["total"] == 0


def test_conditional_reference_in_a_foreign_fullurl_entry_still_resolved_here(http: TestClient, names: Names) -> None:
    """Guard: a conditional reference is a search on this server whatever the entry's fullUrl; it is
    resolved (to ``Patient/cr``) and not then taken for the other server's relative reference."""
    n = names.number
    assert http.put(f"/fhir/Patient/{n('cr')}", json={**_patient(n("cr")), "id": n("cr")}).status_code == 201
    r = _tx(http, [{"fullUrl": f"{OTHER}/Observation/{n('o4')}",
                    "resource": _obs(f"Patient?identifier={MRN}|{n('cr')}", performer=[{"display": "lab"}]),
                    "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    stored = http.get(_local(r.json()["entry"][0]["response"]["location"])).json()
    assert stored["subject"]["reference"] == f"Patient/{n('cr')}"


# --- If-Match: only the version clash is 412 -----------------------------------------------------

def test_stale_if_match_is_still_412(http: TestClient, names: Names) -> None:
    n = names.number
    assert http.put(f"/fhir/Patient/{n('im')}", json={**_patient(n("im")), "id": n("im")}).status_code == 201
    assert http.put(f"/fhir/Patient/{n('im')}", json={**_patient(n("im")), "id": n("im"), "gender": "male"}).status_code == 200
    r = http.put(f"/fhir/Patient/{n('im')}", json={**_patient(n("im")), "id": n("im")}, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 412 and r.json()["resourceType"] == "OperationOutcome", r.text


# --- history: a note per version a PUT created ----------------------------------------------------

def test_history_post_create_delete_put_recreate(http: TestClient, names: Names) -> None:
    n = names.number
    r = http.post("/fhir/Patient", json=_patient(n("h7")))
    assert r.status_code == 201
    path = _local(r.headers["location"])
    assert http.delete(path).status_code in (200, 204)
    rid = path.rsplit("/", 1)[1]
    assert http.put(path, json={**_patient(n("h7")), "id": rid}).status_code == 201
    assert http.delete(path).status_code in (200, 204)
    assert http.put(path, json={**_patient(n("h7")), "id": rid}).status_code == 201
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


def test_match_operation_negotiates_accept(http: TestClient, names: Names) -> None:
    n = names.number
    body: dict[str, Any] = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": _patient(n("m1"))}]}
    r = http.post("/fhir/Patient/$match", json=body, headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406 and r.json()["resourceType"] == "OperationOutcome", r.text


def test_metadata_vary_accept_on_the_answer(http: TestClient) -> None:
    r = http.get("/fhir/metadata")
    assert r.status_code == 200 and "accept" in r.headers.get("vary", "").lower(), dict(r.headers)
