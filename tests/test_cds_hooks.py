"""CDS Hooks: discovery, order-select / order-sign cards for recognisable results, feedback."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc, lft

# a CDS call records the doctor's decision: the EHR needs ServiceRequest write, not only read
EHR = "system/ServiceRequest.crus system/Patient.rs system/DiagnosticReport.rs"


def bearer(engine: Any, scopes: str = EHR, kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", scopes, kind=kind)}


@pytest.fixture
def ward(engine: Any) -> dict[str, Any]:
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    bob_b = w.patient(B, BOB, mrn="B-2")
    return {"http": TestClient(create_app(engine)), "alice_b": alice_b, "bob_b": bob_b,
            "prior": f"DiagnosticReport/{prior.resource['id']}"}


def hook_request(hook: str, patient: str, drafts: list[dict[str, Any]], selections: list[str] | None = None) -> dict:
    context: dict[str, Any] = {"userId": "Practitioner/dr-wang", "patientId": patient.split("/")[1],
                               "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                               "entry": [{"resource": d} for d in drafts]}}
    if selections is not None:
        context["selections"] = selections
    return {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": hook, "context": context}


def draft(did: str, code: dict[str, Any], patient: str) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": did, "status": "draft", "intent": "order", "code": code,
            "subject": {"reference": patient}, "authoredOn": "2026-03-12T10:00:00+08:00"}


def test_discovery_lists_both_hooks(ward: dict[str, Any]) -> None:
    services = ward["http"].get("/cds-services").json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("huren-recognition-select", "order-select"), ("huren-recognition-sign", "order-sign")}
    assert all(s["prefetch"]["patient"] == "Patient/{{context.patientId}}" for s in services)


def test_order_select_card_links_prior_result_with_suggestions(engine: Any, ward: dict[str, Any]) -> None:
    p = ward["alice_b"]
    body = hook_request("order-select", p, [draft("d1", cbc(B), p), draft("d2", lft(B), p)],
                        selections=["ServiceRequest/d1"])
    res = ward["http"].post("/cds-services/huren-recognition-select", json=body, headers=bearer(engine))
    assert res.status_code == 200, res.text
    [card] = res.json()["cards"]
    assert card["indicator"] == "warning" and len(card["summary"]) <= 140
    assert card["links"][0]["url"].endswith(ward["prior"])
    recognise, *retests = card["suggestions"]
    assert recognise["isRecommended"] and recognise["actions"] == [
        {"type": "delete", "description": "Remove the draft order for 血常规", "resourceId": ["ServiceRequest/d1"]}]
    assert [s["actions"][0]["resource"]["reasonCode"][0]["coding"][0]["code"] for s in retests] == ["R01", "R02", "R03"]
    assert {r["code"] for r in card["overrideReasons"]} >= {"R01", "R06", "R09", "R98", "R99"}
    # the LFT draft (not selected, nothing recognisable anyway) gets no card; nothing is stored as an order
    assert engine.recognition.checks.find({"source": "order"}) == []


def test_order_sign_checks_every_draft(engine: Any, ward: dict[str, Any]) -> None:
    p = ward["alice_b"]
    body = hook_request("order-sign", p, [draft("d1", cbc(B), p), draft("d2", lft(B), p)])
    cards = ward["http"].post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine)).json()["cards"]
    assert len(cards) == 1  # only CBC has a prior result
    body = hook_request("order-sign", ward["bob_b"], [draft("d3", cbc(B), ward["bob_b"])])
    assert ward["http"].post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine)).json() == {"cards": []}


def test_feedback_recognised_counts_in_the_rate(engine: Any, ward: dict[str, Any]) -> None:
    p = ward["alice_b"]
    http = ward["http"]
    body = hook_request("order-select", p, [draft("d1", cbc(B), p)], selections=["ServiceRequest/d1"])
    [card] = http.post("/cds-services/huren-recognition-select", json=body, headers=bearer(engine)).json()["cards"]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                        "outcomeTimestamp": "2026-03-12T10:01:00+08:00"}]}
    res = http.post("/cds-services/huren-recognition-select/feedback", json=fb, headers=bearer(engine))
    assert res.status_code == 200, res.text
    assert res.json()["recorded"] == [{"card": card["uuid"], "choice": "recognised", "reason": None}]
    from engine.recognition.reports import ReportFilter, recognition_rate

    assert recognition_rate(engine.recognition, ReportFilter())[B] == {
        "recognisable": 1, "recognised": 1, "retested": 0, "pending": 0, "rate": 1.0}


def test_feedback_override_records_the_reason(engine: Any, ward: dict[str, Any]) -> None:
    p = ward["alice_b"]
    http = ward["http"]
    body = hook_request("order-sign", p, [draft("d1", cbc(B), p)])
    [card] = http.post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine)).json()["cards"]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                        "overrideReason": {"reason": {"system": "urn:huren:recognition-reason", "code": "R04"},
                                           "userComment": "急诊"}, "outcomeTimestamp": "2026-03-12T10:01:00+08:00"}]}
    res = http.post("/cds-services/huren-recognition-sign/feedback", json=fb, headers=bearer(engine))
    assert res.json()["recorded"][0] == {"card": card["uuid"], "choice": "retest", "reason": "R04"}
    # an override is not counted itself: the order that follows is
    from engine.recognition.reports import ReportFilter, recognition_rate

    assert recognition_rate(engine.recognition, ReportFilter()) == {}


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/cds-services/nope", {"hook": "order-select"}, 404),
    ("/cds-services/huren-recognition-select", {"hook": "order-sign", "hookInstance": "x", "context": {}}, 400),
    ("/cds-services/huren-recognition-select", {"hook": "order-select", "context": {"patientId": "x"}}, 400),
    ("/cds-services/huren-recognition-select/feedback", {"feedback": [{"card": "unknown", "outcome": "accepted"}]}, 404),
])
def test_bad_requests(engine: Any, ward: dict[str, Any], path: str, body: dict, status: int) -> None:
    res = ward["http"].post(path, json=body, headers=bearer(engine))
    assert res.status_code == status
    assert res.json()["resourceType"] == "OperationOutcome"


def test_needs_a_token_with_service_request_write(engine: Any, ward: dict[str, Any]) -> None:
    p = ward["alice_b"]
    body = hook_request("order-select", p, [draft("d1", cbc(B), p)])
    assert ward["http"].post("/cds-services/huren-recognition-select", json=body).status_code == 401
    for scopes in ("system/Patient.rs", "system/ServiceRequest.rs system/Patient.rs system/DiagnosticReport.rs"):
        res = ward["http"].post("/cds-services/huren-recognition-select", json=body, headers=bearer(engine, scopes))
        assert res.status_code == 403, (scopes, res.text)


def test_a_resident_token_cannot_decide_or_move_the_rate(engine: Any, ward: dict[str, Any]) -> None:
    """A patient-context token -- even one that somehow carries ServiceRequest write -- can neither
    ask for cards nor post feedback on a card a doctor got, so the recognition rate does not move."""
    p = ward["alice_b"]
    http = ward["http"]
    body = hook_request("order-select", p, [draft("d1", cbc(B), p)], selections=["ServiceRequest/d1"])
    [card] = http.post("/cds-services/huren-recognition-select", json=body, headers=bearer(engine)).json()["cards"]
    pid = p.split("/")[1]
    for scopes in (["patient/*.rs"], ["patient/*.cruds"]):
        token, _ = engine.auth.issue_token(subject="person-alice", kind="patient", client_id="phr", scopes=scopes,
                                           patient=pid)
        resident = {"Authorization": f"Bearer {token}"}
        assert http.post("/cds-services/huren-recognition-select", json=body, headers=resident).status_code == 403
        fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]}
        res = http.post("/cds-services/huren-recognition-select/feedback", json=fb, headers=resident)
        assert res.status_code == 403, res.text
    from engine.recognition.reports import ReportFilter, recognition_rate

    assert recognition_rate(engine.recognition, ReportFilter()) == {}
