"""A search of AuditEvents by ``entity`` must not confirm to a resident that a record withheld from
him by a label exists: his events of a hospital's read of his V result stay (naming no record), but
``entity=Observation/obs-zhang-v`` answered total 1 where a guessed id that exists nowhere answers 0.
Every form that names the target (plain, full URL, ``:Type``, bare id, a chain, ``_summary=count``)
now answers as for the missing id; his ordinary result's reads are still found by it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_audit_views import _obs, bearer, resident, world

__all__ = ["world"]

V = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}


@pytest.fixture
def http(world: Any) -> TestClient:
    obs = _obs("obs-zhang-v", "pt-zhang")
    obs["meta"] = V
    world.repository.update(obs)
    client = TestClient(create_app(world))
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert client.get("/fhir/Observation/obs-zhang-v", headers=his).status_code == 200
    assert client.get("/fhir/Observation/obs-zhang", headers=his).status_code == 200
    return client


def _total(http: TestClient, headers: dict[str, str], query: str) -> tuple[int, int]:
    plain = http.get(f"/fhir/AuditEvent?{query}", headers=headers)
    count = http.get(f"/fhir/AuditEvent?{query}&_summary=count", headers=headers)
    assert plain.status_code == 200 and count.status_code == 200, (plain.text, count.text)
    assert len(plain.json().get("entry") or []) == plain.json()["total"]
    return plain.json()["total"], count.json()["total"]


@pytest.mark.parametrize("query", [
    "entity=Observation/obs-zhang-v",
    "entity={base}/Observation/obs-zhang-v",
    "entity:Observation=obs-zhang-v",
    "entity=obs-zhang-v",
    "entity:Observation._id=obs-zhang-v",
    "entity:Observation.code=http://loinc.org|2345-7&entity=Observation/obs-zhang-v",
])
def test_an_entity_search_for_my_withheld_record_answers_as_for_none(world: Any, http: TestClient, query: str) -> None:
    zhang = resident(world, "pt-zhang")
    query = query.format(base=world.settings.fhir_base_url)
    missing = query.replace("obs-zhang-v", "obs-nonexist")
    assert _total(http, zhang, missing) == (0, 0)
    assert _total(http, zhang, query) == (0, 0)


def test_my_ordinary_record_is_still_found_and_a_mixed_list_keeps_it(world: Any, http: TestClient) -> None:
    zhang = resident(world, "pt-zhang")
    alone = _total(http, zhang, "entity=Observation/obs-zhang")
    assert alone[0] >= 1 and alone[0] == alone[1]
    # "his or the withheld one" is "his or one that does not exist"
    assert _total(http, zhang, "entity=Observation/obs-zhang,Observation/obs-zhang-v") == alone
    assert _total(http, zhang, "entity=Observation/obs-zhang,Observation/obs-nonexist") == alone
    assert "obs-zhang-v" not in http.get("/fhir/AuditEvent?entity=Observation/obs-zhang", headers=zhang).text
    # the hospital, shown every label, still finds its read by the record
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert http.get("/fhir/AuditEvent?entity=Observation/obs-zhang-v", headers=his).json()["total"] >= 1


def test_a_family_member_is_not_told_of_a_restricted_or_very_restricted_record(world: Any, http: TestClient) -> None:
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.cruds"))
    obs = _obs("obs-zhang-r", "pt-zhang")
    obs["meta"] = {"security": [{**V["security"][0], "code": "R"}]}
    related = {"resourceType": "RelatedPerson", "id": "sun", "patient": {"reference": "Patient/pt-zhang"},
               "identifier": [{"system": "urn:huren:family", "value": "person-sun"}], "active": True}
    consent = {"resourceType": "Consent", "id": "grant", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                     "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": "Patient/pt-zhang"},
               "provision": {"type": "permit", "actor": [{"role": {"text": "proxy"},
                                                          "reference": {"reference": "RelatedPerson/sun"}}]}}
    for body in (obs, related, consent):
        assert http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=his).status_code == 201
    assert http.get("/fhir/Observation/obs-zhang-r", headers=his).status_code == 200
    token, _ = world.auth.issue_token(subject="person-sun", kind="patient", client_id="phr", scopes=["patient/*.rs"],
                                      patient="pt-zhang", person="person-sun", extra={"acting": "sun", "consent": "grant"})
    son = bearer(token)
    assert http.get("/fhir/Observation/obs-zhang-r", headers=son).status_code == 404
    for rid in ("obs-zhang-r", "obs-zhang-v"):
        assert _total(http, son, f"entity=Observation/{rid}") == (0, 0), rid
    assert _total(http, son, "entity=Observation/obs-zhang")[0] >= 1
    # 张三 himself is shown R: his record's reads are his to find
    assert _total(http, resident(world, "pt-zhang"), "entity=Observation/obs-zhang-r")[0] >= 1
