"""A recognition flag carries the label of the results it cites (nineteenth round, labels19).

Found wrong: the duplicate flag (``DetectedIssue``) names its prior and repeated results, both
institutions, the dates and the item, but did not carry their confidentiality label, so an auditor
(or a clinician's session) who reads 404 for an R-labelled result read the flag that describes it
-- by id, in a search and its total. The flag is now labelled as the most confidential record it
cites, each time it is written (a review keeps it); the hospital's system still reads it.

Results sent by the hospitals' system over real HTTP (PUT), the flag written by the real
recognition hook, read over real HTTP with real tokens; the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


class HttpWorld(World):
    """The recognition world, each resource sent as the hospitals' system sends it (PUT), an
    ``R`` label on the ones asked for."""

    def __init__(self, engine: Any, http: TestClient, system: dict[str, str]) -> None:
        super().__init__(engine)
        self.http, self.system = http, system
        self.label: str | None = None

    def _put(self, resource: dict[str, Any]) -> Any:
        if self.label:
            resource = {**resource, "meta": {"security": [{"system": CONF, "code": self.label}]}}
        r = self.http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=self.system)
        assert r.status_code in (200, 201), r.text

        class Stored:
            pass

        stored = Stored()
        stored.resource = r.json()  # type: ignore[attr-defined]
        return stored


def _bearer(engine: Any, kind: str, scopes: list[str]) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-x", kind=kind, client_id=f"{kind}-app", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def test_a_flag_citing_a_restricted_result_is_withheld_as_the_result_is(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        w = HttpWorld(engine, http, system)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.label = "R"  # hospital A's CBC of Alice is restricted; her LFT is not
        prior = w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00").resource
        w.label = None
        w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
        o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
        o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")
        w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)

        flags = http.get("/fhir/DetectedIssue?_count=100", headers=system).json()
        by_prior = {e["resource"]["evidence"][0]["detail"][0]["reference"]: e["resource"]
                    for e in flags.get("entry") or () if e["resource"]["id"].startswith("dup-")}
        assert len(by_prior) == 2, flags
        restricted = by_prior.pop(f"DiagnosticReport/{prior['id']}")
        plain = next(iter(by_prior.values()))
        assert restricted["meta"]["security"] == [{"system": CONF, "code": "R"}]
        assert "security" not in plain["meta"]

        auditor = _bearer(engine, "auditor", ["system/DetectedIssue.rs", "system/DiagnosticReport.rs"])
        clinician = _bearer(engine, "user", ["user/DetectedIssue.rs", "user/DiagnosticReport.rs"])
        for who in (auditor, clinician):
            assert http.get(f"/fhir/DiagnosticReport/{prior['id']}", headers=who).status_code == 404
            assert http.get(f"/fhir/DetectedIssue/{restricted['id']}", headers=who).status_code == 404
            assert http.get(f"/fhir/DetectedIssue/{plain['id']}", headers=who).status_code == 200
            found = http.get("/fhir/DetectedIssue?_id=" + ",".join([restricted["id"], plain["id"]]), headers=who).json()
            assert ({e["resource"]["id"] for e in found.get("entry") or ()}, found["total"]) == ({plain["id"]}, 1)
        assert http.get(f"/fhir/DetectedIssue/{restricted['id']}", headers=system).status_code == 200

        # a review writes the flag again: the label stays. (labelsmend20: an auditor not shown R
        # cannot review it -- 404, as for no flag; the hospital system shown every label can.)
        refused = http.post(f"/reports/duplicates/{restricted['id']}/review",
                            json={"decision": "upheld", "reason": "复核属实"},
                            headers=_bearer(engine, "auditor", ["system/DetectedIssue.rus"]))
        assert refused.status_code == 404, refused.text
        review = http.post(f"/reports/duplicates/{restricted['id']}/review",
                           json={"decision": "upheld", "reason": "复核属实"}, headers=system)
        assert review.status_code == 200, review.text
        again = http.get(f"/fhir/DetectedIssue/{restricted['id']}", headers=system).json()
        assert again["mitigation"][-1]["action"]["coding"][0]["code"] == "upheld"
        assert again["meta"]["security"] == [{"system": CONF, "code": "R"}]
        assert http.get(f"/fhir/DetectedIssue/{restricted['id']}", headers=auditor).status_code == 404


def test_check_recognition_does_not_tell_a_clinician_of_a_restricted_result(engine: Any) -> None:
    """``$check-recognition`` listed an R-labelled prior result (its institution and date) to a
    clinician who reads it 404; only a resident's list was narrowed to what they may read."""
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        w = HttpWorld(engine, http, system)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.label = "R"
        w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
        w.label = None
        w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")

        def recognisable(who: dict[str, str], loinc: str) -> int:
            r = http.post("/fhir/ServiceRequest/$check-recognition", headers=who, json={
                "resourceType": "Parameters", "parameter": [
                    {"name": "patient", "valueReference": {"reference": alice_b}},
                    {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": loinc}},
                    {"name": "institution", "valueString": B}, {"name": "date", "valueDate": "2026-03-02"}]})
            assert r.status_code == 200, r.text
            return len([p for p in r.json().get("parameter") or () if p["name"] == "recognisable"])

        clinician = _bearer(engine, "user", ["user/ServiceRequest.rs", "user/DiagnosticReport.rs"])
        assert (recognisable(system, "58410-2"), recognisable(system, "24325-3")) == (1, 1)
        assert (recognisable(clinician, "58410-2"), recognisable(clinician, "24325-3")) == (0, 1)
