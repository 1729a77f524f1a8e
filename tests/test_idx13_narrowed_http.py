"""``patient`` kept once, under ``subject``: every search a client can send by it, over HTTP, on every backend.

R4 defines ``Observation.patient`` as ``Observation.subject.where(resolve() is Patient)`` (and the
same for DiagnosticReport, ServiceRequest, Specimen, ...; ``Provenance.patient`` is ``target`` of
type Patient). The store keeps such a reference once, under the wider parameter, and answers the
narrow one from it (``SearchParams.narrowed``, ``query.widen``). These requests go through the
real app (FastAPI, the auth layer, the search parser) into the real store, SQLite and mongomock,
and each answer is checked in full: a missing ``subject`` row, a ``patient`` row read as if it were
any ``subject`` (a Group with the patient's id), or a narrowed parameter's compartment, chain,
include, sort or ``:missing`` answered from the wrong rows, fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_fhir_api import FHIR, LOINC, MRN, eng

__all__ = ["eng"]  # the engine fixture of the FHIR API tests (SQLite and mongomock), used by name

OTHER = "http://other.example/fhir/Patient/9"


@pytest.fixture
def http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        _seed(client, eng)
        yield client


def _obs(oid: str, subject: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": subject},
            "effectiveDateTime": "2024-03-01",
            "performer": [{"reference": "Organization/org-a"}], **extra}


def _seed(http: TestClient, eng: Engine) -> None:
    """p1 and p2; o1, o2 of p1, o4 of p2; g-obs of a Group whose id is p1's; u-obs of a patient on
    another server; perf-obs of the Group, performed by p1 (in p1's compartment, not p1's
    ``patient``); a report and a Provenance naming p2. huren's profiles refuse an Observation
    whose subject is not a local Patient, so the three odd ones are written to the same store by
    a repository without them (as R4 data from elsewhere could be)."""
    from engine.repository.fhir import FhirRepository

    plain = FhirRepository(eng.store, base_url=eng.repository.base_url, params=eng.repository.params)
    for odd in (_obs("g-obs", "Group/p1", "718-7"), _obs("u-obs", OTHER, "718-7"),
                _obs("perf-obs", "Group/p1", "2345-7",
                     performer=[{"reference": "Organization/org-a"}, {"reference": "Patient/p1"}])):
        plain.update(odd)
    resources = [
        {"resourceType": "Patient", "id": "p1", "identifier": [{"system": MRN, "value": "0001"}],
         "name": [{"family": "张", "given": ["三"]}]},
        {"resourceType": "Patient", "id": "p2", "identifier": [{"system": MRN, "value": "0002"}],
         "name": [{"family": "李", "given": ["四"]}]},
        _obs("o1", "Patient/p1", "718-7"), _obs("o2", "Patient/p1", "2345-7"), _obs("o4", "Patient/p2", "718-7"),
        {"resourceType": "DiagnosticReport", "id": "r2", "status": "final", "code": {"text": "血常规"},
         "subject": {"reference": "Patient/p2"}, "result": [{"reference": "Observation/o4"}]},
        {"resourceType": "Provenance", "id": "prov2", "target": [{"reference": "Patient/p2"},
                                                                 {"reference": "Observation/o4"}],
         "recorded": "2024-03-01T09:00:00Z", "agent": [{"who": {"reference": "Organization/org-a"}}]},
    ]
    for r in resources:
        got = http.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers={"Content-Type": FHIR})
        assert got.status_code in (200, 201), got.text


def _ids(http: TestClient, path: str, **params: str) -> list[str]:
    got = http.get(path, params=params)
    assert got.status_code == 200, got.text
    return [e["resource"]["id"] for e in got.json().get("entry", [])]


def _found(http: TestClient, rtype: str, **params: str) -> list[str]:
    return sorted(_ids(http, f"/fhir/{rtype}", **params))


def test_patient_and_subject_of_type_patient_answer_from_one_row(http: TestClient) -> None:
    p1 = ["o1", "o2"]
    assert _found(http, "Observation", patient="p1") == p1  # not g-obs: a Group with p1's id
    assert _found(http, "Observation", patient="Patient/p1") == p1
    assert _found(http, "Observation", patient="https://huren.example/fhir/Patient/p1") == p1
    assert _found(http, "Observation", **{"patient:Patient": "p1"}) == p1
    assert _found(http, "Observation", **{"subject:Patient": "p1"}) == p1
    assert _found(http, "Observation", subject="Patient/p1") == p1
    assert _found(http, "Observation", subject="p1") == ["g-obs", "o1", "o2", "perf-obs"]  # any type with that id
    assert _found(http, "Observation", subject="Group/p1") == ["g-obs", "perf-obs"]
    assert _found(http, "Observation", patient="p1,p2", code="718-7") == ["o1", "o4"]
    assert _found(http, "Observation", patient=OTHER) == ["u-obs"]
    assert _found(http, "DiagnosticReport", patient="p2") == ["r2"]
    assert _found(http, "Provenance", patient="p2") == ["prov2"]
    assert _found(http, "Provenance", patient="Observation/o4") == []
    assert _found(http, "Provenance", target="Patient/p2") == ["prov2"]
    assert _found(http, "Provenance", target="Observation/o4") == ["prov2"]


def test_chains_reverse_chains_and_includes_through_patient(http: TestClient) -> None:
    assert _found(http, "Observation", **{"patient.identifier": f"{MRN}|0002"}) == ["o4"]
    assert _found(http, "Observation", **{"subject:Patient.name": "李"}) == ["o4"]
    assert _found(http, "Observation", **{"patient.name": "张", "code": "2345-7"}) == ["o2"]
    got = http.get("/fhir/Patient", params={"_id": "p2", "_revinclude": "Observation:patient"}).json()
    assert sorted(e["resource"]["id"] for e in got["entry"]) == ["o4", "p2"]
    got = http.get("/fhir/Patient", params={"_id": "p1", "_revinclude": "Observation:patient"}).json()
    assert sorted(e["resource"]["id"] for e in got["entry"]) == ["o1", "o2", "p1"]
    got = http.get("/fhir/Observation", params={"_id": "o4,g-obs", "_include": "Observation:patient"}).json()
    assert sorted(e["resource"]["id"] for e in got["entry"]) == ["g-obs", "o4", "p2"]


def test_missing_and_sort_by_patient(http: TestClient) -> None:
    assert _found(http, "Observation", **{"patient:missing": "true"}) == ["g-obs", "perf-obs"]
    assert _found(http, "Observation", **{"patient:missing": "false"}) == ["o1", "o2", "o4", "u-obs"]
    assert _found(http, "Observation", **{"subject:missing": "true"}) == []
    ordered = _ids(http, "/fhir/Observation", code="718-7", _sort="patient,_id")
    by_patient = [i for i in ordered if i in ("o1", "o4")]
    assert by_patient == ["o1", "o4"]  # Patient/p1 before Patient/p2
    ordered = _ids(http, "/fhir/Observation", code="718-7", _sort="-patient,_id")
    assert [i for i in ordered if i in ("o1", "o4")] == ["o4", "o1"]


def test_compartments_everything_and_the_residents_own(http: TestClient, eng: Engine) -> None:
    assert _found(http, "Observation", _count="50") == ["g-obs", "o1", "o2", "o4", "perf-obs", "u-obs"]
    assert sorted(_ids(http, "/fhir/Patient/p2/$everything")) == ["o4", "p2", "prov2", "r2"]
    assert sorted(_ids(http, "/fhir/Patient/p1/$everything")) == ["o1", "o2", "p1", "perf-obs"]
    token, _ = eng.auth.issue_token(subject="resident-2", kind="patient", client_id="app",
                                    scopes=["patient/*.rs"], patient="p2")
    me = {"Authorization": "Bearer " + token}
    mine = http.get("/fhir/Observation", headers=me).json()
    assert sorted(e["resource"]["id"] for e in mine.get("entry", [])) == ["o4"]
    assert http.get("/fhir/Observation", params={"patient": "p1"}, headers=me).json()["total"] == 0
    assert http.get("/fhir/Observation", params={"subject": "Group/p1"}, headers=me).json()["total"] == 0
    reports = http.get("/fhir/DiagnosticReport", params={"patient": "p2"}, headers=me).json()
    assert [e["resource"]["id"] for e in reports["entry"]] == ["r2"]
