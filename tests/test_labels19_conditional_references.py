"""Conditional references (``Patient?identifier=…``) are resolved in a transaction, refused elsewhere.

Found wrong (labels19): R4 lets a transaction entry reference a record by a search ("conditional
reference", resolved to its one match, the transaction failing otherwise); huren stored the
search text itself as the reference -- in a transaction and in a plain create alike -- so the
Encounter pointed at nothing: not in its patient's compartment, searches or ``$everything``. Now a
transaction resolves each one as the caller's own search (none or several matches: 412, nothing
written; a record withheld from the caller matches nothing), and a batch entry, a create or an
update carrying one is a 400. Real HTTP, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
MRN = "urn:huren:mrn:FNXRMYY"


def _encounter(subject: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished", "subject": {"reference": subject},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}


def _patient(pid: str, mrn: str, label: str | None = None) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "identifier": [{"system": MRN, "value": mrn}]}
    if label:
        patient["meta"] = {"security": [{"system": CONF, "code": label}]}
    return patient


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("labels19-cref") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in (_patient("zhang", "A-1"), _patient("twin-1", "A-2"), _patient("twin-2", "A-2"),
                     _patient("hidden", "A-3", "R")):
            assert http.put(f"/fhir/Patient/{body['id']}", json=body, headers=system).status_code == 201
        yield engine, http, system
    engine.close()


def _count(http: TestClient, headers: dict[str, str]) -> int:
    return http.get("/fhir/Encounter?_summary=count", headers=headers).json()["total"]


def _transaction(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}


def test_a_transaction_resolves_a_conditional_reference_to_its_one_match(world: Any) -> None:
    _, http, system = world
    r = http.post("/fhir", json=_transaction(_encounter(f"Patient?identifier={MRN}|A-1")), headers=system)
    assert r.status_code == 200, r.text
    location = r.json()["entry"][0]["response"]["location"].split("/_history")[0]
    assert http.get(f"/fhir/{location}", headers=system).json()["subject"] == {"reference": "Patient/zhang"}
    found = http.get("/fhir/Encounter?subject=Patient/zhang", headers=system).json()
    assert found["total"] == 1  # was 0: the search text was stored as the reference


def test_none_or_several_matches_fail_the_transaction_whole(world: Any) -> None:
    engine, http, system = world
    before = _count(http, system)
    token, _ = engine.auth.issue_token(subject="dr-li", kind="user", client_id="ward",
                                       scopes=["user/Encounter.cruds", "user/Patient.rs"])
    clinician = {"Authorization": f"Bearer {token}"}
    for who, ref in ((system, f"Patient?identifier={MRN}|A-9"), (system, f"Patient?identifier={MRN}|A-2"),
                     (clinician, f"Patient?identifier={MRN}|A-3")):  # labelled R, not the clinician's to match
        r = http.post("/fhir", json=_transaction(_encounter(f"Patient?identifier={MRN}|A-1"), _encounter(ref)),
                      headers=who)
        assert r.status_code == 412 and r.json()["resourceType"] == "OperationOutcome", (ref, r.text)
        assert "hidden" not in r.text
    assert _count(http, system) == before


def test_a_conditional_reference_outside_a_transaction_is_refused(world: Any) -> None:
    _, http, system = world
    before = _count(http, system)
    ref = f"Patient?identifier={MRN}|A-1"
    assert http.post("/fhir/Encounter", json=_encounter(ref), headers=system).status_code == 400
    assert http.put("/fhir/Encounter/e1", json={**_encounter(ref), "id": "e1"}, headers=system).status_code == 400
    r = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _encounter(ref), "request": {"method": "POST", "url": "Encounter"}},
        {"resource": _encounter("Patient/zhang"), "request": {"method": "POST", "url": "Encounter"}}]}, headers=system)
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["400", "201"], r.text
    assert _count(http, system) == before + 1
