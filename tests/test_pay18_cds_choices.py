"""A doctor's choice in CDS Hooks, as the recognition rate and the payment decision read it
(eighteenth round, pay18): real HTTP through FastAPI, the real store.

- A draft recognised in CDS counts for the doctor and department who made the choice: the rate
  by ordering doctor and by department must not credit it to nobody while the same doctor's
  re-tests count against them.
- A re-test reason the doctor gave in the CDS answer (an override, or a "re-test" suggestion
  accepted) is recorded at order time: the order signed from that draft is decided with it, even
  when the EHR sends the order without ``reasonCode``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, A, B, World, cbc

EHR = "system/ServiceRequest.crus system/Patient.rs system/DiagnosticReport.rs"
AUDITOR = "system/DetectedIssue.rus"
REASONS = "urn:huren:recognition-reason"


def bearer(engine: Any, scopes: str, kind: str = "system") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", scopes, kind=kind)}


@pytest.fixture
def ward(engine: Any) -> dict[str, Any]:
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    return {"http": TestClient(create_app(engine)), "alice_b": alice_b, "world": w}


def draft(did: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": did, "status": "draft", "intent": "order", "code": cbc(B),
            "subject": {"reference": patient}, "authoredOn": "2026-03-12T10:00:00+08:00",
            "requester": {"reference": "Practitioner/dr-wang", "display": "王医生"},
            "locationCode": [{"text": "内科"}]}


def card_for(engine: Any, http: TestClient, patient: str, did: str, instance: str) -> dict[str, Any]:
    body = {"hookInstance": instance, "hook": "order-sign",
            "context": {"userId": "Practitioner/dr-wang", "patientId": patient.split("/")[1],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": draft(did, patient)}]}}}
    res = http.post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine, EHR))
    assert res.status_code == 200, res.text
    [card] = res.json()["cards"]
    return card


def feedback(engine: Any, http: TestClient, item: dict[str, Any]) -> None:
    res = http.post("/cds-services/huren-recognition-sign/feedback", json={"feedback": [item]},
                    headers=bearer(engine, EHR))
    assert res.status_code == 200, res.text


def sign(engine: Any, http: TestClient, patient: str, did: str, **extra: Any) -> None:
    sr = {**draft(did, patient), "status": "active", **extra}
    res = http.put(f"/fhir/ServiceRequest/{did}", json=sr, headers=bearer(engine, EHR))
    assert res.status_code in (200, 201), res.text


def result(engine: Any, http: TestClient, patient: str, did: str, w: World) -> None:
    dr = {"resourceType": "DiagnosticReport", "id": f"rpt-{did}", "status": "final", "code": cbc(B),
          "subject": {"reference": patient}, "basedOn": [{"reference": f"ServiceRequest/{did}"}],
          "effectiveDateTime": "2026-03-12T11:00:00+08:00", "issued": "2026-03-12T12:00:00+08:00",
          "performer": [{"reference": w.organization(B)}]}
    res = http.put(f"/fhir/DiagnosticReport/rpt-{did}", json=dr,
                   headers=bearer(engine, "system/DiagnosticReport.cruds system/Patient.rs"))
    assert res.status_code in (200, 201), res.text


def report(engine: Any, http: TestClient) -> dict[str, Any]:
    res = http.get("/reports/duplicates", headers=bearer(engine, AUDITOR, kind="auditor"))
    assert res.status_code == 200, res.text
    return res.json()


def test_a_draft_recognised_in_cds_counts_for_its_doctor_and_department(engine: Any, ward: dict[str, Any]) -> None:
    http, p = ward["http"], ward["alice_b"]
    card = card_for(engine, http, p, "d1", "11111111-1111-4111-8111-111111111111")
    feedback(engine, http, {"card": card["uuid"], "outcome": "accepted",
                            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]})
    # the same doctor's next recognisable draft is signed as an order (a re-test)
    card_for(engine, http, p, "d2", "22222222-2222-4222-8222-222222222222")
    sign(engine, http, p, "d2")
    result(engine, http, p, "d2", ward["world"])
    by = report(engine, http)["recognition_rate_by"]
    assert by["doctor"] == {"王医生": {"recognisable": 2, "recognised": 1, "retested": 1, "pending": 0, "rate": 0.5}}
    assert set(by["dept"]) == {"阜宁县中医院 内科"}  # the ordering institution first (dept33)


@pytest.mark.parametrize(("how", "code", "comment", "expected"), [
    ("override", "R04", "急诊", ("justified", "R04")),
    ("suggestion", "R01", None, ("justified", "R01")),
    ("override", "R06", "术后出血需复查", ("justified", "R06")),  # the comment is R06's free text
    ("override", "R06", None, ("flagged", None)),  # R06 without text does not count
])
def test_a_reason_given_in_cds_decides_the_order_signed_from_the_draft(engine: Any, ward: dict[str, Any], how: str,
                                                                       code: str, comment: str | None,
                                                                       expected: tuple[str, str | None]) -> None:
    http, p, w = ward["http"], ward["alice_b"], ward["world"]
    card = card_for(engine, http, p, "d3", "33333333-3333-4333-8333-333333333333")
    if how == "override":
        reason: dict[str, Any] = {"reason": {"system": REASONS, "code": code}}
        if comment:
            reason["userComment"] = comment
        feedback(engine, http, {"card": card["uuid"], "outcome": "overridden", "overrideReason": reason})
    else:
        chosen = next(s for s in card["suggestions"] if code in s["label"])
        feedback(engine, http, {"card": card["uuid"], "outcome": "accepted",
                                "acceptedSuggestions": [{"id": chosen["uuid"]}]})
    sign(engine, http, p, "d3")  # the EHR sends the signed order without the reason
    result(engine, http, p, "d3", w)
    [row] = report(engine, http)["rows"]
    assert (row["status"], row["reason"]) == expected


HI = "66666666-6666-4666-8666-666666666666"  # a UUID (CDS Hooks 2.0): each call below is malformed otherwise


@pytest.mark.parametrize("path,body", [
    ("/cds-services/huren-recognition-sign/feedback", {"feedback": ["not-an-object"]}),
    ("/cds-services/huren-recognition-sign/feedback", {"feedback": [{"card": ["c"], "outcome": "accepted"}]}),
    ("/cds-services/huren-recognition-sign", {"hook": "order-sign", "hookInstance": HI,
                                              "context": {"patientId": "p", "draftOrders": ["x"]}}),
    ("/cds-services/huren-recognition-sign", {"hook": "order-sign", "hookInstance": HI,
                                              "context": {"patientId": "p", "draftOrders": {"entry": "x"}}}),
    ("/cds-services/huren-recognition-sign", {"hook": "order-sign", "hookInstance": HI,
                                              "context": {"patientId": "p"}, "prefetch": ["x"]}),
    ("/cds-services/huren-recognition-sign", {"hook": "order-sign", "hookInstance": HI,
                                              "context": {"patientId": ["p"]}}),
    ("/cds-services/huren-recognition-sign", {"hook": "order-sign", "hookInstance": HI,
                                              "context": {"patientId": "p", "selections": [{}]}}),
])
def test_a_malformed_hook_call_or_feedback_is_a_400_with_a_body(engine: Any, ward: dict[str, Any], path: str,
                                                                body: dict[str, Any]) -> None:
    """CDS Hooks: a bad request is a 4xx with a body, never a 500."""
    res = ward["http"].post(path, json=body, headers=bearer(engine, EHR))
    assert res.status_code == 400, res.text
    assert res.json()["resourceType"] == "OperationOutcome"


def test_a_bad_feedback_item_records_none_of_the_call(engine: Any, ward: dict[str, Any]) -> None:
    """A feedback call whose second item is malformed is refused whole: the first item's
    "recognise" is not counted in the rate behind a 400 answer."""
    http, p = ward["http"], ward["alice_b"]
    card = card_for(engine, http, p, "d4", "44444444-4444-4444-8444-444444444444")
    good = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
    for bad in ({"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": ["x"]},
                {"card": card["uuid"], "outcome": "overridden", "overrideReason": "R01"}):
        res = http.post("/cds-services/huren-recognition-sign/feedback", json={"feedback": [good, bad]},
                        headers=bearer(engine, EHR))
        assert res.status_code == 400 and res.json()["resourceType"] == "OperationOutcome", res.text
    assert report(engine, http)["recognition_rate"] == {}


@pytest.mark.parametrize(("text", "expected"), [("其他必要复查 other necessary re-test", "flagged"),
                                                ("其他必要复查", "flagged"), ("家属坚持复查", "justified")])
def test_a_fhir_r06_whose_text_repeats_its_display_is_not_free_text(engine: Any, ward: dict[str, Any], text: str,
                                                                    expected: str) -> None:
    w, p = ward["world"], ward["alice_b"]
    o = w.order(B, p, cbc(B), "2026-03-12T10:00:00+08:00", reasons=("R06",), reason_text=text)
    w.report(B, p, cbc(B), "2026-03-12T11:00:00+08:00", order=o)
    [row] = report(engine, ward["http"])["rows"]
    assert row["status"] == expected


def test_a_reason_given_for_a_draft_of_another_day_does_not_carry(engine: Any, ward: dict[str, Any]) -> None:
    """An EHR that reuses draft ids: R04 given in CDS for last week's draft "d5" (never signed)
    does not justify this week's order signed under the same id."""
    http, p, w = ward["http"], ward["alice_b"], ward["world"]
    card = card_for(engine, http, p, "d5", "55555555-5555-4555-8555-555555555555")
    feedback(engine, http, {"card": card["uuid"], "outcome": "overridden",
                            "overrideReason": {"reason": {"system": REASONS, "code": "R04"}}})
    sign(engine, http, p, "d5", authoredOn="2026-03-14T10:00:00+08:00")  # two days after the card's draft
    result(engine, http, p, "d5", w)
    [row] = report(engine, http)["rows"]
    assert (row["status"], row["reason"]) == ("flagged", None)
