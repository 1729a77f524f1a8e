"""Identity over HTTP: Patient.link after ingest, $match, $ihe-pix and operator $link/$unlink.

Patients are written through the real repository (so the MPI write hook runs inside the write
transaction, as at ingest); the operations are called over HTTP with real tokens.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.identity.nationalid import check_character

pytest.importorskip("engine.repository.fhir", reason="needs the FHIR repository on main")

from engine.api.app import create_app  # noqa: E402

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"


def nid(base17: str) -> str:
    return base17 + check_character(base17)


ZHANG = nid("32092319900101123")
LI = nid("32092319921120004")


def patient(pid: str, inst: str, number: str | None, name: str = "张三", gender: str = "male",
            birth: str = "1990-01-01") -> dict:
    idents = [{"system": f"urn:huren:mrn:{inst}", "value": pid.upper()}]
    if number:
        idents.append({"system": ID_SYSTEM, "value": number, "type": NNCHN})
    return {"resourceType": "Patient", "id": pid, "identifier": idents, "name": [{"text": name}],
            "gender": gender, "birthDate": birth}


@pytest.fixture
def world(engine):
    repo = engine.repository
    repo.update(patient("fn-1", "FNXRMYY", ZHANG))
    repo.update(patient("fz-7", "FNZYY", ZHANG))
    warn = repo.update(patient("fz-9", "FNZYY", ZHANG, name="张山"))  # conflicting name: not linked
    repo.update(patient("fn-li", "FNXRMYY", LI, name="李四", gender="female", birth="1992-11-20"))
    assert warn.issues and warn.issues[0]["severity"] == "warning"
    return engine


@pytest.fixture
def http(world):
    with TestClient(create_app(world)) as c:
        yield c


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def resident(engine, patient_id: str) -> str:
    token, _ = engine.auth.issue_token(subject=f"person-{patient_id}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=patient_id)
    return token


def params(**kw) -> dict:
    out = []
    for name, value in kw.items():
        key = {"resource": "resource", "onlyCertainMatches": "valueBoolean", "count": "valueInteger",
               "type": "valueCode", "reason": "valueString"}.get(name, "valueReference")
        out.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": out}


def test_linked_records_carry_patient_link(world):
    repo = world.repository
    assert repo.read("Patient", "fn-1")["link"] == [{"other": {"reference": "Patient/fz-7"}, "type": "seealso"}]
    assert repo.read("Patient", "fz-7")["link"] == [{"other": {"reference": "Patient/fn-1"}, "type": "seealso"}]
    assert "link" not in repo.read("Patient", "fz-9")


def test_match_by_national_id_grades_conflicts_as_possible(http, world, client_token):
    token = client_token(world)
    query = patient("q", "X", ZHANG)
    r = http.post("/fhir/Patient/$match", json=params(resource=query), headers=auth(token))
    assert r.status_code == 200, r.text
    bundle = r.json()
    got = {e["resource"]["id"]: (e["search"]["score"], e["search"]["extension"][0]["valueCode"])
           for e in bundle["entry"]}
    assert got == {"fn-1": (1.0, "certain"), "fz-7": (1.0, "certain"), "fz-9": (0.5, "possible")}
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    r = http.post("/fhir/Patient/$match", json=params(resource=query, onlyCertainMatches=True, count=1),
                  headers=auth(token))
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["fn-1"]


def test_match_by_mrn_and_refusals(http, world, client_token):
    token = client_token(world)
    by_mrn = {"resourceType": "Patient", "identifier": [{"system": "urn:huren:mrn:FNXRMYY", "value": "FN-LI"}]}
    r = http.post("/fhir/Patient/$match", json=params(resource=by_mrn), headers=auth(token))
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["fn-li"]
    names_only = {"resourceType": "Patient", "name": [{"text": "张三"}], "birthDate": "1990-01-01"}
    r = http.post("/fhir/Patient/$match", json=params(resource=names_only), headers=auth(token))
    assert r.status_code == 422 and "no fuzzy" in r.json()["issue"][0]["diagnostics"]
    bad = patient("q", "X", ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1"))
    assert http.post("/fhir/Patient/$match", json=params(resource=bad), headers=auth(token)).status_code == 422
    assert http.post("/fhir/Patient/$match", json=query_not_parameters(), headers=auth(token)).status_code == 400
    assert http.post("/fhir/Patient/$match", json=params(resource=by_mrn)).status_code == 401


def query_not_parameters() -> dict:
    return patient("q", "X", ZHANG)


def test_pix_cross_references_the_same_person(http, world, client_token):
    token = client_token(world)
    r = http.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": "urn:huren:mrn:FNXRMYY|FN-1"},
                 headers=auth(token))
    assert r.status_code == 200, r.text
    out = r.json()["parameter"]
    idents = {(p["valueIdentifier"]["system"], p["valueIdentifier"]["value"]) for p in out
              if p["name"] == "targetIdentifier"}
    assert idents == {("urn:huren:mrn:FNZYY", "FZ-7"), (ID_SYSTEM, ZHANG)}
    assert [p["valueReference"]["reference"] for p in out if p["name"] == "targetId"] == ["Patient/fz-7"]
    r = http.get("/fhir/Patient/$ihe-pix", params=[("sourceIdentifier", "urn:huren:mrn:FNXRMYY|FN-1"),
                                                   ("targetSystem", "urn:huren:mrn:FNZYY")], headers=auth(token))
    assert [p["valueIdentifier"]["value"] for p in r.json()["parameter"] if p["name"] == "targetIdentifier"] == ["FZ-7"]
    r = http.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": "urn:huren:mrn:FNXRMYY|NOPE"},
                 headers=auth(token))
    assert r.status_code == 404
    assert http.get("/fhir/Patient/$ihe-pix", headers=auth(token)).status_code == 400


def test_residents_only_ever_see_themselves(http, world):
    li = resident(world, "fn-li")
    r = http.get("/fhir/Patient/$ihe-pix", params={"sourceIdentifier": "urn:huren:mrn:FNXRMYY|FN-1"},
                 headers=auth(li))
    assert r.status_code == 404
    r = http.post("/fhir/Patient/$match", json=params(resource=patient("q", "X", ZHANG)), headers=auth(li))
    assert r.status_code == 200 and r.json()["entry"] == []
    r = http.post("/fhir/Patient/$link", json=params(source={"reference": "Patient/fz-9"},
                                                     target={"reference": "Patient/fn-li"}, reason="x"),
                  headers=auth(li))
    assert r.status_code == 403


def test_operator_links_and_unlinks_by_hand_with_a_reason(http, world, client_token):
    op = client_token(world, "system/Patient.rus")
    body = params(source={"reference": "Patient/fz-9"}, target={"reference": "Patient/fn-1"},
                  reason="registration typo in name confirmed by phone")
    r = http.post("/fhir/Patient/$link", json=body, headers=auth(op))
    assert r.status_code == 200, r.text
    assert {p["valueReference"]["reference"] for p in r.json()["parameter"]} == {
        "Patient/fn-1", "Patient/fz-7", "Patient/fz-9"}
    assert {"other": {"reference": "Patient/fz-9"}, "type": "seealso"} in world.repository.read("Patient", "fn-1")["link"]
    log = world.store.collection("mpi_log").find({})
    assert log[-1]["actor"] == "test-system" and "typo" in log[-1]["reason"]

    r = http.post("/fhir/Patient/$unlink", json=params(source={"reference": "Patient/fz-9"}, reason="wrong person"),
                  headers=auth(op))
    assert r.status_code == 200
    assert world.identity.person_compartment("fn-1") == {"fn-1", "fz-7"}
    assert "link" not in world.repository.read("Patient", "fz-9")
    # sticky: a re-sent record does not re-link by itself
    world.repository.update(patient("fz-9", "FNZYY", ZHANG, name="张三"))
    assert world.identity.person_compartment("fz-9") == {"fz-9"}

    no_reason = params(source={"reference": "Patient/fz-9"}, target={"reference": "Patient/fn-1"})
    assert http.post("/fhir/Patient/$link", json=no_reason, headers=auth(op)).status_code == 400
    reader = client_token(world, "system/Patient.rs")
    assert http.post("/fhir/Patient/$link", json=body, headers=auth(reader)).status_code == 403
    missing = params(source={"reference": "Patient/nope"}, target={"reference": "Patient/fn-1"}, reason="x")
    assert http.post("/fhir/Patient/$link", json=missing, headers=auth(op)).status_code == 404


def test_merge_joins_compartments(http, world, client_token):
    op = client_token(world, "system/Patient.rus")
    r = http.post("/fhir/Patient/$link", json=params(source={"reference": "Patient/fz-9"},
                                                     target={"reference": "Patient/fz-7"}, type="replaced-by",
                                                     reason="duplicate registration merged"), headers=auth(op))
    assert r.status_code == 200, r.text
    assert world.identity.person_compartment("fn-1") == {"fn-1", "fz-7", "fz-9"}
    assert {"other": {"reference": "Patient/fz-7"}, "type": "replaced-by"} in world.repository.read("Patient", "fz-9")["link"]
    assert {"other": {"reference": "Patient/fz-9"}, "type": "replaces"} in world.repository.read("Patient", "fz-7")["link"]


def test_resending_a_linked_patient_makes_no_new_version(world):
    repo = world.repository
    before = len(repo.history("Patient", "fn-1"))
    repo.write_many([patient("fn-1", "FNXRMYY", ZHANG)])  # as ingest re-sends it, without links
    assert len(repo.history("Patient", "fn-1")) == before


def test_rebuild_relinks_from_the_stored_patients(world):
    links = world.store.collection("mpi_links")
    for doc in links.find({}):
        links.delete(doc["_id"])
    assert world.identity.person_compartment("fn-1") == {"fn-1"}
    assert world.identity.rebuild() == 4
    assert world.identity.person_compartment("fn-1") == {"fn-1", "fz-7"}
    assert [d["_id"] for d in world.identity.conflicts()] == ["fz-9"]
