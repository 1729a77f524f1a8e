"""probep25: the operations and pages around /fhir that a resident's token can reach, with B's data
present (twenty-fifth round): reports, measures, referral summaries, the recognition check, family
access grants, userinfo. Real HTTP on the real app, the real store."""

from __future__ import annotations

import json

import pytest

from engine.identity.nationalid import check_character
from tests.test_probep25_privacy import B_NAME, B_NID, _h, build_world, names_b, resident

OTHER_NID = "32092319850303002" + check_character("32092319850303002")  # a number no record carries


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    client = world.probe_client
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    sr = {"resourceType": "ServiceRequest", "id": "sr-b", "status": "active", "intent": "order",
          "code": {"text": "转诊"}, "subject": {"reference": "Patient/pb"},
          "requester": {"reference": "Practitioner/dr-1"}, "authoredOn": "2026-09-20T08:00:00+08:00"}
    task = {"resourceType": "Task", "id": "task-b", "status": "requested", "intent": "order",
            "focus": {"reference": "ServiceRequest/sr-b"}, "for": {"reference": "Patient/pb"}}
    for r in (sr, task):
        resp = client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=sysh)
        assert resp.status_code in (200, 201), resp.text
    return client


@pytest.mark.parametrize("path", [
    "/reports/settlement?year=2026", "/reports/deductions?institution=FNXRMYY&month=2026-09",
    "/reports/split-admissions", "/reports/indicators?month=2026-09",
    "/reports/remote-reading", "/reports/referrals", "/reports/duplicates", "/admin",
    "/fhir/Measure/recognition-rate/$evaluate-measure", "/fhir/Measure/x/$evaluate-measure?subject=Patient/pb",
])
def test_cross_patient_reports_refuse_a_resident(http, world, path):
    r = http.get(path, headers=resident(world))
    assert r.status_code in (401, 403, 404, 405), (path, r.status_code, r.text[:300])
    assert names_b(r.text) == [], r.text[:500]


@pytest.mark.parametrize("path,real,fake", [
    ("/fhir/ServiceRequest/sr-b/$summary", "sr-b", "sr-zz"), ("/fhir/Task/task-b/$summary", "task-b", "task-zz"),
    ("/fhir/ServiceRequest/sr-b", "sr-b", "sr-zz"), ("/fhir/Task/task-b", "task-b", "task-zz"),
])
def test_referral_summaries_of_b_look_missing(http, world, path, real, fake):
    h = resident(world)
    r, m = http.get(path, headers=h), http.get(path.replace(real, fake), headers=h)
    assert r.status_code == m.status_code and r.status_code in (403, 404), (path, r.status_code, m.status_code, r.text)
    assert r.text.replace(real, "X") == m.text.replace(fake, "X"), (r.text, m.text)


def test_recognition_check_on_bs_record_looks_missing(http, world):
    def body(pid):
        return {"resourceType": "Parameters", "parameter": [{"name": "order", "resource": {
            "resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": "血糖"},
            "subject": {"reference": f"Patient/{pid}"}}}]}
    h = resident(world)
    r = http.post("/fhir/ServiceRequest/$check-recognition", json=body("pb"), headers=h)
    m = http.post("/fhir/ServiceRequest/$check-recognition", json=body("zz"), headers=h)
    assert r.status_code == m.status_code and r.status_code in (401, 403, 404), (r.status_code, r.text[:400])
    assert r.text.replace("pb", "X") == m.text.replace("zz", "X"), (r.text, m.text)


def _grant(patient=None, nid=OTHER_NID):
    p = [{"name": "proxyNationalId", "valueString": nid}, {"name": "proxyName", "valueString": "某人"},
         {"name": "relationship", "valueCode": "CHILD"}, {"name": "end", "valueDate": "2099-12-31"}]
    if patient:
        p.append({"name": "patient", "valueReference": {"reference": patient}})
    return {"resourceType": "Parameters", "parameter": p}


def test_a_cannot_grant_family_access_to_bs_record(http, world):
    h = resident(world)
    r = http.post("/fhir/Patient/$family-grant", json=_grant("Patient/pb"), headers=h)
    m = http.post("/fhir/Patient/$family-grant", json=_grant("Patient/zz"), headers=h)
    assert r.status_code == m.status_code == 404, (r.status_code, r.text, m.status_code, m.text)
    assert r.text == m.text


def test_a_grant_to_bs_number_tells_a_nothing_about_b(http, world):
    """A lets a family member see her record, naming B's national ID as the family member's: the
    answer must not say whether B has a record (name, id, a different shape) -- compare with a number
    no record carries."""
    h = resident(world)
    r = http.post("/fhir/Patient/$family-grant", json=_grant(nid=B_NID), headers=h)
    m = http.post("/fhir/Patient/$family-grant", json=_grant(nid=OTHER_NID), headers=h)
    assert r.status_code == m.status_code, (r.status_code, r.text[:400], m.status_code, m.text[:400])
    assert B_NAME not in r.text and "Patient/pb" not in r.text, r.text[:1200]

    def shape(resp, nid):
        def strip(x):
            if isinstance(x, dict):
                return {k: strip(v) for k, v in x.items() if k not in ("id", "meta", "reference", "lastUpdated")}
            if isinstance(x, list):
                return [strip(v) for v in x]
            return "N" if x == nid else x
        return strip(json.loads(resp.text.replace(nid, "N")))
    assert shape(r, B_NID) == shape(m, OTHER_NID), (r.text[:1500], m.text[:1500])


def test_userinfo_is_a_own(http, world):
    r = http.get("/auth/userinfo", headers=resident(world))
    assert r.status_code in (200, 401, 403)
    assert names_b(r.text) == [] and "person-pb" not in r.text, r.text
