"""A conditional interaction is decided like a search and a write of the same caller.

Review of probe17: ``If-None-Exist`` and ``PUT Type?search`` ran the repository's inner search,
not the caller's, and answered the match before the write was checked. A clinician bound to
hospital A (``ServiceRequest.cru``) got 404 for B's order by id, but ``POST /fhir/ServiceRequest``
with ``If-None-Exist: _id={B's order}`` answered 200 with the whole order (a made-up id: 403, so
even the miss told that it exists); a batch entry's ``ifNoneExist`` gave its location, and a chain
(``subject:Patient.identifier=``) did the same. A bound auditor's ``PUT /fhir/DetectedIssue?_id=``
answered 403 for a flag that exists, 422 for one that does not. A client that may only create
reports read a whole one back through ``If-None-Exist``. Now the write is checked
first and the match is the caller's own search (``ScopedRepository.conditional_matches``): the
bound person gets the same 403 whether or not anything matches, and the match a caller is
answered is one they may read. Real HTTP through FastAPI, real staff sessions, the county's
records made by real messages (``tests.test_reports_duplicates.county``).
"""

from __future__ import annotations

from typing import Any

from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from tests.test_recognition_world import ALICE, A
from tests.test_reports_duplicates import county

__all__ = ["county"]


def _session(engine: Any, name: str, role: str, remit: str) -> tuple[dict[str, str], dict[str, str]]:
    person = StaffIdentity(name, role, A, name, remit)
    token, session = engine.staff.open_session(person, engine.staff.roles[role], address="127.0.0.1",
                                               issuer="https://idp.ybj.example.cn")
    return {SESSION_COOKIE: token}, {"X-CSRF-Token": session.csrf}


def _new_order(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if k not in ("id", "meta")}


def test_a_bound_clinicians_conditional_create_answers_no_match_it_may_not_read(engine: Any,
                                                                                county: dict[str, Any]) -> None:
    http = county["http"]
    orders = engine.repository.search("ServiceRequest", [("_count", "50")]).resources
    order = next(o for o in orders if o.get("status") == "active")
    body = _new_order(order)
    cookies, csrf = _session(engine, "li.ming", "clinician", A)
    assert http.get(f"/fhir/ServiceRequest/{order['id']}", cookies=cookies).status_code == 404
    before = engine.repository.search("ServiceRequest", [("_summary", "count")]).total

    answers = []
    for cond in (f"_id={order['id']}", "_id=no-such-order", f"subject:Patient.identifier={ALICE}",
                 "subject:Patient.identifier=110101190001010000"):
        r = http.post("/fhir/ServiceRequest", json=body, cookies=cookies, headers={**csrf, "If-None-Exist": cond})
        assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome", (cond, r.status_code, r.text[:300])
        assert order["id"] not in r.text
        answers.append(r.text)
    assert len(set(answers)) == 1  # the same words whether something matches or not

    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": body, "request": {"method": "POST", "url": "ServiceRequest", "ifNoneExist": f"_id={order['id']}"}},
        {"resource": body, "request": {"method": "POST", "url": "ServiceRequest", "ifNoneExist": "_id=no-such-order"}},
    ]}
    r = http.post("/fhir", json=batch, cookies=cookies, headers=csrf)
    assert r.status_code == 200, r.text
    got = [e["response"] for e in r.json()["entry"]]
    assert [g["status"][:3] for g in got] == ["403", "403"] and order["id"] not in r.text, got
    assert engine.repository.search("ServiceRequest", [("_summary", "count")]).total == before  # nothing written

    # not bound: the same clinician reads any order, but a conditional create searches and the
    # role's orders are ``cru`` (no ``s``): refused as ``GET ServiceRequest?_id=`` is (labelslast19)
    free, free_csrf = _session(engine, "zhao.yun", "clinician", "")
    r = http.post("/fhir/ServiceRequest", json=body, cookies=free, headers={**free_csrf, "If-None-Exist": f"_id={order['id']}"})
    assert r.status_code == 403 and order["id"] not in r.text, r.text[:300]
    assert http.get(f"/fhir/ServiceRequest?_id={order['id']}", cookies=free).status_code == 403
    assert engine.repository.search("ServiceRequest", [("_summary", "count")]).total == before


def test_a_bound_auditors_conditional_update_is_refused_alike_whether_the_flag_exists(engine: Any,
                                                                                       county: dict[str, Any]) -> None:
    http = county["http"]
    issue = engine.repository.search("DetectedIssue", [("_count", "1")]).resources[0]
    cookies, csrf = _session(engine, "wang.li", "auditor", A)
    bare = {"resourceType": "DetectedIssue", "status": "cancelled"}  # names no patient: the write alone passes
    before = engine.repository.search("DetectedIssue", [("_summary", "count")]).total
    answers = []
    for rid in (issue["id"], "no-such-flag"):
        r = http.put(f"/fhir/DetectedIssue?_id={rid}", json=bare, cookies=cookies, headers=csrf)
        assert r.status_code == 403, (rid, r.status_code, r.text[:300])
        answers.append(r.text)
    assert answers[0] == answers[1]
    assert engine.repository.read("DetectedIssue", issue["id"])["status"] == issue["status"]
    entries = [{"resource": bare, "request": {"method": "PUT", "url": f"DetectedIssue?_id={rid}"}}
               for rid in (issue["id"], "no-such-flag")]
    r = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries}, cookies=cookies, headers=csrf)
    assert [e["response"]["status"][:3] for e in r.json()["entry"]] == ["403", "403"], r.text[:300]
    assert engine.repository.search("DetectedIssue", [("_summary", "count")]).total == before


def test_a_create_only_client_is_not_shown_a_match_through_if_none_exist(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    obs = engine.repository.search("DiagnosticReport", [("_count", "1")]).resources[0]
    create_only = {"Authorization": f"Bearer {engine.auth.issue_system_token('feeder', 'system/DiagnosticReport.c')}"}
    r = http.post("/fhir/DiagnosticReport", json=_new_order(obs), headers={**create_only, "If-None-Exist": f"_id={obs['id']}"})
    assert r.status_code == 403 and obs["id"] not in r.text, (r.status_code, r.text[:300])
    reader = {"Authorization": f"Bearer {engine.auth.issue_system_token('feeder', 'system/DiagnosticReport.crs')}"}
    r = http.post("/fhir/DiagnosticReport", json=_new_order(obs), headers={**reader, "If-None-Exist": f"_id={obs['id']}"})
    assert r.status_code == 200 and r.json()["id"] == obs["id"]
