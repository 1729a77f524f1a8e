"""Confidentiality labels in a Bundle are decided entry by entry (nineteenth round, labels19).

Found wrong: whether a search must leave out the records labelled R/V was asked once per request
(one count per type), so within one Bundle a search entry after a record got its label -- the
Bundle's own write, or another writer's meanwhile -- listed and counted that record, which a read
of it in the same Bundle answered 404. Each search now asks for itself. Also kept: a labelled read
is refused on its own entry in a batch (the others answered), and a transaction that reaches one
is refused whole, nothing of it written.

Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _obs(oid: str, code: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/zhang"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
        "performer": [{"reference": "Organization/fnxrmyy"}], "valueQuantity": {"value": 5.5, "unit": "mmol/L"}}
    if code:
        obs["meta"] = {"security": [{"system": CONF, "code": code}]}
    return obs


@pytest.fixture
def world(tmp_path: Any) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                     {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]}, _obs("open")):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text
        token, _ = engine.auth.issue_token(subject="dr-wang", kind="user", client_id="ward-app",
                                           scopes=["user/Observation.cruds", "user/Patient.rs"])
        yield engine, http, system, {"Authorization": f"Bearer {token}"}
    engine.close()


def _search_ids(entry: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in entry["resource"].get("entry") or ()}


def test_a_search_entry_after_a_label_was_set_leaves_the_record_out(world: Any) -> None:
    _, http, system, clinician = world
    search = {"request": {"method": "GET", "url": "Observation?subject=Patient/zhang"}}
    r = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        search,
        {"request": {"method": "PUT", "url": "Observation/psych"}, "resource": _obs("psych", "R")},
        search,
        {"request": {"method": "POST", "url": "Observation/_search?subject=Patient/zhang&_summary=count"}},
        {"request": {"method": "GET", "url": "Observation/psych"}}]}, headers=clinician)
    assert r.status_code == 200, r.text
    before, written, after, count, read = r.json()["entry"]
    assert written["response"]["status"] == "201 Created"
    assert _search_ids(before) == {"open"}
    assert read["response"]["status"].startswith("404")  # the read of it, in the same Bundle
    assert (_search_ids(after), after["resource"]["total"]) == ({"open"}, 1), after  # was {"open", "psych"}, 2
    assert count["resource"]["total"] == 1, count
    # the same search over HTTP agrees; the hospital's system reads the record as sent
    over_http = http.get("/fhir/Observation?subject=Patient/zhang", headers=clinician).json()
    assert over_http["total"] == 1
    assert http.get("/fhir/Observation/psych", headers=system).status_code == 200


def test_a_labelled_read_is_refused_on_its_own_entry_and_a_transaction_whole(world: Any) -> None:
    _, http, system, clinician = world
    assert http.put("/fhir/Observation/psych", json=_obs("psych", "V"), headers=system).status_code == 201
    r = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/psych"}},
        {"request": {"method": "GET", "url": "Observation/open"}},
        {"request": {"method": "DELETE", "url": "Observation/psych"}},
        {"request": {"method": "PUT", "url": "Observation/new-1"}, "resource": _obs("new-1")}]}, headers=clinician)
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["404", "200", "404", "201"], r.text
    assert http.get("/fhir/Observation/psych", headers=system).status_code == 200  # not deleted
    # a transaction that reads it, or writes over it, is refused whole: nothing of it is written
    for reaching in ({"request": {"method": "GET", "url": "Observation/psych"}},
                     {"request": {"method": "PUT", "url": "Observation/psych"}, "resource": _obs("psych")}):
        r = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "PUT", "url": "Observation/new-2"}, "resource": _obs("new-2")}, reaching]},
            headers=clinician)
        assert r.status_code == 404, r.text
        assert http.get("/fhir/Observation/new-2", headers=system).status_code == 404
    assert http.get("/fhir/Observation/psych", headers=system).json()["meta"]["security"][0]["code"] == "V"
