"""rvpriv25 review probes: DiagnosticReport in ``confidentiality.DERIVED`` and the resident-wide
citation rule (privmend25). Real HTTP through the FastAPI app, the real store."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import _h, build_world, ids, resident

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
EFF = "2026-09-20T08:00:00+08:00"


def _dr(rid, pid, **extra):
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": "检验报告"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF, **extra}


def _obs(rid, pid, **extra):
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "血压"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF,
            "valueQuantity": {"value": 120, "unit": "mmHg"}, **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    return world.probe_client


def _bound(world, scopes="system/*.cruds"):
    t, _ = world.auth.issue_token(subject="his-b", kind="system", client_id="his-b", scopes=[scopes],
                                  extra={"institution": "FNZYY"})
    return _h(t)


def _clinician(world, scopes="user/*.cruds"):
    t, _ = world.auth.issue_token(subject="dr-wang", kind="user", client_id="ward-app", scopes=[scopes])
    return _h(t)


@pytest.mark.parametrize("who", ["bound", "clinician"])
@pytest.mark.parametrize("cite", [
    {"performer": [{"reference": "Practitioner/dr-not-registered-here"}]},
    {"basedOn": [{"reference": "ServiceRequest/order-sent-later"}]},
    {"result": [{"reference": "Observation/result-sent-later"}]},
])
def test_a_report_citing_a_record_not_stored_is_accepted_as_before(http, world, who, cite):
    """FINDING (refusal where accept): a DiagnosticReport is written by hospitals' and clinicians'
    clients, not built by huren; cited records not (yet) stored here -- a practitioner never
    registered, an order or result sent later -- were accepted on the base (201). DiagnosticReport in
    DERIVED makes ``check_write`` run ``_cites_only_shown`` on it for every caller some labels are
    withheld from: each of these is now 422 'cites a record that is not known'."""
    h = _bound(world) if who == "bound" else _clinician(world)
    key = next(iter(cite))
    rid = f"dr-rv-{who}-{key}"
    r = http.put(f"/fhir/DiagnosticReport/{rid}", json=_dr(rid, "pa", **cite), headers=h)
    assert r.status_code in (200, 201), (r.status_code, r.text[:400])


def test_a_clinician_can_still_write_a_report_citing_a_stored_plain_result(http, world):
    """Guard: a report citing A's stored unlabelled result is written and read back."""
    h = _clinician(world)
    r = http.put("/fhir/DiagnosticReport/dr-rv-ok", json=_dr("dr-rv-ok", "pa", result=[{"reference": "Observation/obs-a"}]),
                 headers=h)
    assert r.status_code in (200, 201), r.text[:400]
    assert http.get("/fhir/DiagnosticReport/dr-rv-ok", headers=h).status_code == 200


def test_residents_own_report_and_its_results_stay_shown(http, world):
    """Guard against over-withholding: A's report citing her own results, encounter and a practitioner
    is shown to A in read, search and $everything."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    r = http.put("/fhir/DiagnosticReport/dr-rv-a", headers=sysh, json=_dr(
        "dr-rv-a", "pa", result=[{"reference": "Observation/obs-a"}, {"reference": "Observation/obs-a2"}],
        encounter={"reference": "Encounter/enc-a"}, performer=[{"reference": "Practitioner/dr-1"}]))
    assert r.status_code in (200, 201), r.text
    h = resident(world)
    assert http.get("/fhir/DiagnosticReport/dr-rv-a", headers=h).status_code == 200
    assert "dr-rv-a" in ids(http.get("/fhir/DiagnosticReport?_count=100", headers=h).json())
    assert "dr-rv-a" in ids(http.get("/fhir/Patient/pa/$everything?_count=1000", headers=h).json())


def test_a_report_citing_bs_result_is_withheld_from_a_in_every_path(http, world):
    """Guard: A's report citing B's result: read 404 like a missing one, not listed, not counted, not
    in $everything, not reached by _revinclude from her Patient."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    r = http.put("/fhir/DiagnosticReport/dr-rv-ab", headers=sysh,
                 json=_dr("dr-rv-ab", "pa", result=[{"reference": "Observation/obs-b"}]))
    assert r.status_code in (200, 201), r.text
    h = resident(world)
    real = http.get("/fhir/DiagnosticReport/dr-rv-ab", headers=h)
    fake = http.get("/fhir/DiagnosticReport/dr-rv-zz", headers=h)
    assert real.status_code == fake.status_code == 404
    for q in ("/fhir/DiagnosticReport?_count=100", "/fhir/Patient/pa/$everything?_count=1000",
              "/fhir/Patient?_id=pa&_revinclude=DiagnosticReport:subject",
              "/fhir/Observation?_has:DiagnosticReport:result:_id=dr-rv-ab"):
        resp = http.get(q, headers=h)
        assert "dr-rv-ab" not in resp.text and "obs-b" not in resp.text, (q, resp.text[:400])
    listed = http.get("/fhir/DiagnosticReport?_total=accurate&_count=1", headers=h).json()
    every = ids(http.get("/fhir/DiagnosticReport?_count=100", headers=h).json())
    assert listed["total"] == len(every), (listed["total"], every)


def test_a_resident_writing_an_observation_citing_a_shared_organization_is_accepted(http, world):
    """Guard: the resident-wide write check reads only types that hold a patient's record: her own
    Observation citing the shared Organization and Practitioner is written (201)."""
    t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="phr",
                                  scopes=["patient/*.cruds", "openid", "fhirUser"], patient="pa")
    r = http.post("/fhir/Observation", headers=_h(t), json=_obs(
        "x", "pa", performer=[{"reference": "Organization/org-1"}, {"reference": "Practitioner/dr-1"}]))
    assert r.status_code == 201, r.text
