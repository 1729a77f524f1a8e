"""Remote reading end to end over real HTTP: the township sends studies to the county's reading
centre, the centre reports, the auditor sees turnaround, workload and the overdue reads.

The township (FNYLWSY) requests three reads of 王建国's studies at the county centre (FNXRMYY): a
chest CT on 20 November (target 24 h), an ECG on 21 November (target 2 h) and a head CT on
22 November. The centre's radiologist reports the CT 12 hours later; the ECG is read 3 hours after
the request, one hour late; the head CT is never reported. Per centre and month: three requested,
two reported, median turnaround 7.5 h, two overdue (the late ECG and the unread CT).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import COUNTY, TOWN, WANG, bearer, created, engine, feed, one, org, result

__all__ = ["engine"]  # the fixture (both storage backends), shared with the FHIR scenario
REMOTE_READ = {"system": "urn:huren:task-code", "code": "remote-read"}


def reading_request(patient: str, modality: str, code: str, when: str) -> dict[str, Any]:
    study = {"resourceType": "ImagingStudy", "status": "available", "subject": {"reference": patient},
             "started": when, "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                            "code": modality}]}
    order = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005",
                                       "display": "Imaging"}]}],
             "code": {"text": code}, "subject": {"reference": patient}, "authoredOn": when,
             "requester": org(TOWN), "performer": [org(COUNTY)]}
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "code": {"coding": [REMOTE_READ]},
            "focus": {"reference": "urn:uuid:order"}, "for": {"reference": patient}, "authoredOn": when,
            "requester": org(TOWN), "owner": org(COUNTY),
            "input": [{"type": {"text": "study to read"}, "valueReference": {"reference": "urn:uuid:study"}}]}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:study", "resource": study, "request": {"method": "POST", "url": "ImagingStudy"}},
        {"fullUrl": "urn:uuid:order", "resource": order, "request": {"method": "POST", "url": "ServiceRequest"}},
        {"fullUrl": "urn:uuid:task", "resource": task, "request": {"method": "POST", "url": "Task"}}]}


def centre_report(patient: str, order: str, study: str, issued: str) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "影像诊断报告"},
            "subject": {"reference": patient}, "basedOn": [{"reference": f"ServiceRequest/{order}"}],
            "imagingStudy": [{"reference": f"ImagingStudy/{study}"}], "performer": [org(COUNTY)],
            "resultsInterpreter": [{"display": "放射科 周医生"}], "effectiveDateTime": issued, "issued": issued,
            "conclusion": "双肺未见明显异常"}


def test_centre_turnaround_workload_and_overdue_reads(engine: Engine, http: TestClient) -> None:
    town, county = bearer(engine, "pacs-town"), bearer(engine, "ris-county")
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    patient = "Patient/" + one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]
    sent = []
    for modality, code, when in (("CT", "胸部CT平扫", "2026-11-20T08:00:00+08:00"),
                                 ("ECG", "十二导联心电图", "2026-11-21T09:00:00+08:00"),
                                 ("CT", "头颅CT平扫", "2026-11-22T10:00:00+08:00")):
        r = http.post("/fhir", json=reading_request(patient, modality, code, when), headers=town)
        sent.append((created(r, "ImagingStudy"), created(r, "ServiceRequest")))
    for (study, order), issued in zip(sent[:2], ("2026-11-20T20:00:00+08:00", "2026-11-21T12:00:00+08:00"), strict=True):
        r = http.post("/fhir/DiagnosticReport", json=centre_report(patient, order, study, issued), headers=county)
        assert r.status_code == 201, r.text

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    r = http.get("/reports/remote-reading?from=2026-11&to=2026-11", headers=auditor)
    assert r.status_code == 200, r.text
    report = r.json()
    (row,) = report["rows"]
    assert (row["centre"], row["month"], row["requested"], row["reported"], row["pending"], row["overdue"]) == \
        (COUNTY, "2026-11", 3, 2, 1, 2)
    assert row["turnaround_hours"] == {"median": 7.5, "mean": 7.5, "max": 12.0}
    assert row["by_kind"] == {"CT": 2, "ECG": 1}
    late = {o["kind"]: o for o in report["overdue"]}
    assert set(late) == {"ECG", "CT"} and late["ECG"]["hours_late"] == 1.0
    assert late["ECG"]["reported"] == "2026-11-21T04:00:00Z" and late["CT"]["reported"] is None
    assert late["CT"]["order"] == f"ServiceRequest/{sent[2][1]}" and late["CT"]["due"] == "2026-11-23T02:00:00Z"
    # another centre has nothing; months are checked; hospitals' clients are not auditors
    assert http.get(f"/reports/remote-reading?centre={TOWN}", headers=auditor).json()["rows"] == []
    assert http.get("/reports/remote-reading?to=11-2026", headers=auditor).status_code == 400
    assert http.get("/reports/remote-reading", headers=town | {"Authorization": bearer(
        engine, "pacs", "system/Task.rs")["Authorization"]}).status_code == 403
