"""secmend26: a CDS card or a ``$check-recognition`` answer that shows a result filed under another
record of the person is audited under every record whose data it disclosed (IHE BALP: one patient
entity per patient touched), and the resident whose result it was finds it in "who looked at my
record" -- which names no one else.

Through real HTTP against the real app: the hook call, the auditor's ``AuditEvent?patient=`` and
the resident's own ``/ui/me/who-looked`` after a real sign-in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_cds_hooks import draft, hook_request
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc
from tests.test_resident_who_looked import sign_in

SIGN = "/cds-services/huren-recognition-sign"
EHR = "system/ServiceRequest.crus system/DiagnosticReport.rs system/Patient.rs"


@pytest.fixture
def world(engine: Any) -> dict[str, Any]:
    """Alice with a CBC filed under her record at A and a record at B; Bob likewise."""
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE, mrn="A-1"), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    a_prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    w.report(A, bob_a, cbc(A), "2026-03-11T09:00:00+08:00")
    return {"http": TestClient(create_app(engine)), "alice_a": alice_a, "alice_b": alice_b, "bob_a": bob_a,
            "bob_b": bob_b, "alice_prior": f"DiagnosticReport/{a_prior.resource['id']}"}


def ehr(engine: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", EHR)}


def audit_under(engine: Any, http: TestClient, patient: str, operation: str) -> list[dict[str, Any]]:
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "audit-office", "system/AuditEvent.rs", kind="auditor")}
    found = http.get(f"/fhir/AuditEvent?{patient and 'patient=' + patient}&_count=100", headers=auditor).json()
    return [e["resource"] for e in found.get("entry", [])
            if any(d.get("valueString", "") == operation for x in e["resource"].get("entity", [])
                   for d in x.get("detail", []))]


def named(event: dict[str, Any]) -> set[str]:
    """The references a view names (a view names its one patient and that patient's resources)."""
    return {x["what"]["reference"] for x in event.get("entity", []) if x.get("what", {}).get("reference")}


def record_of(event: dict[str, Any]) -> str:
    """The signed record a per-patient view was derived from (``engine.audit.view``)."""
    return next(d["valueString"] for x in event.get("entity", []) for d in x.get("detail", [])
                if d.get("type") == "audit-record")


def test_a_card_is_audited_under_each_record_it_disclosed_and_no_other(engine: Any, world: dict[str, Any]) -> None:
    http, p = world["http"], world["alice_b"]
    r = http.post(SIGN, json=hook_request("order-sign", p, [draft("d1", cbc(B), p)]), headers=ehr(engine))
    [card] = r.json()["cards"]
    assert world["alice_prior"] in card["detail"]
    [under_a] = audit_under(engine, http, world["alice_a"], "cds:huren-recognition-sign")
    [under_b] = audit_under(engine, http, world["alice_b"], "cds:huren-recognition-sign")
    # one interaction, one view per record touched: the result under the record it is filed under
    assert record_of(under_a) == record_of(under_b)
    assert named(under_a) == {world["alice_a"], world["alice_prior"]}
    assert named(under_b) == {world["alice_b"]}
    for bob in (world["bob_a"], world["bob_b"]):
        assert audit_under(engine, http, bob, "cds:huren-recognition-sign") == []


def test_check_recognition_is_audited_under_each_record_it_disclosed(engine: Any, world: dict[str, Any]) -> None:
    http, p = world["http"], world["alice_b"]
    r = http.post("/fhir/ServiceRequest/$check-recognition", json={**draft("d1", cbc(B), p), "status": "active"},
                  headers=ehr(engine))
    assert r.status_code == 200 and world["alice_prior"].split("/")[1] in r.text, r.text
    [under_a] = audit_under(engine, http, world["alice_a"], "$check-recognition")
    [under_b] = audit_under(engine, http, world["alice_b"], "$check-recognition")
    assert record_of(under_a) == record_of(under_b)
    assert named(under_a) == {world["alice_a"], world["alice_prior"]}
    assert audit_under(engine, http, world["bob_a"], "$check-recognition") == []


def test_a_card_for_a_record_not_stored_is_in_the_residents_who_looked(engine: Any, world: dict[str, Any]) -> None:
    """An EHR asks about a record huren does not hold, sending its Patient as prefetch: the card
    shows Alice's result by her ID number. Audited only under the record asked about, no view of
    Alice's showed that her result was disclosed; now her "who looked" lists the EHR's call, and
    says nothing of the record it was asked for or of anyone else."""
    http = world["http"]
    stranger = "Patient/hb-not-stored"
    body = hook_request("order-sign", stranger, [draft("d1", cbc(B), stranger)])
    body["prefetch"] = {"patient": {"resourceType": "Patient", "id": "hb-not-stored", "identifier": [{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
        "system": "urn:oid:2.16.156.10011.1.1", "value": ALICE}]}}
    [card] = http.post(SIGN, json=body, headers=ehr(engine)).json()["cards"]
    assert world["alice_prior"] in card["detail"]
    alice = sign_in(http, engine, ALICE)
    r = http.get("/ui/me/who-looked", headers={"Authorization": "Bearer " + alice["access_token"]})
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    looked = [e for e in entries if e["who"] == "ehr-b"]
    assert looked and looked[0]["role"] == "system" and "DiagnosticReport" in looked[0]["resource_types"], entries
    text = json.dumps(entries, ensure_ascii=False)
    for other in ("hb-not-stored", world["bob_a"].split("/")[1], world["bob_b"].split("/")[1], BOB):
        assert other not in text
    [event] = audit_under(engine, http, world["alice_a"], "cds:huren-recognition-sign")
    assert named(event) == {world["alice_a"], world["alice_prior"]}
