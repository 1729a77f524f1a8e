"""txmend25 (twenty-fifth round): what the FHIR probe (probef25) found in transactions, references,
_history and content negotiation, mended -- the rules around the probe's own failing tests
(tests/test_probef25_rest.py), through the real app (FastAPI TestClient) over the real store
(SQLite and mongomock). One engine a module and backend (``tests.module_store.module_eng``, its clients ``http``
and ``module_eng_client``): each test writes and reads under ids and record numbers of its own (``Names.number``),
and counts only its own (suite44e) -- each test had opened an engine.
"""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.errors import Conflict
from engine.repository.port import StoredResource
from tests.module_store import Names, module_eng, module_eng_client, module_eng_http, names
from tests.test_probef25_rest import MRN, OBS, _local, _obs, _patient, _tx

__all__ = ["module_eng", "module_eng_client", "module_eng_http", "names"]

OTHER = "http://other.example/fhir/"


# --- 1. a conditional create's match overlapping another entry fails the transaction ---------------

def test_a_conditional_create_matching_a_record_another_entry_writes_fails_whole(http: TestClient, names: Names) -> None:
    """http.html#trules: resolved identities overlapping fail the transaction -- here a PUT of
    Patient/old and a conditional create whose ifNoneExist finds old (the DELETE case is the
    probe's). Refused 400, nothing written."""
    n = names.number
    mine = [{"system": OBS, "value": n("obs")}]  # counted among this test's own
    assert http.put(f"/fhir/Patient/{n('old')}", json={**_patient(n("o2")), "id": n("old")}).status_code == 201
    new = "urn:uuid:45454545-4545-4545-4545-454545454545"
    r = _tx(http, [
        {"resource": {**_patient(n("o2")), "id": n("old"), "gender": "male"}, "request": {"method": "PUT", "url": f"Patient/{n('old')}"}},
        {"fullUrl": new, "resource": _patient(n("o2")),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{n('o2')}"}},
        {"resource": _obs(new, identifier=mine), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert "ifNoneExist" in r.json()["issue"][0]["diagnostics"]
    assert http.get(f"/fhir/Patient/{n('old')}").json().get("gender") is None
    assert http.get(f"/fhir/Observation?identifier={OBS}|{n('obs')}").json()["total"] == 0
    # without the overlapping entry the conditional create is answered by the match, as before
    r = _tx(http, [
        {"fullUrl": new, "resource": _patient(n("o2")),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{n('o2')}"}},
        {"resource": _obs(new, identifier=mine), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("200"), r.text
    assert http.get(_local(r.json()["entry"][1]["response"]["location"])).json()["subject"]["reference"] == f"Patient/{n('old')}"


# --- 2. relative references read against the entry's RESTful fullUrl -------------------------------

def test_a_relative_reference_is_read_against_its_entrys_own_base(http: TestClient, names: Names) -> None:
    """bundle.html#references: the base is the entry's fullUrl's, whichever server that names. An
    entry with a urn:uuid fullUrl (no RESTful base) keeps ``Patient/tmp1`` as the server's record."""
    n = names.number
    assert http.put(f"/fhir/Patient/{n('tmp1')}", json={"resourceType": "Patient", "id": n("tmp1")}).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{OTHER}Patient/{n('tmp1')}", "resource": _patient(n("n2")), "request": {"method": "POST", "url": "Patient"}},
        # txfix25: no ``Organization/org`` performer here -- read against this entry's base it is
        # the other server's Organization/org, which no entry defines: now refused 400
        {"fullUrl": f"{OTHER}Observation/{n('o1')}", "resource": _obs(f"Patient/{n('tmp1')}", performer=[{"display": "lab"}]),
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:56565656-5656-5656-5656-565656565656", "resource": _obs(f"Patient/{n('tmp1')}"),
         "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    pat, rel, plain = r.json()["entry"]
    new = _local(pat["response"]["location"]).split("/")[-1]
    assert http.get(_local(rel["response"]["location"])).json()["subject"]["reference"] == f"Patient/{new}"
    assert http.get(_local(plain["response"]["location"])).json()["subject"]["reference"] == f"Patient/{n('tmp1')}"


# --- 3. undefined urn:uuid placeholders refused, naming the element --------------------------------

def test_an_undefined_placeholder_is_refused_naming_its_element(http: TestClient, names: Names) -> None:
    n = names.number
    ghost = "urn:uuid:67676767-6767-6767-6767-676767676767"
    body = {**_obs("Patient/x", id=n("g1")), "performer": [{"reference": "Organization/org"}, {"reference": ghost}]}
    r = http.put(f"/fhir/Observation/{n('g1')}", json=body)
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Observation.performer[1]"], r.text
    assert http.get(f"/fhir/Observation/{n('g1')}").status_code == 404
    r = _tx(http, [{"resource": body, "request": {"method": "PUT", "url": f"Observation/{n('g1')}"}}])
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.performer[1]"], r.text
    # a placeholder the transaction defines is rewritten, as before
    r = _tx(http, [{"fullUrl": ghost, "resource": {"resourceType": "Practitioner"},
                    "request": {"method": "POST", "url": "Practitioner"}},
                   {"resource": body, "request": {"method": "PUT", "url": f"Observation/{n('g1')}"}}])
    assert r.status_code == 200, r.text
    assert http.get(f"/fhir/Observation/{n('g1')}").json()["performer"][1]["reference"].startswith("Practitioner/")


# --- 4. Accept, and the method a version was made by -----------------------------------------------

@pytest.fixture(scope="module")
def a1(module_eng_client: TestClient) -> None:  # noqa: F811
    """Patient a1 PUT by the module's client (201, once a module and backend): the negotiation test only reads it,
    each parameter with its Accept (each had opened an engine and PUT it; trim43)."""
    assert module_eng_client.put("/fhir/Patient/a1", json={"resourceType": "Patient", "id": "a1"}).status_code == 201


@pytest.mark.parametrize(("accept", "status"), [
    ("application/fhir+xml", 406), ("application/xml, text/html", 406), ("application/fhir+json;q=0", 406),
    ("application/fhir+xml, application/fhir+json;q=0.5", 200), ("*/*", 200), ("application/*", 200),
    ("application/json", 200), ("", 200)])
def test_accept_is_negotiated_on_reads_searches_and_metadata(module_eng_client: TestClient, a1: None, accept: str,  # noqa: F811
                                                             status: int) -> None:
    http = module_eng_client
    headers = {"Accept": accept} if accept else {}
    for url in ("/fhir/Patient/a1", "/fhir/Patient?_id=a1", "/fhir/metadata", "/fhir/Patient/a1/_history"):
        r = http.get(url, headers=headers)
        assert r.status_code == status, (url, accept, r.text[:200])
        if status == 406:
            assert r.json()["resourceType"] == "OperationOutcome"
    # _format overrides Accept (R4 http.html#mime-type)
    assert http.get("/fhir/Patient/a1?_format=json", headers={"Accept": "application/fhir+xml"}).status_code == 200


def test_history_tells_put_creates_from_post_creates(http: TestClient, names: Names) -> None:
    n = names.number
    body = {"resourceType": "Patient", "id": n("h3"), "name": [{"family": "X"}]}
    assert http.put(f"/fhir/Patient/{n('h3')}", json=body).status_code == 201
    assert http.put(f"/fhir/Patient/{n('h3')}", json={**body, "gender": "male"}).status_code == 200
    entries = http.get(f"/fhir/Patient/{n('h3')}/_history").json()["entry"]
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [("PUT", "200"), ("PUT", "201")]
    pid = http.post("/fhir/Patient", json=_patient(n("h4"))).json()["id"]
    first = http.get(f"/fhir/Patient/{pid}/_history").json()["entry"][-1]
    assert (first["request"]["method"], first["response"]["status"]) == ("POST", "201")
    # a transaction's PUT entry that creates is a PUT too
    r = _tx(http, [{"resource": {"resourceType": "Patient", "id": n("h5")}, "request": {"method": "PUT", "url": f"Patient/{n('h5')}"}}])
    assert r.status_code == 200, r.text
    assert http.get(f"/fhir/Patient/{n('h5')}/_history").json()["entry"][0]["request"]["method"] == "PUT"
    # and a failed transaction leaves no note behind. txfix25: the failure comes AFTER the PUT entry
    # creating h6 has written its version and its note (a referral Task refused by its workflow when
    # stored, entry 1, PUTs run in entry order) -- a second entry refused by validation failed before
    # anything was written, so the note's rollback was never tested
    from tests.test_referral_e2e import STATE

    task = {"resourceType": "Task", "id": n("wf6"), "status": "requested", "intent": "order",
            "businessStatus": {"coding": [{"system": STATE, "code": "requested"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "for": {"reference": f"Patient/{n('h5')}"}, "authoredOn": "2026-11-25"}
    assert http.put(f"/fhir/Task/{n('wf6')}", json=task).status_code == 201
    done = {**task, "status": "completed", "businessStatus": {"coding": [{"system": STATE, "code": "completed"}]}}
    r = _tx(http, [{"resource": {"resourceType": "Patient", "id": n("h6")}, "request": {"method": "PUT", "url": f"Patient/{n('h6')}"}},
                   {"resource": done, "request": {"method": "PUT", "url": f"Task/{n('wf6')}"}}])
    assert r.status_code == 409 and "entry 1" in r.json()["issue"][0]["diagnostics"], r.text
    assert http.get(f"/fhir/Patient/{n('h6')}").status_code == 404
    assert eng_put_created(http, "Patient", n("h6")) == frozenset()


def eng_put_created(http: TestClient, rtype: str, rid: str) -> frozenset[int]:
    return http.app.state.engine.repository.put_created(rtype, rid)  # type: ignore[attr-defined, no-any-return]


# --- 5. the MongoDB backend's write is a compare-and-set on the version -----------------------------

def test_a_write_over_a_version_another_writer_replaced_is_refused(module_eng: Engine, names: Names) -> None:
    """Two writers that read version 1 and write version 2 (what two ``If-Match: W/"1"`` updates do
    between their check and their write): on MongoDB the second was written over the first (a
    replace on ``_id`` alone); now it is refused 409. SQLite serialises its writers, so the
    interleaving cannot arise there (its writes are not compare-and-set: told by the skip)."""
    n = names.number
    cas = n("cas")
    if not module_eng.settings.mongodb_uri:
        pytest.skip("the MongoDB backend's compare-and-set (SQLite holds one writer at a time)")
    repo = module_eng.repository
    repo.update({"resourceType": "Patient", "id": cas, "name": [{"family": "A"}]})
    backend = repo.backend
    v1 = backend.current("Patient", cas)
    assert v1 is not None and v1.version == 1

    def version2(family: str) -> StoredResource:
        rec = copy.copy(v1)
        body = {"resourceType": "Patient", "id": cas, "meta": {"versionId": "2", "lastUpdated": v1.updated},
                "name": [{"family": family}]}
        import json
        return StoredResource("Patient", cas, 2, rec.updated, False, json.dumps(body).encode())

    backend.put(version2("B"), None, v1)
    with pytest.raises(Conflict):
        backend.put(version2("C"), None, v1)
    assert b'"B"' in backend.current("Patient", cas).body  # type: ignore[union-attr, operator]


def test_sixteen_racing_if_match_updates_have_one_winner(module_eng: Engine, http: TestClient, names: Names) -> None:
    """The update half of probef25's race, on both backends (the conditional-create half stays
    SQLite-only: not mended on MongoDB, see README): of sixteen ``If-Match: W/"1"`` updates one wins,
    fifteen get 412, the record is at version 2 with the winner's body."""
    n = names.number
    from concurrent.futures import ThreadPoolExecutor

    assert http.put(f"/fhir/Patient/{n('race')}", json={"resourceType": "Patient", "id": n("race")}).status_code == 201
    with TestClient(create_app(module_eng)) as other:
        other.headers["Authorization"] = http.headers["Authorization"]

        def update(i: int) -> tuple[int, str]:
            body = {"resourceType": "Patient", "id": n("race"), "name": [{"family": f"n{i}"}]}
            r = other.put(f"/fhir/Patient/{n('race')}", json=body, headers={"If-Match": 'W/"1"'})
            return r.status_code, f"n{i}"

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(update, range(16)))
    assert sorted(s for s, _ in results) == [200] + [412] * 15
    winner = next(name for s, name in results if s == 200)
    now = http.get(f"/fhir/Patient/{n('race')}").json()
    assert now["meta"]["versionId"] == "2" and now["name"][0]["family"] == winner
    assert http.get(f"/fhir/Patient/{n('race')}/_history").json()["total"] == 2
