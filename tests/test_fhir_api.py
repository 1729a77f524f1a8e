"""The /fhir REST API through real HTTP handling (FastAPI TestClient), on every storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

FHIR = "application/fhir+json"
MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"
LOINC = "http://loinc.org"


@pytest.fixture
def eng(backend_settings: Settings) -> Iterator[Engine]:
    engine = Engine(backend_settings.with_(base_url="https://huren.example"))
    yield engine
    engine.close()


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        yield client


def resident(eng: Engine, patient: str, scopes: str = "patient/*.rs") -> dict[str, str]:
    token, _ = eng.auth.issue_token(subject="resident-1", kind="patient", client_id="app", scopes=scopes.split(),
                                    patient=patient)
    return {"Authorization": "Bearer " + token}


def patient(pid: str, mrn: str, family: str = "张") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": family, "given": ["三"]}]}


def observation(pid: str, code: str, when: str, value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": when, "performer": [{"reference": "Organization/FNXRMYY"}],
            "valueQuantity": {"value": value, "unit": "g/L"}}


def put(http: TestClient, resource: dict[str, Any], **headers: str) -> Any:
    return http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                    headers={"Content-Type": FHIR, **headers})


def test_crud_versions_and_headers(http: TestClient) -> None:
    created = http.post("/fhir/Observation", json=observation("p1", "718-7", "2024-03-01", 130),
                        headers={"Content-Type": FHIR})
    assert created.status_code == 201
    assert created.headers["content-type"].startswith(FHIR)
    body = created.json()
    assert created.headers["Location"] == f"https://huren.example/fhir/Observation/{body['id']}/_history/1"
    assert created.headers["ETag"] == 'W/"1"'
    url = f"/fhir/Observation/{body['id']}"
    read = http.get(url)
    assert read.status_code == 200 and read.json() == body and read.headers["ETag"] == 'W/"1"'
    assert "GMT" in read.headers["Last-Modified"]
    body["status"] = "amended"
    stale = http.put(url, json=body, headers={"If-Match": 'W/"9"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    updated = http.put(url, json=body, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.headers["ETag"] == 'W/"2"'
    assert http.get(url + "/_history/1").json()["status"] == "final"
    hist = http.get(url + "/_history").json()
    assert hist["type"] == "history" and [e["response"]["etag"] for e in hist["entry"]] == ['W/"2"', 'W/"1"']
    assert http.delete(url).status_code == 204
    gone = http.get(url)
    assert gone.status_code == 410 and gone.json()["issue"][0]["code"] == "deleted"
    assert http.get("/fhir/Observation/unknown").status_code == 404
    assert http.get(url + "/_history/77").status_code == 404


def test_bad_requests_get_precise_outcomes_and_change_nothing(http: TestClient) -> None:
    r = http.post("/fhir/Patient", content=b"{not json", headers={"Content-Type": FHIR})
    assert r.status_code == 400 and "JSON" in r.json()["issue"][0]["diagnostics"]
    r = http.post("/fhir/Patient", json={"resourceType": "Observation"})
    assert r.status_code == 400
    r = http.post("/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415
    r = http.put("/fhir/Patient/p1", json=patient("other", "1"))
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Patient.id"]
    r = http.get("/fhir/Observation", params={"nonsense": "1"})
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["nonsense"]
    r = http.get("/fhir/Observation", params={"date": "last tuesday"})
    assert r.status_code == 400
    assert http.get("/fhir/Nonsense").status_code == 404
    assert http.get("/fhir/Nonsense/1").status_code == 404
    assert http.post("/fhir/Nonsense", json={"resourceType": "Nonsense"}).status_code == 400
    assert http.get("/fhir/Patient").json()["total"] == 0


def test_search_get_post_paging_and_conditional_create(http: TestClient) -> None:
    assert put(http, patient("p1", "0001")).status_code == 201
    assert put(http, patient("p2", "0002", family="李")).status_code == 201
    for i in range(5):
        r = http.post("/fhir/Observation", json=observation("p1", "718-7", f"2024-03-0{i + 1}", 120 + i))
        assert r.status_code == 201
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|0002"}).json()
    assert found["type"] == "searchset" and found["total"] == 1
    assert found["entry"][0]["fullUrl"] == "https://huren.example/fhir/Patient/p2"
    latest = http.get("/fhir/Observation", params=[("subject", "Patient/p1"), ("code", f"{LOINC}|718-7"),
                                                     ("_sort", "-date"), ("_count", "2")]).json()
    assert [e["resource"]["effectiveDateTime"] for e in latest["entry"]] == ["2024-03-05", "2024-03-04"]
    nxt = next(ln["url"] for ln in latest["link"] if ln["relation"] == "next")
    assert nxt.startswith("https://huren.example/fhir/Observation?")
    page2 = http.get(nxt.removeprefix("https://huren.example")).json()
    assert [e["resource"]["effectiveDateTime"] for e in page2["entry"]] == ["2024-03-03", "2024-03-02"]
    posted = http.post("/fhir/Observation/_search", content="subject=p1&_summary=count",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert posted["total"] == 5 and "entry" not in posted
    chained = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{MRN}|0001",
                                                    "_count": "1", "_include": "Observation:subject"}).json()
    assert [e["search"]["mode"] for e in chained["entry"]] == ["match", "include"]
    new = {k: v for k, v in patient("x", "0003").items() if k != "id"}
    first = http.post("/fhir/Patient", json=new, headers={"If-None-Exist": f"identifier={MRN}|0003"})
    again = http.post("/fhir/Patient", json=new, headers={"If-None-Exist": f"identifier={MRN}|0003"})
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    fhirpy_form = http.post(f"/fhir/Patient?identifier={MRN}|0003", json=new)
    assert fhirpy_form.status_code == 200 and fhirpy_form.json()["id"] == first.json()["id"]
    cond = http.put(f"/fhir/Patient?identifier={MRN}|0002", json=patient("p2", "0002", family="王"))
    assert cond.status_code == 200 and cond.json()["name"][0]["family"] == "王"


def test_transaction_and_batch_at_the_base(http: TestClient, eng: Engine) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient("p9", "0009"),
         "request": {"method": "PUT", "url": "Patient/p9"}},
        {"resource": observation("p9", "718-7", "2024-01-01", 99)
         | {"subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200 and r.json()["type"] == "transaction-response"
    loc = r.json()["entry"][1]["response"]["location"]
    assert http.get("/fhir/" + loc).json()["subject"]["reference"] == "Patient/p9"
    bad = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("p10", "0010"), "request": {"method": "PUT", "url": "Patient/p10"}},
        {"request": {"method": "DELETE", "url": "Patient/p9"}},
        {"resource": patient("p9", "0009"), "request": {"method": "PUT", "url": "Patient/p9", "ifMatch": 'W/"5"'}},
    ]}
    r = http.post("/fhir", json=bad)
    assert r.status_code == 412 and "entry[2]" in r.json()["issue"][0]["diagnostics"]
    assert http.get("/fhir/Patient/p10").status_code == 404  # preconditions are checked before any write
    assert http.get("/fhir/Patient/p9").status_code == 200
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p9"}},
        {"request": {"method": "GET", "url": "Patient/none"}},
    ]}
    r = http.post("/fhir", json=batch).json()
    assert [e["response"]["status"] for e in r["entry"]] == ["200 OK", "404 Not Found"]


def test_scopes_and_resident_compartment(http: TestClient, eng: Engine, client_token: Any) -> None:
    put(http, patient("p1", "0001"))
    put(http, patient("p2", "0002"))
    mine = http.post("/fhir/Observation", json=observation("p1", "718-7", "2024-03-01", 130)).json()
    theirs = http.post("/fhir/Observation", json=observation("p2", "718-7", "2024-03-01", 140)).json()
    assert http.get("/fhir/Patient", headers={"Authorization": ""}).status_code == 401
    read_only = {"Authorization": "Bearer " + client_token(eng, "system/Observation.rs")}
    assert http.get(f"/fhir/Observation/{mine['id']}", headers=read_only).status_code == 200
    assert http.post("/fhir/Observation", json=observation("p1", "1", "2024", 1), headers=read_only).status_code == 403
    assert http.get("/fhir/Patient/p1", headers=read_only).status_code == 403
    me = resident(eng, "p1")
    assert http.get(f"/fhir/Observation/{mine['id']}", headers=me).status_code == 200
    assert http.get(f"/fhir/Observation/{theirs['id']}", headers=me).status_code == 404
    assert http.get("/fhir/Patient/p2", headers=me).status_code == 404
    listed = http.get("/fhir/Observation", headers=me).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [mine["id"]]
    assert http.get("/fhir/Observation", params={"subject": "p2"}, headers=me).json()["total"] == 0
    assert http.post("/fhir/Observation", json=observation("p1", "1", "2024", 1), headers=me).status_code == 403
    assert http.delete(f"/fhir/Observation/{mine['id']}", headers=me).status_code == 403
    everything = http.get("/fhir/Patient/p1/$everything", headers=me)
    assert everything.status_code == 200
    assert sorted(e["resource"]["resourceType"] for e in everything.json()["entry"]) == ["Observation", "Patient"]
    assert http.get("/fhir/Patient/p2/$everything", headers=me).status_code == 404
    assert http.get("/fhir/Patient/p2/$everything").json()["total"] == 2
    smuggle = {"resourceType": "Bundle", "type": "batch",
               "entry": [{"request": {"method": "GET", "url": f"Observation/{theirs['id']}"}}]}
    r = http.post("/fhir", json=smuggle, headers=me).json()
    assert r["entry"][0]["response"]["status"] == "404 Not Found"


def test_every_interaction_is_audited(http: TestClient, eng: Engine) -> None:
    before = eng.audit.size
    put(http, patient("p1", "0001"))
    http.get("/fhir/Patient/p1")
    http.get("/fhir/Patient", params={"identifier": f"{MRN}|0001"})
    http.get("/fhir/Patient/p1/$everything")
    assert eng.audit.size - before == 4
    events = eng.repository.search("AuditEvent", [("patient", "Patient/p1")])
    assert events.total == 4
