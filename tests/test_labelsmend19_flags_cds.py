"""Recognition flags and CDS cards tell of no result labelled beyond the caller (labelsmend19).

Found wrong after labels19:

- a flag (``DetectedIssue``) carried its results' label only as written: a result labelled R
  after its flag was written (the hospital re-sending it), or a flag stored before this round,
  left the clinician reading 404 for the report and 200 for the flag describing it (item,
  institution, date). A flag is now shown -- read, search and its total, Bundle entries,
  ``$everything``, ``_revinclude`` -- only when no record it cites, as it stands, is labelled
  beyond the caller;
- the CDS Hooks card (order-select, order-sign) still linked the R-labelled prior result
  ("Prior result DiagnosticReport/… (FNXRMYY 2026-03-10)") to a clinician who reads it 404.

Results sent by the hospitals' system over real HTTP (PUT), flags written by the real recognition
hook, read over real HTTP with real tokens; the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_cds_hooks import draft, hook_request
from tests.test_labels19_flag_label import HttpWorld, _bearer
from tests.test_recognition_world import ALICE, A, B, cbc, lft

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _ids(bundle: dict[str, Any], rtype: str = "DetectedIssue") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry") or () if e["resource"]["resourceType"] == rtype}


def test_a_flag_whose_result_is_labelled_afterwards_is_withheld_everywhere(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        w = HttpWorld(engine, http, system)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        prior = w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00").resource
        w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
        o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
        o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")
        w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)
        flags = http.get("/fhir/DetectedIssue?_count=100", headers=system).json()
        by_prior = {e["resource"]["evidence"][0]["detail"][0]["reference"]: e["resource"]["id"]
                    for e in flags.get("entry") or () if e["resource"]["id"].startswith("dup-")}
        assert len(by_prior) == 2, flags
        hidden = by_prior[f"DiagnosticReport/{prior['id']}"]
        shown = next(i for i in by_prior.values() if i != hidden)

        # the hospital re-sends the CBC as restricted: the flag was written before, unlabelled
        body = http.get(f"/fhir/DiagnosticReport/{prior['id']}", headers=system).json()
        body["meta"] = {"security": [{"system": CONF, "code": "R"}]}
        assert http.put(f"/fhir/DiagnosticReport/{prior['id']}", json=body, headers=system).status_code == 200

        clinician = _bearer(engine, "user", ["user/DetectedIssue.rs", "user/DiagnosticReport.rs", "user/Patient.rs",
                                             "user/ServiceRequest.rs"])
        assert http.get(f"/fhir/DiagnosticReport/{prior['id']}", headers=clinician).status_code == 404
        assert http.get(f"/fhir/DetectedIssue/{hidden}", headers=clinician).status_code == 404
        assert http.get(f"/fhir/DetectedIssue/{shown}", headers=clinician).status_code == 200
        found = http.get("/fhir/DetectedIssue?_count=100", headers=clinician).json()
        assert hidden not in _ids(found) and shown in _ids(found)
        assert found["total"] == len(_ids(found))
        count = http.get(f"/fhir/DetectedIssue?_id={hidden},{shown}&_summary=count", headers=clinician).json()
        assert count["total"] == 1
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"DetectedIssue/{hidden}"}},
            {"request": {"method": "GET", "url": f"DetectedIssue?_id={hidden}"}}]}
        entries = http.post("/fhir", json=batch, headers=clinician).json()["entry"]
        assert entries[0]["response"]["status"].startswith("404")
        assert _ids(entries[1]["resource"]) == set()
        pid = alice_b.split("/")[1]
        everything = http.get(f"/fhir/Patient/{pid}/$everything?_count=500", headers=clinician).json()
        assert hidden not in _ids(everything) and shown in _ids(everything)
        rev = http.get(f"/fhir/Patient?_id={pid}&_revinclude=DetectedIssue:patient", headers=clinician).json()
        assert hidden not in _ids(rev) and shown in _ids(rev)
        # the hospital's own system still reads it
        assert http.get(f"/fhir/DetectedIssue/{hidden}", headers=system).status_code == 200


def test_a_cds_card_names_no_prior_result_labelled_beyond_the_clinician(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        w = HttpWorld(engine, http, system)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.label = "R"
        prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00").resource
        w.label = None
        w.report(A, alice_a, lft(A), "2026-03-10T09:00:00+08:00")
        clinician = _bearer(engine, "user", ["user/ServiceRequest.crus", "user/DiagnosticReport.rs", "user/Patient.rs"])
        assert http.get(f"/fhir/DiagnosticReport/{prior['id']}", headers=clinician).status_code == 404
        for service, hook in (("huren-recognition-select", "order-select"), ("huren-recognition-sign", "order-sign")):
            body = hook_request(hook, alice_b, [draft("d1", cbc(B), alice_b)], selections=["ServiceRequest/d1"])
            res = http.post(f"/cds-services/{service}", json=body, headers=clinician)
            assert res.status_code == 200, res.text
            assert res.json()["cards"] == [], res.text
            assert prior["id"] not in res.text
            # the unlabelled LFT is still recognisable, and named
            body = hook_request(hook, alice_b, [draft("d2", lft(B), alice_b)], selections=["ServiceRequest/d2"])
            cards = http.post(f"/cds-services/{service}", json=body, headers=clinician).json()["cards"]
            assert len(cards) == 1 and cards[0]["links"]
        # the hospital's system (shown every label) is still told of the CBC
        body = hook_request("order-select", alice_b, [draft("d3", cbc(B), alice_b)], selections=["ServiceRequest/d3"])
        cards = http.post("/cds-services/huren-recognition-select", json=body, headers=system).json()["cards"]
        assert len(cards) == 1 and prior["id"] in cards[0]["links"][0]["url"]
