"""A staff member bound to a remit does not read around it through ``/fhir``.

An auditor bound to FNXRMYY (``--remit``) gets 404 for hospital FNZYY's duplicate flag from
``/reports/duplicates/{id}`` ("a flag elsewhere is a 404, by id too"), but the same session cookie
read it at ``/fhir/DetectedIssue/{id}`` (200, the patient and the evidence), and searched every
hospital's results at ``/fhir/Observation``. ``/fhir`` has no rule for which institution a
resource belongs to, so a bound person is kept from patients' records there altogether (search
403, read/vread/history/Bundle entries as for a missing record, no writes) and reads them through
the reports, which vouch for the records of a flag within the remit; a Measure (no patient) reads
as before, and a person not bound to a remit is unchanged. Real HTTP through FastAPI, real staff
sessions (the sign-in's own ``open_session``), recognition flags made by real ORU/ORM messages.
"""

from __future__ import annotations

from typing import Any

from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from tests.test_recognition_world import A, B
from tests.test_reports_duplicates import county

__all__ = ["county"]  # the reports' fixture: flags at B (FNZYY), used by name


def _session(engine: Any, remit: str) -> tuple[dict[str, str], str]:
    person = StaffIdentity("wang.li", "auditor", "YBJ", "王丽", remit)
    token, session = engine.staff.open_session(person, engine.staff.roles["auditor"], address="127.0.0.1",
                                               issuer="https://idp.ybj.example.cn")
    return {SESSION_COOKIE: token}, session.csrf


def test_a_remit_bound_auditor_reads_patients_records_only_through_the_reports(engine: Any,
                                                                              county: dict[str, Any]) -> None:
    http = county["http"]
    unbound, _ = _session(engine, "")
    rows = http.get("/reports/duplicates?status=flagged", cookies=unbound).json()["rows"]
    flag = rows[0]["id"]
    assert engine.recognition.flags.get(flag)["inst"] == B and http.get(f"/fhir/DetectedIssue/{flag}", cookies=unbound).status_code == 200
    assert http.get("/fhir/DiagnosticReport", cookies=unbound).json()["total"] > 0  # unbound: the whole site

    elsewhere, csrf = _session(engine, A)
    assert http.get(f"/reports/duplicates/{flag}", cookies=elsewhere).status_code == 404
    missing = http.get("/fhir/DetectedIssue/no-such-flag", cookies=elsewhere)
    for path in (f"/fhir/DetectedIssue/{flag}", f"/fhir/DetectedIssue/{flag}/_history/1",
                 f"/fhir/DetectedIssue/{flag}/_history"):
        r = http.get(path, cookies=elsewhere)
        assert r.status_code == 404 and r.text == missing.text, (path, r.status_code, r.text[:200])
    for path in ("/fhir/DetectedIssue", "/fhir/DiagnosticReport", f"/fhir/DiagnosticReport?_id={rows[0]['result'].split('/')[1]}"):
        r = http.get(path, cookies=elsewhere)
        assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome", (path, r.text[:200])
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"request": {"method": "GET", "url": f"DetectedIssue/{flag}"}}]}
    r = http.post("/fhir", json=batch, cookies=elsewhere, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["entry"][0]["response"]["status"].startswith("404"), r.text
    batch["entry"][0]["request"]["url"] = "DetectedIssue?_count=5"
    assert http.post("/fhir", json=batch, cookies=elsewhere, headers={"X-CSRF-Token": csrf}).status_code == 403
    issue = engine.repository.read("DetectedIssue", flag)
    r = http.put(f"/fhir/DetectedIssue/{flag}", json={**issue, "status": "cancelled"}, cookies=elsewhere,
                 headers={"X-CSRF-Token": csrf})
    assert r.status_code in (403, 404), r.text
    assert engine.repository.read("DetectedIssue", flag)["status"] == issue["status"]
    assert http.get("/fhir/Measure", cookies=elsewhere).status_code == 200  # names no patient

    # bound to B, the flag's hospital: the report shows it with its evidence, vouched for by the remit
    within, _ = _session(engine, B)
    ev = http.get(f"/reports/duplicates/{flag}", cookies=within).json()
    assert ev["detectedIssue"]["id"] == flag
    assert ev["resultResource"]["id"] == rows[0]["result"].split("/")[1]
    assert http.get(f"/fhir/DetectedIssue/{flag}", cookies=within).status_code == 404  # not outside the reports
