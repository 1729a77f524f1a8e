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
