"""privfix25: what the review of privmend25 left to decide -- a report citing records not (yet)
stored is accepted and withheld from a label-limited caller until they are, alike with one citing a
withheld record; a resident's own logical reference by her own national ID stays shown. Real HTTP
through the FastAPI app, the real store."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import A_NID, _h, build_world, ids, resident

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
EFF = "2026-09-20T08:00:00+08:00"


def _dr(rid, pid, result):
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": {"text": "检验报告"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF,
            "result": [{"reference": f"Observation/{result}"}]}


def _obs(rid, pid, **extra):
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "血压"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF,
            "valueQuantity": {"value": 120, "unit": "mmHg"}, "performer": [{"reference": "Organization/org-1"}], **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    return world.probe_client


def _clinician(world):
    t, _ = world.auth.issue_token(subject="dr-wang", kind="user", client_id="ward-app", scopes=["user/*.cruds"])
    return _h(t)


@pytest.mark.xfail(strict=True, reason="withdrawn by the lead (twenty-fifth round): DiagnosticReport judged by its results for label-limited callers who are not residents (confidentiality.DERIVED) refused ordinary writes (a report citing a practitioner or result not yet stored, 422), made clinicians' report searches 2-3x slower and took an order whose prior was deleted out of the auditors' rate. Since labelmark27 (twenty-seventh round) a report citing an R result carries R from its write (withheld, as here), but one citing a result not yet stored is unlabelled and shown until that result arrives (read-time withholding not taken)")
def test_a_report_citing_a_later_result_is_shown_once_it_arrives_and_alike_with_an_r_one(http, world):
    """A clinician (R and V withheld) writes two reports: one citing a result sent later, one citing
    an R result. Both are written (201) and both read back 404, listed by neither search nor total;
    once the later result is stored (unlabelled) its report is shown, the other stays withheld."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    r = http.put("/fhir/Observation/pf-obs-r", headers=sysh,
                 json=_obs("pf-obs-r", "pa", meta={"security": [{"system": SEC, "code": "R"}]}))
    assert r.status_code in (200, 201), r.text
    h = _clinician(world)
    later = http.put("/fhir/DiagnosticReport/pf-dr-later", json=_dr("pf-dr-later", "pa", "pf-obs-later"), headers=h)
    real = http.put("/fhir/DiagnosticReport/pf-dr-r", json=_dr("pf-dr-r", "pa", "pf-obs-r"), headers=h)
    assert later.status_code == real.status_code == 201, (later.text, real.text)
    a = http.get("/fhir/DiagnosticReport/pf-dr-later", headers=h)
    b = http.get("/fhir/DiagnosticReport/pf-dr-r", headers=h)
    assert a.status_code == b.status_code == 404
    assert a.text.replace("pf-dr-later", "X") == b.text.replace("pf-dr-r", "X")
    page = http.get("/fhir/DiagnosticReport?subject=Patient/pa&_total=accurate&_count=500", headers=h).json()
    assert not {"pf-dr-later", "pf-dr-r"} & ids(page) and page["total"] == len(ids(page)), ids(page)
    small = http.get("/fhir/DiagnosticReport?subject=Patient/pa&_total=accurate&_count=1", headers=h).json()
    assert small["total"] == page["total"]
    # the result arrives: its report is shown, read, listed and counted
    r = http.put("/fhir/Observation/pf-obs-later", headers=sysh, json=_obs("pf-obs-later", "pa"))
    assert r.status_code in (200, 201), r.text
    assert http.get("/fhir/DiagnosticReport/pf-dr-later", headers=h).status_code == 200
    assert http.get("/fhir/DiagnosticReport/pf-dr-r", headers=h).status_code == 404
    page2 = http.get("/fhir/DiagnosticReport?subject=Patient/pa&_total=accurate&_count=500", headers=h).json()
    assert "pf-dr-later" in ids(page2) and "pf-dr-r" not in ids(page2) and page2["total"] == page["total"] + 1


def test_a_residents_logical_reference_by_her_own_number_stays_shown(http, world):
    """Guard against over-withholding: A's Observation whose ``focus`` names A by her own national
    ID number (the national ID system, and a custom one typed NNCHN) is shown to her."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    nnchn = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
    for rid, ident in (("pf-own-nid", {"system": "urn:oid:2.16.156.10011.1.3", "value": A_NID}),
                       ("pf-own-typed", {"system": "urn:huren:id:x", "type": nnchn, "value": A_NID})):
        r = http.put(f"/fhir/Observation/{rid}", headers=sysh, json=_obs(rid, "pa", focus=[{"identifier": ident}]))
        assert r.status_code in (200, 201), r.text
        assert http.get(f"/fhir/Observation/{rid}", headers=resident(world)).status_code == 200, rid


def test_a_logical_reference_typed_nnchn_with_bs_number_is_withheld(http, world):
    """The identity's own rule (type NNCHN, any system): A's Observation naming B so is withheld."""
    from tests.test_probep25_privacy import B_NID
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    nnchn = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
    r = http.put("/fhir/Observation/pf-b-typed", headers=sysh, json=_obs(
        "pf-b-typed", "pa", focus=[{"identifier": {"system": "urn:huren:id:x", "type": nnchn, "value": B_NID}}]))
    assert r.status_code in (200, 201), r.text
    h = resident(world)
    assert http.get("/fhir/Observation/pf-b-typed", headers=h).status_code == 404
    assert "pf-b-typed" not in ids(http.get("/fhir/Observation?_count=500", headers=h).json())
