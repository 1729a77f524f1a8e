"""A remit-bound person's search shows only records that name no patient, whatever the type.

Review of probe17: a bound person's searches were never screened record by record; only a list
of refused types kept them from patients' records, and that list followed the parameters enabled
here, so ``Device`` (``Device.patient``, no enabled compartment parameter) and the types with no
patient parameter enabled (``RiskAssessment.subject``, an individual ``MeasureReport.subject``)
answered every hospital's patients. And the auditor's ``GET /fhir/Flag`` was 403 although the
indicators' alerts are Flags naming an institution (read by id worked). Now every bound search
admits each match (counted by what is shown), a type with a ``patient`` parameter in R4 is refused
whether enabled or not, and Flags (``confined.yaml`` ``remit_searched``) are searched, screened.
Real HTTP through FastAPI, a real staff session; the records written through the repository.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff import Role, StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE

SCOPES = ("user/Device.rs", "user/RiskAssessment.rs", "user/MeasureReport.rs", "user/Flag.rs", "user/Measure.rs",
          "user/Patient.rs")


def test_a_bound_persons_search_shows_no_record_naming_a_patient(engine: Any) -> None:
    repo = engine.repository
    pid = repo.create({"resourceType": "Patient", "name": [{"text": "张三"}]}).resource["id"]
    org = repo.create({"resourceType": "Organization", "name": "阜宁县人民医院"}).resource["id"]
    him = {"reference": f"Patient/{pid}"}
    # the institution as the indicators name it: since privfix27 a remit-bound person reads a published
    # figure only when its institution is in the remit (one named by ``Organization/{org}`` alone,
    # which huren cannot place, reads as missing)
    there = {"reference": f"Organization/{org}", "identifier": {"system": "urn:huren:institution", "value": "FNXRMYY"}}
    device = repo.create({"resourceType": "Device", "patient": him}).resource["id"]
    risk = repo.create({"resourceType": "RiskAssessment", "status": "final", "subject": him}).resource["id"]
    mine = repo.create({"resourceType": "MeasureReport", "status": "complete", "type": "individual",
                        "measure": "Measure/m1", "subject": him, "period": {"start": "2026-01-01"}}).resource["id"]
    summary = repo.create({"resourceType": "MeasureReport", "status": "complete", "type": "summary",
                           "measure": "Measure/m1", "reporter": there, "period": {"start": "2026-01-01"}}).resource["id"]
    alert = repo.create({"resourceType": "Flag", "status": "active", "code": {"text": "指标预警"},
                         "subject": there}).resource["id"]
    his = repo.create({"resourceType": "Flag", "status": "active", "code": {"text": "过敏"}, "subject": him}).resource["id"]

    role = engine.staff.roles["registry-auditor"] = Role("registry-auditor", "auditor", SCOPES, "审核员", "auditor")
    person = StaffIdentity("qian.jin", role.name, "YBJ", "钱进", "FNXRMYY")
    token, _ = engine.staff.open_session(person, role, address="127.0.0.1", issuer="https://idp.ybj.example.cn")
    http, cookies = TestClient(create_app(engine)), {SESSION_COOKIE: token}

    r = http.get("/fhir/Device", cookies=cookies)  # Device.patient: a patient's device
    assert r.status_code == 403 and device not in r.text, r.text[:300]
    for path, total in (("/fhir/RiskAssessment", 0), ("/fhir/MeasureReport", 1), ("/fhir/Flag", 1),
                        ("/fhir/Flag?_summary=count", 1), ("/fhir/MeasureReport?_count=0", 1)):
        r = http.get(path, cookies=cookies)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert r.json()["total"] == total and pid not in r.text, (path, r.text[:400])
        assert risk not in r.text and mine not in r.text and his not in r.text
    assert [e["resource"]["id"] for e in http.get("/fhir/Flag", cookies=cookies).json()["entry"]] == [alert]
    assert [e["resource"]["id"] for e in http.get("/fhir/MeasureReport", cookies=cookies).json()["entry"]] == [summary]
    assert http.get(f"/fhir/Flag/{alert}", cookies=cookies).status_code == 200
    assert http.get(f"/fhir/Flag/{his}", cookies=cookies).status_code == 404
    # a chain through a patient finds nothing either (the inner search is screened too)
    r = http.get("/fhir/Flag?subject:Patient.name=张三", cookies=cookies)
    assert r.status_code == 200 and r.json()["total"] == 0, r.text[:300]
