"""A remit-bound person's ``PUT Type/{id}`` answers the same whether a record they may not read is there.

Review of privfix17: a plain ``PUT /fhir/DetectedIssue/{id}`` by an auditor bound to a remit, with a
body naming no patient, was 403 for a flag that exists (the stored version names a patient) and
422 for a made-up id (the body alone decided; a valid one would have been created): the answer
told which flags exist, as the conditional ``PUT`` did before privfix17. A bound person now does
not write a type holding patients' records at all (as they do not search it), refused before the
stored version is read. Real HTTP through FastAPI, real staff sessions, the county's records made
by real messages (``tests.test_reports_duplicates.county``).
"""

from __future__ import annotations

from typing import Any

from tests.test_privfix17_conditional import _session
from tests.test_recognition_world import A
from tests.test_reports_duplicates import county

__all__ = ["county"]


def test_a_bound_auditors_put_by_id_is_refused_alike_whether_the_flag_exists(engine: Any,
                                                                             county: dict[str, Any]) -> None:
    http = county["http"]
    issue = engine.repository.search("DetectedIssue", [("_count", "1")]).resources[0]
    cookies, csrf = _session(engine, "wang.li", "auditor", A)
    before = engine.repository.search("DetectedIssue", [("_summary", "count")]).total
    for body in ({"resourceType": "DetectedIssue", "status": "cancelled"},  # names no patient
                 {"resourceType": "DetectedIssue", "status": "final", "code": {"text": "重复检查"}}):
        answers = []
        for rid in (issue["id"], "no-such-flag"):
            r = http.put(f"/fhir/DetectedIssue/{rid}", json={**body, "id": rid}, cookies=cookies, headers=csrf)
            assert r.status_code == 403, (rid, r.status_code, r.text[:300])
            answers.append(r.text)
        assert answers[0] == answers[1]
        entries = [{"resource": {**body, "id": rid}, "request": {"method": "PUT", "url": f"DetectedIssue/{rid}"}}
                   for rid in (issue["id"], "no-such-flag")]
        r = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries},
                      cookies=cookies, headers=csrf)
        got = [e["response"] for e in r.json()["entry"]]
        assert [g["status"][:3] for g in got] == ["403", "403"] and got[0] == got[1], got
    deletes = [http.delete(f"/fhir/DetectedIssue/{rid}", cookies=cookies, headers=csrf)
               for rid in (issue["id"], "no-such-flag")]
    assert [d.status_code for d in deletes] == [403, 403] and deletes[0].text == deletes[1].text
    assert engine.repository.read("DetectedIssue", issue["id"])["status"] == issue["status"]
    assert engine.repository.search("DetectedIssue", [("_summary", "count")]).total == before

