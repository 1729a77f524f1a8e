"""secmend26: a CDS card kept for feedback is its caller's own, and hookInstance is a UUID.

CDS Hooks 2.0 §HTTP Request (hookInstance: "a universally unique identifier (UUID) for this
particular hook call"), §Feedback (feedback names a card by its uuid; a card the service does not
know is a 404). Through real HTTP against the real app; the rows checked are the ones the service
records the feedback from.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition.state import CARDS, CHECKS
from tests.test_cds_hooks import draft, hook_request
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc

SIGN = "/cds-services/huren-recognition-sign"
EHR = "system/ServiceRequest.crus system/DiagnosticReport.rs"


@pytest.fixture
def two(engine: Any) -> dict[str, Any]:
    """Alice and Bob each with a CBC at hospital A, each registered at hospital B."""
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE, mrn="A-1"), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    a_prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    b_prior = w.report(A, bob_a, cbc(A), "2026-03-11T09:00:00+08:00")
    return {"http": TestClient(create_app(engine)), "alice": alice_b, "bob": bob_b,
            "alice_prior": f"DiagnosticReport/{a_prior.resource['id']}",
            "bob_prior": f"DiagnosticReport/{b_prior.resource['id']}"}


def system(engine: Any, client: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token(client, EHR)}


def user(engine: Any, client: str, practitioner: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=practitioner, kind="user", client_id=client,
                                       scopes=["user/ServiceRequest.crus", "user/DiagnosticReport.rs"])
    return {"Authorization": f"Bearer {token}"}


def card(two: dict[str, Any], who: dict[str, str], patient: str, hi: str, did: str = "d1") -> dict[str, Any]:
    body = {**hook_request("order-sign", patient, [draft(did, cbc(B), patient)]), "hookInstance": hi}
    r = two["http"].post(SIGN, json=body, headers=who)
    assert r.status_code == 200, r.text
    [c] = r.json()["cards"]
    return c


def recognise(c: dict[str, Any]) -> dict[str, Any]:
    return {"feedback": [{"card": c["uuid"], "outcome": "accepted",
                          "acceptedSuggestions": [{"id": c["suggestions"][0]["uuid"]}]}]}


def test_feedback_on_another_clients_card_is_404_and_records_nothing(engine: Any, two: dict[str, Any]) -> None:
    hi = str(uuid.uuid4())
    a_card = card(two, system(engine, "ehr-1"), two["alice"], hi)
    r = two["http"].post(SIGN + "/feedback", json=recognise(a_card), headers=system(engine, "ehr-2"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert engine.recognition.store.collection(CHECKS).get(f"cds:{a_card['uuid']}") is None
    # the caller it was given to answers it
    r = two["http"].post(SIGN + "/feedback", json=recognise(a_card), headers=system(engine, "ehr-1"))
    assert r.status_code == 200 and r.json()["recorded"][0]["choice"] == "recognised", r.text
    row = engine.recognition.store.collection(CHECKS).get(f"cds:{a_card['uuid']}")
    assert row["patient"] == two["alice"] and row["outcome"] == "recognised"


def test_two_practitioners_of_one_client_each_keep_their_own_card(engine: Any, two: dict[str, Any]) -> None:
    """User tokens of one EHR client for two doctors, same hookInstance and draft id, two people:
    two cards; neither doctor can answer the other's."""
    hi = str(uuid.uuid4())
    wang, li = user(engine, "ehr-1", "Practitioner/wang"), user(engine, "ehr-1", "Practitioner/li")
    a_card = card(two, wang, two["alice"], hi)
    b_card = card(two, li, two["bob"], hi)
    assert a_card["uuid"] != b_card["uuid"]
    assert two["http"].post(SIGN + "/feedback", json=recognise(a_card), headers=li).status_code == 404
    assert two["http"].post(SIGN + "/feedback", json=recognise(a_card), headers=wang).status_code == 200
    rows = engine.recognition.store.collection(CARDS)
    assert (rows.get(a_card["uuid"])["patient"], rows.get(b_card["uuid"])["patient"]) == (two["alice"], two["bob"])


def test_one_caller_same_hook_instance_and_draft_id_for_two_people(engine: Any, two: dict[str, Any]) -> None:
    """A client reusing a hookInstance and draft id for another person: a card per person, and
    the first card's feedback is recorded for the first person's order."""
    hi, ehr = str(uuid.uuid4()), system(engine, "ehr-1")
    a_card = card(two, ehr, two["alice"], hi)
    b_card = card(two, ehr, two["bob"], hi)
    assert a_card["uuid"] != b_card["uuid"]
    assert two["http"].post(SIGN + "/feedback", json=recognise(a_card), headers=ehr).status_code == 200
    kept = engine.recognition.store.collection(CARDS).get(a_card["uuid"])
    assert kept["patient"] == two["alice"] and kept["recognisable"] == [two["alice_prior"]]
    row = engine.recognition.store.collection(CHECKS).get(f"cds:{a_card['uuid']}")
    assert row["patient"] == two["alice"] and row["recognisable"] == [two["alice_prior"]]


def test_the_same_call_again_keeps_one_card(engine: Any, two: dict[str, Any]) -> None:
    """The same caller asking again for the same hook call and draft: the same card, replaced."""
    hi, ehr = str(uuid.uuid4()), system(engine, "ehr-1")
    assert card(two, ehr, two["alice"], hi)["uuid"] == card(two, ehr, two["alice"], hi.upper())["uuid"]


@pytest.mark.parametrize("bad", [12345, ["d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"], "d1577c69dfbe44adba6d3e05e953b2ea",
                                 "urn:uuid:d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", " d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"])
def test_a_hook_instance_that_is_not_a_uuid_is_400_naming_it(engine: Any, two: dict[str, Any], bad: Any) -> None:
    body = {**hook_request("order-sign", two["alice"], [draft("d1", cbc(B), two["alice"])]), "hookInstance": bad}
    r = two["http"].post(SIGN, json=body, headers=system(engine, "ehr-1"))
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and "hookInstance must be a UUID" in r.text
    assert not engine.recognition.store.collection(CARDS).find({})
