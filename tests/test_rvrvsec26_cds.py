"""rvsec26: review probes of secmend26's CDS changes (cards per caller, hookInstance a UUID,
disclosures audited under each record). Real HTTP against the real app, real store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition.state import CARDS, CHECKS
from tests.test_cds_hooks import draft, hook_request
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc, national_id
from tests.test_resident_who_looked import sign_in

SIGN = "/cds-services/huren-recognition-sign"
EHR = "system/ServiceRequest.crus system/DiagnosticReport.rs system/Patient.rs"
V = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}


@pytest.fixture
def two(engine: Any) -> dict[str, Any]:
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE, mrn="A-1"), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    a_prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    w.report(A, bob_a, cbc(A), "2026-03-11T09:00:00+08:00")
    return {"http": TestClient(create_app(engine)), "w": w, "alice_a": alice_a, "alice": alice_b, "bob": bob_b,
            "alice_prior": f"DiagnosticReport/{a_prior.resource['id']}"}


def user(engine: Any, client: str, practitioner: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=practitioner, kind="user", client_id=client,
                                       scopes=["user/ServiceRequest.crus", "user/DiagnosticReport.rs"])
    return {"Authorization": f"Bearer {token}"}


def system(engine: Any, client: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, EHR)}


def card(http: TestClient, who: dict[str, str], patient: str, hi: str) -> dict[str, Any]:
    body = {**hook_request("order-sign", patient, [draft("d1", cbc(B), patient)]), "hookInstance": hi}
    r = http.post(SIGN, json=body, headers=who)
    assert r.status_code == 200, r.text
    [c] = r.json()["cards"]
    return c


def recognise(c: dict[str, Any]) -> dict[str, Any]:
    return {"feedback": [{"card": c["uuid"], "outcome": "accepted",
                          "acceptedSuggestions": [{"id": c["suggestions"][0]["uuid"]}]}]}


def test_same_doctor_answers_her_card_through_a_second_token(engine: Any, two: dict[str, Any]) -> None:
    """The card was asked with one access token of Dr Wang; her EHR's next token (same client, same
    practitioner) sends the feedback: it is hers, recorded."""
    http, hi = two["http"], str(uuid.uuid4())
    c = card(http, user(engine, "ehr-1", "Practitioner/wang"), two["alice"], hi)
    r = http.post(SIGN + "/feedback", json=recognise(c), headers=user(engine, "ehr-1", "Practitioner/wang"))
    assert r.status_code == 200 and r.json()["recorded"][0]["choice"] == "recognised", r.text
    assert engine.recognition.store.collection(CHECKS).get(f"cds:{c['uuid']}")["patient"] == two["alice"]
    # a system client's next token is the same caller too
    c = card(http, system(engine, "ehr-2"), two["alice"], str(uuid.uuid4()))
    assert http.post(SIGN + "/feedback", json=recognise(c), headers=system(engine, "ehr-2")).status_code == 200


def test_another_doctor_of_the_same_client_gets_404_and_nothing_recorded(engine: Any, two: dict[str, Any]) -> None:
    http = two["http"]
    c = card(http, user(engine, "ehr-1", "Practitioner/wang"), two["alice"], str(uuid.uuid4()))
    r = http.post(SIGN + "/feedback", json=recognise(c), headers=user(engine, "ehr-1", "Practitioner/li"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert engine.recognition.store.collection(CHECKS).get(f"cds:{c['uuid']}") is None
    assert c["uuid"] not in r.text or "unknown card" in r.text  # told nothing beyond "unknown"


@pytest.mark.parametrize("bad", ["d1577c69-dfbe-44ad-ba6d-3e05e953b2ea\n", "D1577C69-DFBE-44AD-BA6D-3E05E953B2EA\n"])
def test_a_hook_instance_with_a_trailing_newline_is_not_a_uuid(engine: Any, two: dict[str, Any], bad: str) -> None:
    """``re.match`` with ``$`` accepts one trailing newline: "uuid\\n" is not a UUID's text form."""
    body = {**hook_request("order-sign", two["alice"], [draft("d1", cbc(B), two["alice"])]), "hookInstance": bad}
    r = two["http"].post(SIGN, json=body, headers=system(engine, "ehr-1"))
    assert r.status_code == 400 and "hookInstance must be a UUID" in r.text, r.text
    assert not engine.recognition.store.collection(CARDS).find({})


def test_a_card_row_names_whom_it_was_given_to_and_the_same_call_again_keeps_it(engine: Any, two: dict[str, Any]) -> None:
    http, hi, ehr = two["http"], str(uuid.uuid4()), system(engine, "ehr-1")
    first = card(http, ehr, two["alice"], hi)
    again = card(http, ehr, two["alice"], hi)
    assert first["uuid"] == again["uuid"]
    rows = engine.recognition.store.collection(CARDS).find({})
    assert len(rows) == 1 and rows[0]["to"] == ["ehr-1", "ehr-1"] and rows[0]["patient"] == two["alice"]


def test_a_v_labelled_prior_shown_to_an_ehr_is_not_named_to_its_owner(engine: Any, two: dict[str, Any]) -> None:
    """Alice-like Ada's only prior at A is labelled V (withheld from her). An EHR asks about a
    record huren does not hold (prefetch: Ada's ID number) and is shown that result; the call is
    now audited under Ada's record too. Her own "who looked" and ``AuditEvent?patient=`` may list
    the access (the project's rule for a read of a V record: the event stays, naming her Patient
    only, ``ScopedRepository._without_unseen``) but never the withheld result's id or type."""
    http, w = two["http"], two["w"]
    ada = national_id("32092319870202002")  # a person whose only prior is V-labelled
    ada_a = w.patient(A, ada, mrn="A-9")
    prior = w.report(A, ada_a, cbc(A), "2026-03-10T09:00:00+08:00")
    engine.repository.update({**prior.resource, "meta": V})
    ref = f"DiagnosticReport/{prior.resource['id']}"
    stranger = "Patient/hb-not-stored"
    body = hook_request("order-sign", stranger, [draft("d1", cbc(B), stranger)])
    body["prefetch"] = {"patient": {"resourceType": "Patient", "id": "hb-not-stored", "identifier": [{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
        "system": "urn:oid:2.16.156.10011.1.1", "value": ada}]}}
    r = http.post(SIGN, json=body, headers=system(engine, "ehr-b"))
    assert r.status_code == 200 and ref in r.text, r.text  # an unrestricted system client is shown it
    me = sign_in(http, engine, ada)
    bearer = {"Authorization": "Bearer " + me["access_token"]}
    entries = http.get("/ui/me/who-looked", headers=bearer).json()["entries"]
    [looked] = [e for e in entries if e["who"] == "ehr-b"]
    assert looked["resource_types"] == [], entries
    found = http.get(f"/fhir/AuditEvent?patient={ada_a.split('/')[1]}", headers=bearer)
    assert found.status_code == 200
    assert prior.resource["id"] not in found.text and "DiagnosticReport" not in found.text, found.text
    assert "hb-not-stored" not in found.text
