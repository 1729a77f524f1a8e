"""probep25: A's resources whose references point into B's compartment (not at B's Patient), one
element at a time (twenty-fifth round). The README's rule for a confined caller: a resource that
references another patient's compartment names that person's record (it is written for AuditEvent
``entity.what``); here the same pointer in clinical resources. Each case is its own resource in A's
compartment; the check is the same as for AuditEvent: withheld whole, answered as a missing id."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import _h, build_world, ids, resident

EFF = "2026-09-20T08:00:00+08:00"
CASES = {
    "dr-a-result-b": {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "血糖"},
                      "subject": {"reference": "Patient/pa"}, "effectiveDateTime": EFF,
                      "result": [{"reference": "Observation/obs-b"}]},
    "enc-a-partof-b": {"resourceType": "Encounter", "status": "finished",
                       "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                       "subject": {"reference": "Patient/pa"}, "partOf": {"reference": "Encounter/enc-b"}},
    "obs-a-derived-b": {"resourceType": "Observation", "status": "final", "code": {"text": "血糖"},
                        "subject": {"reference": "Patient/pa"}, "effectiveDateTime": EFF,
                        "performer": [{"reference": "Organization/org-1"}], "derivedFrom": [{"reference": "DocumentReference/doc-b"}]},
    "cond-a-evidence-b": {"resourceType": "Condition", "subject": {"reference": "Patient/pa"}, "code": {"text": "糖尿病"},
                          "evidence": [{"detail": [{"reference": "Observation/obs-b"}]}]},
    "doc-a-relates-b": {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": "Patient/pa"},
                        "relatesTo": [{"code": "appends", "target": {"reference": "DocumentReference/doc-b"}}],
                        "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/bin-a"}}]},
    "cond-a-encounter-b": {"resourceType": "Condition", "subject": {"reference": "Patient/pa"}, "code": {"text": "糖尿病"},
                           "encounter": {"reference": "Encounter/enc-b"}},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    client = world.probe_client
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    for rid, r in CASES.items():
        resp = client.put(f"/fhir/{r['resourceType']}/{rid}", json={**r, "id": rid}, headers=sysh)
        assert resp.status_code in (200, 201), (rid, resp.text)
    return client


@pytest.mark.parametrize("rid", sorted(CASES))
def test_a_resource_pointing_into_bs_compartment_is_withheld(http, world, rid):
    """FINDING where it fails: A reads her resource that cites B's record by id."""
    rtype = CASES[rid]["resourceType"]
    h = resident(world)
    r = http.get(f"/fhir/{rtype}/{rid}", headers=h)
    m = http.get(f"/fhir/{rtype}/zz-missing", headers=h)
    assert r.status_code == m.status_code == 404, (rid, r.status_code, r.text[:500])
    assert rid not in ids(http.get(f"/fhir/{rtype}?_count=200", headers=h).json())
    assert rid not in ids(http.get("/fhir/Patient/pa/$everything?_count=1000", headers=h).json())


def test_guard_the_cases_are_there(http, world):
    """A system client reads each case (so a 404 above is the withholding, not a failed write)."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.rs"))
    for rid, r in CASES.items():
        assert http.get(f"/fhir/{r['resourceType']}/{rid}", headers=sysh).status_code == 200, rid
