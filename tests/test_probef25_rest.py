"""probef25 (twenty-fifth round): the R4 RESTful API (hl7.org/fhir/R4/http.html) and Bundle
transaction/batch (http.html#transaction) probed through real HTTP, as the CapabilityStatement claims
them (read, vread, update with updateCreate, delete, history-instance, create with conditionalCreate,
conditionalUpdate, conditionalDelete not-supported, versioned-update, conditionalRead full-support).

The app is the real one (FastAPI TestClient) over the real store (SQLite and mongomock), with a system
client's token. One engine a module and backend (``tests.module_store.module_eng``, its client ``http``): each
test writes and reads under ids and record numbers of its own (``Names.number``: ``T001x1``...), and what it
counts it counts among its own resources (suite44e) -- each test had opened an engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import Names, module_eng, module_eng_http, names

__all__ = ["module_eng", "module_eng_http", "names"]

FHIR = "application/fhir+json"
MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"
BASE = "https://huren.example/fhir/"
OBS = "urn:oid:2.16.156.10011.1.FNXRMYY.probef25"  # an Observation's identifier: a test counts its own


def _patient(mrn: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], "name": [{"family": "张"}],
            **extra}


def _obs(subject: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Organization/org"}], **extra}


def _tx(http: TestClient, entries: list[dict[str, Any]], kind: str = "transaction") -> Any:
    return http.post("/fhir", json={"resourceType": "Bundle", "type": kind, "entry": entries})


def _local(location: str) -> str:
    return "/fhir/" + location.split("/fhir/")[-1].split("/_history")[0]


# --- create / conditional create (http.html#create, #ccreate) ---------------------------------------

def test_create_headers_and_conditional_create(http: TestClient, names: Names) -> None:
    n = names.number
    r = http.post("/fhir/Patient", json={**_patient(n("1")), "id": "ignored"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert pid != "ignored"  # http.html#create: the server assigns the id
    assert r.headers["Location"] == f"{BASE}Patient/{pid}/_history/1"
    assert r.headers["ETag"] == 'W/"1"' and r.headers["Last-Modified"].endswith("GMT")
    cond = {"If-None-Exist": f"identifier={MRN}|{n('1')}"}
    r = http.post("/fhir/Patient", json=_patient(n("1")), headers=cond)
    assert r.status_code == 200 and r.json()["id"] == pid, r.text  # one match: 200, nothing created
    r = http.post("/fhir/Patient", json=_patient(n("2")), headers={"If-None-Exist": f"identifier={MRN}|{n('2')}"})
    assert r.status_code == 201, r.text  # no match: created
    assert http.post("/fhir/Patient", json=_patient(n("2"))).status_code == 201
    r = http.post("/fhir/Patient", json=_patient(n("2")), headers={"If-None-Exist": f"identifier={MRN}|{n('2')}"})
    assert r.status_code == 412, r.text  # several matches
    assert http.get(f"/fhir/Patient?identifier={MRN}|{n('2')}").json()["total"] == 2


def test_conditional_update_and_delete(http: TestClient, names: Names) -> None:
    n = names.number
    url = f"/fhir/Patient?identifier={MRN}|{n('3')}"
    r = http.put(url, json=_patient(n("3")))
    assert r.status_code == 201, r.text  # no match: created
    pid = r.json()["id"]
    r = http.put(url, json=_patient(n("3"), gender="male"))
    assert r.status_code == 200 and r.json()["id"] == pid and r.json()["meta"]["versionId"] == "2", r.text
    for _ in range(2):
        assert http.post("/fhir/Patient", json=_patient(n("4"))).status_code == 201
    r = http.put(f"/fhir/Patient?identifier={MRN}|{n('4')}", json=_patient(n("4")))
    assert r.status_code == 412, r.text  # several: 412
    r = http.delete(url)  # conditionalDelete: not-supported -> refused, nothing deleted
    assert r.status_code in (400, 405) and r.json()["resourceType"] == "OperationOutcome", r.text
    assert http.get(f"/fhir/Patient/{pid}").status_code == 200


# --- versions, ETags, conditional read (http.html#concurrency, #cread, #vread, #delete) -----------

def test_if_match_if_none_match_and_deleted_versions(http: TestClient, names: Names) -> None:
    n = names.number
    x1 = n("x1")
    body = {"resourceType": "Patient", "id": x1, "name": [{"family": "X"}]}
    assert http.put(f"/fhir/Patient/{x1}", json=body).status_code == 201
    r = http.put(f"/fhir/Patient/{x1}", json={**body, "gender": "male"}, headers={"If-Match": 'W/"5"'})
    assert r.status_code == 412, r.text
    assert http.get(f"/fhir/Patient/{x1}").json().get("gender") is None
    r = http.put(f"/fhir/Patient/{x1}", json={**body, "gender": "male"}, headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == 'W/"2"', r.text
    assert http.put(f"/fhir/Patient/{x1}", json=body, headers={"If-Match": "junk"}).status_code == 400
    # http.html#update: a versionId in the body is ignored on update
    r = http.put(f"/fhir/Patient/{x1}", json={**body, "meta": {"versionId": "9"}, "gender": "female"})
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "3", r.text
    assert http.get(f"/fhir/Patient/{x1}", headers={"If-None-Match": 'W/"3"'}).status_code == 304
    assert http.get(f"/fhir/Patient/{x1}", headers={"If-None-Match": 'W/"2"'}).status_code == 200
    r = http.delete(f"/fhir/Patient/{x1}")
    assert r.status_code in (200, 204), r.text
    r = http.get(f"/fhir/Patient/{x1}")
    assert r.status_code == 410 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert http.get(f"/fhir/Patient/{x1}/_history/4").status_code == 410  # the deletion's version
    assert http.get(f"/fhir/Patient/{x1}/_history/2").json()["gender"] == "male"
    assert http.get(f"/fhir/Patient/{x1}/_history/9").status_code == 404
    r = http.put(f"/fhir/Patient/{x1}", json=body)  # brought back: a new version after the deletion
    assert r.status_code == 201 and r.json()["meta"]["versionId"] == "5", r.text


def test_history_bundle_shape(http: TestClient, names: Names) -> None:
    n = names.number
    h1 = n("h1")
    body = {"resourceType": "Patient", "id": h1, "name": [{"family": "X"}]}
    assert http.put(f"/fhir/Patient/{h1}", json=body).status_code == 201
    assert http.put(f"/fhir/Patient/{h1}", json={**body, "gender": "male"}).status_code == 200
    assert http.delete(f"/fhir/Patient/{h1}").status_code in (200, 204)
    b = http.get(f"/fhir/Patient/{h1}/_history").json()
    assert b["resourceType"] == "Bundle" and b["type"] == "history" and b["total"] == 3
    entries = b["entry"]
    assert [e["request"]["method"] for e in entries][:2] == ["DELETE", "PUT"]  # newest first
    assert "resource" not in entries[0] and entries[0]["response"]["status"].startswith(("200", "204"))
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert all(e["response"]["etag"] == f'W/"{3 - i}"' for i, e in enumerate(entries))


def test_history_entry_of_a_resource_created_by_put_says_put(http: TestClient, names: Names) -> None:
    """Bundle.entry.request (bundle.html, R4): in a history Bundle, "the HTTP action that occurred";
    request.url for a POST is the type ([base]/Patient), for a PUT the instance. A version made by
    PUT Patient/h2 (updateCreate) is listed as POST with the url Patient/h2 -- neither true."""
    n = names.number
    h2 = n("h2")
    body = {"resourceType": "Patient", "id": h2, "name": [{"family": "X"}]}
    assert http.put(f"/fhir/Patient/{h2}", json=body).status_code == 201
    first = http.get(f"/fhir/Patient/{h2}/_history").json()["entry"][-1]["request"]
    assert (first["method"], first["url"]) == ("PUT", f"Patient/{h2}")


# --- Prefer, formats, content types, bad bodies (http.html#ops, #mime-type, #2xx) ------------------

def test_prefer_return(http: TestClient, names: Names) -> None:
    n = names.number
    r = http.post("/fhir/Patient", json=_patient(n("p")), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and r.headers["Location"], r.text
    r = http.post("/fhir/Patient", json=_patient(n("q")), headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 201 and r.json()["resourceType"] == "OperationOutcome", r.text
    r = http.post("/fhir/Patient", json=_patient(n("r")), headers={"Prefer": "return=representation"})
    assert r.status_code == 201 and r.json()["resourceType"] == "Patient", r.text


def test_format_content_type_and_bad_bodies(http: TestClient, names: Names) -> None:
    n = names.number
    f1, f2 = n("f1"), n("f2")
    body = {"resourceType": "Patient", "id": f1}
    assert http.put(f"/fhir/Patient/{f1}", json=body).status_code == 201
    assert http.get(f"/fhir/Patient/{f1}?_format=xml").status_code == 406
    assert http.get(f"/fhir/Patient/{f1}?_format=json").status_code == 200
    assert http.get(f"/fhir/Patient/{f1}", headers={"Accept": "application/json"}).status_code == 200
    for ctype in ("text/plain", "application/fhir+xml"):
        r = http.post("/fhir/Patient", content=json.dumps(body), headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
    r = http.post("/fhir/Patient", content=b"{bad", headers={"Content-Type": FHIR})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"
    assert http.post("/fhir/Patient", json={"resourceType": "Observation"}).status_code == 400
    assert http.post("/fhir/Patient", json=[body]).status_code == 400
    assert http.put(f"/fhir/Patient/{f2}", json={**body, "id": n("f3")}).status_code == 400
    assert http.put(f"/fhir/Patient/{f2}", json={"resourceType": "Patient"}).status_code == 400
    for bad in ({"gender": "xyz"}, {"birthDate": "1990-13-45"}, {"foo": 1}):
        r = http.post("/fhir/Patient", json={"resourceType": "Patient", **bad})
        assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome", (bad, r.text)
    # PATCH is not in the CapabilityStatement: refused, not a 500
    r = http.patch(f"/fhir/Patient/{f1}", json=[{"op": "add", "path": "/gender", "value": "male"}],
                   headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code in (405, 415, 400) and http.get(f"/fhir/Patient/{f1}").json().get("gender") is None


def test_an_accept_of_xml_only_is_refused_like_format_xml(http: TestClient, names: Names) -> None:
    """http.html#mime-type (R4): _format "overrides the Accept header"; they are the same request, and
    huren answers ``_format=xml`` with 406 Not Acceptable. ``Accept: application/fhir+xml`` (nothing
    else acceptable) is answered 200 with a JSON body the client said it cannot take."""
    n = names.number
    f1 = n("f1")
    assert http.put(f"/fhir/Patient/{f1}", json={"resourceType": "Patient", "id": f1}).status_code == 201
    assert http.get(f"/fhir/Patient/{f1}?_format=application/fhir%2Bxml").status_code == 406
    r = http.get(f"/fhir/Patient/{f1}", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406, (r.status_code, r.headers.get("content-type"))


# --- decimals keep their precision (datatypes.html#decimal, json.html#primitive) ---------------------

def test_decimals_come_back_as_sent(http: TestClient, names: Names) -> None:
    n = names.number
    d1 = n("d1")
    raw = json.dumps({**_obs("Patient/x", id=d1), "valueQuantity": {"value": "@A"},
                      "component": [{"code": {"text": "a"}, "valueQuantity": {"value": "@B"}},
                                    {"code": {"text": "b"}, "valueQuantity": {"value": "@C"}},
                                    {"code": {"text": "c"}, "valueQuantity": {"value": "@D"}}]})
    raw = (raw.replace('"@A"', "1.50").replace('"@B"', "0.0010").replace('"@C"', "12345678901234567890.123456789")
           .replace('"@D"', "1e2"))
    r = http.put(f"/fhir/Observation/{d1}", content=raw, headers={"Content-Type": FHIR})
    assert r.status_code in (201, 422), r.text
    if r.status_code == 422:  # 1e2 refused: acceptable, then the others alone must keep their digits
        raw = raw.replace("1e2", "100")
        assert http.put(f"/fhir/Observation/{d1}", content=raw, headers={"Content-Type": FHIR}).status_code == 201
    for url in (f"/fhir/Observation/{d1}", f"/fhir/Observation?_id={d1}", f"/fhir/Observation/{d1}/_history/1"):
        text = http.get(url).text
        for digits in ('"value":1.50', '"value":0.0010', '"value":12345678901234567890.123456789'):
            assert digits in text.replace(" ", ""), (url, digits)
    assert http.get(f"/fhir/Observation?value-quantity=1.5&_id={d1}").json()["total"] == 1
    assert http.get(f"/fhir/Observation?component-value-quantity=100&_id={d1}").json()["total"] == 1


# --- transaction and batch (http.html#transaction) --------------------------------------------------

def test_transaction_urn_uuid_and_conditional_references(http: TestClient, names: Names) -> None:
    n = names.number
    pat = "urn:uuid:11111111-1111-1111-1111-111111111111"
    r = _tx(http, [
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": _obs(pat),
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": pat, "resource": _patient(n("t1")),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{n('t1')}"}}])
    assert r.status_code == 200 and r.json()["type"] == "transaction-response", r.text
    obs_entry, pat_entry = r.json()["entry"]
    assert obs_entry["response"]["status"].startswith("201") and pat_entry["response"]["status"].startswith("201")
    pid = _local(pat_entry["response"]["location"]).split("/")[-1]
    assert http.get(_local(obs_entry["response"]["location"])).json()["subject"] == {"reference": f"Patient/{pid}"}
    r = _tx(http, [{"resource": _obs(f"Patient?identifier={MRN}|{n('t1')}"), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    assert http.get(_local(r.json()["entry"][0]["response"]["location"])).json()["subject"]["reference"] == f"Patient/{pid}"
    r = _tx(http, [{"resource": _obs(f"Patient?identifier={MRN}|{n('nobody')}"), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code in (400, 404, 412) and r.json()["resourceType"] == "OperationOutcome", r.text
    # an existing match of ifNoneExist: 200, and the urn:uuid points at the existing patient
    r = _tx(http, [
        {"fullUrl": "urn:uuid:33333333-3333-3333-3333-333333333333", "resource": _patient(n("t1")),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{n('t1')}"}},
        {"resource": _obs("urn:uuid:33333333-3333-3333-3333-333333333333"), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("200"), r.text
    assert http.get(_local(r.json()["entry"][1]["response"]["location"])).json()["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_is_all_or_nothing(http: TestClient, names: Names) -> None:
    n = names.number
    r = _tx(http, [{"resource": {"resourceType": "Patient", "id": n("aon")}, "request": {"method": "PUT", "url": f"Patient/{n('aon')}"}},
                   {"resource": {"resourceType": "Patient", "gender": "bogus"}, "request": {"method": "POST", "url": "Patient"}}])
    assert r.status_code in (400, 422) and r.json()["resourceType"] == "OperationOutcome", r.text
    assert http.get(f"/fhir/Patient/{n('aon')}").status_code == 404
    assert http.put(f"/fhir/Patient/{n('keep')}", json={"resourceType": "Patient", "id": n("keep")}).status_code == 201
    r = _tx(http, [{"request": {"method": "DELETE", "url": f"Patient/{n('keep')}"}},
                   {"resource": {"resourceType": "Patient", "id": n("k2")}, "request": {"method": "PUT", "url": f"Patient/{n('k2')}",
                                                                                  "ifMatch": 'W/"7"'}}])
    assert r.status_code == 412, r.text
    assert http.get(f"/fhir/Patient/{n('keep')}").status_code == 200  # the deletion was undone
    r = _tx(http, [{"resource": {"resourceType": "Patient", "id": n("dup")}, "request": {"method": "PUT", "url": f"Patient/{n('dup')}"}},
                   {"resource": {"resourceType": "Patient", "id": n("dup")}, "request": {"method": "PUT", "url": f"Patient/{n('dup')}"}}])
    assert r.status_code == 400 and http.get(f"/fhir/Patient/{n('dup')}").status_code == 404


def test_transaction_reads_run_after_its_writes(http: TestClient, names: Names) -> None:
    """http.html#trules: GETs are processed last, whatever the entries' order; responses keep the order."""
    n = names.number
    r = _tx(http, [
        {"request": {"method": "GET", "url": f"Patient/{n('new1')}"}},
        {"resource": {"resourceType": "Patient", "id": n("new1"), "gender": "male"}, "request": {"method": "PUT", "url": f"Patient/{n('new1')}"}}])
    assert r.status_code == 200, r.text
    got, put = r.json()["entry"]
    assert got["resource"]["gender"] == "male" and put["response"]["status"].startswith("201")


def test_transaction_deletes_before_its_conditional_create_looks(http: TestClient, names: Names) -> None:
    """http.html#trules (R4): "Process any DELETE interactions, then any POST interactions, then PUT/PATCH,
    then GET", and "if any resource identities (including resolved identities from conditional
    update/delete) overlap in steps 1-3, then the transaction SHALL fail". A transaction that deletes
    Patient/old and creates a patient "if none exists" with old's identifier must either find none (old
    is gone first) and create one, or fail whole (the conditional create resolved to the deleted
    identity). huren did neither: the POST answered "200 OK Patient/old" and the Observation whose subject
    was that entry's urn:uuid was stored pointing at Patient/old -- deleted by the same transaction
    (410). No patient holds the identifier afterwards, and the new result hangs on a deleted record."""
    n = names.number
    mine = [{"system": OBS, "value": n("obs")}]  # counted among this test's own
    assert http.put(f"/fhir/Patient/{n('old')}", json={**_patient(n("o1")), "id": n("old")}).status_code == 201
    new = "urn:uuid:44444444-4444-4444-4444-444444444444"
    r = _tx(http, [
        {"fullUrl": new, "resource": _patient(n("o1")),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|{n('o1')}"}},
        {"resource": _obs(new, identifier=mine), "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": f"Patient/{n('old')}"}},
        {"request": {"method": "GET", "url": f"Patient?identifier={MRN}|{n('o1')}"}}])
    if r.status_code != 200:  # failed whole: nothing changed
        assert r.status_code in (400, 409, 412, 422) and r.json()["resourceType"] == "OperationOutcome", r.text
        assert http.get(f"/fhir/Patient/{n('old')}").status_code == 200
        assert http.get(f"/fhir/Observation?identifier={OBS}|{n('obs')}").json()["total"] == 0
        return
    post, obs, deleted, found = r.json()["entry"]
    assert deleted["response"]["status"].startswith(("200", "204"))
    subject = http.get(_local(obs["response"]["location"])).json()["subject"]["reference"]
    assert http.get(f"/fhir/{subject}").status_code == 200, f"the new result's subject {subject} is deleted"
    assert post["response"]["status"].startswith("201"), post["response"]
    assert found["resource"]["total"] == 1


def test_batch_entries_are_independent(http: TestClient, names: Names) -> None:
    n = names.number
    r = _tx(http, [{"resource": {"resourceType": "Patient", "id": n("b1")}, "request": {"method": "PUT", "url": f"Patient/{n('b1')}"}},
                   {"resource": {"resourceType": "Patient", "gender": "bogus"}, "request": {"method": "POST", "url": "Patient"}},
                   {"request": {"method": "GET", "url": f"Patient/{n('nope')}"}}], "batch")
    assert r.status_code == 200 and r.json()["type"] == "batch-response", r.text
    statuses = [e["response"]["status"][:3] for e in r.json()["entry"]]
    assert statuses == ["201", "422", "404"]
    assert r.json()["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert http.get(f"/fhir/Patient/{n('b1')}").status_code == 200


def test_a_relative_reference_to_a_posted_entry_with_an_absolute_fullurl_is_rewritten(http: TestClient, names: Names) -> None:
    """bundle.html#references (R4, "Resolving references in Bundles"): a relative reference in an entry
    whose fullUrl is an absolute RESTful URL is resolved against that base -- ``Patient/tmp1`` in the entry
    ``https://huren.example/fhir/Observation/tmp2`` names ``https://huren.example/fhir/Patient/tmp1``,
    the Patient entry being POSTed; http.html#trules: when the server gives a POSTed resource its new id it
    SHALL update the references to it. huren rewrote only the absolute spelling: the new result kept
    ``Patient/tmp1`` -- here another person's record, so a new patient's result is filed under someone else."""
    n = names.number
    tmp1 = n("tmp1")
    other = {"resourceType": "Patient", "id": tmp1, "name": [{"family": "他人"}]}
    assert http.put(f"/fhir/Patient/{tmp1}", json=other).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{BASE}Patient/{tmp1}", "resource": _patient(n("n1")), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": f"{BASE}Observation/{n('tmp2')}", "resource": _obs(f"Patient/{tmp1}"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": _obs(f"{BASE}Patient/{tmp1}"), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code == 200, r.text
    pat, rel, absolute = r.json()["entry"]
    new = _local(pat["response"]["location"]).split("/")[-1]
    assert new != tmp1
    assert http.get(_local(absolute["response"]["location"])).json()["subject"]["reference"] == f"Patient/{new}"
    assert http.get(_local(rel["response"]["location"])).json()["subject"]["reference"] == f"Patient/{new}"


def test_a_urn_uuid_reference_that_nothing_in_the_bundle_defines_is_refused(http: TestClient, names: Names) -> None:
    """A ``urn:uuid:`` reference is a placeholder for an entry of the same Bundle (bundle.html#references,
    http.html#trules: the server replaces it by the id it assigns); stored as it is, it resolves nowhere,
    ever. R4 batch (http.html#transaction): "there SHALL be no interdependencies between the different
    entries", so a batch entry pointing at another's urn:uuid cannot be resolved either. huren stored
    the placeholder as the result's subject (transaction 200, batch 201, plain POST 201): a result of
    no patient, which no search by patient will find. Refused (4xx) is the answer asked for here."""
    n = names.number
    mine = [{"system": OBS, "value": n("obs")}]  # counted among this test's own
    ghost = "urn:uuid:66666666-6666-6666-6666-666666666666"
    r = _tx(http, [{"resource": _obs(ghost, identifier=mine), "request": {"method": "POST", "url": "Observation"}}])
    assert r.status_code in (400, 404, 422), r.text
    r = _tx(http, [{"fullUrl": "urn:uuid:77777777-7777-7777-7777-777777777777", "resource": _patient(n("b9")),
                    "request": {"method": "POST", "url": "Patient"}},
                   {"resource": _obs("urn:uuid:77777777-7777-7777-7777-777777777777", identifier=mine),
                    "request": {"method": "POST", "url": "Observation"}}], "batch")
    assert r.status_code == 200, r.text
    assert r.json()["entry"][1]["response"]["status"][:1] == "4", r.json()["entry"][1]
    r = http.post("/fhir/Observation", json=_obs(ghost, identifier=mine))
    assert r.status_code in (400, 422), r.text
    assert http.get(f"/fhir/Observation?identifier={OBS}|{n('obs')}").json()["total"] == 0


def test_concurrent_if_match_and_conditional_creates_lose_nothing(module_eng: Engine, http: TestClient, names: Names) -> None:
    """http.html#concurrency: of sixteen updates all sent with If-Match W/"1", one wins and fifteen get 412;
    of sixteen conditional creates of one identifier, one creates and fifteen find it (no duplicate).
    SQLite only: on mongomock this came out wrong in about one run of six (two 200s for W/"1", two 201s
    for one identifier) -- whether that is mongomock's own thread safety or the MongoDB backend's
    check-then-write is not settled here (no real MongoDB on this machine); a flaky test is not kept."""
    n = names.number
    cc = n("cc")
    from concurrent.futures import ThreadPoolExecutor

    if module_eng.settings.mongodb_uri:
        pytest.skip("SQLite only (see the docstring)")

    assert http.put(f"/fhir/Patient/{cc}", json={"resourceType": "Patient", "id": cc}).status_code == 201
    with TestClient(create_app(module_eng)) as other:
        other.headers["Authorization"] = http.headers["Authorization"]

        def update(i: int) -> int:
            body = {"resourceType": "Patient", "id": cc, "name": [{"family": f"n{i}"}]}
            return other.put(f"/fhir/Patient/{cc}", json=body, headers={"If-Match": 'W/"1"'}).status_code

        def create(_: int) -> int:
            return other.post("/fhir/Patient", json=_patient(n("race")),
                              headers={"If-None-Exist": f"identifier={MRN}|{n('race')}"}).status_code

        with ThreadPoolExecutor(8) as pool:
            updates = sorted(pool.map(update, range(16)))
            creates = sorted(pool.map(create, range(16)))
    assert updates == [200] + [412] * 15
    assert http.get(f"/fhir/Patient/{cc}").json()["meta"]["versionId"] == "2"
    assert creates == [200] * 15 + [201]
    assert http.get(f"/fhir/Patient?identifier={MRN}|{n('race')}").json()["total"] == 1
