"""A reason carried from a CDS answer to its order is no reason of the order's own (nineteenth
round, moneymend19, the review of money19): HL7 over a real MLLP socket, CDS Hooks calls and
feedback over real HTTP, the real store, both stores.

- The doctor answers R01 in CDS, the HIS's order (placer B1) arrives and takes R01, then the
  doctor answers R07 (self-pay) for the same draft before any result: R07 stands (R01 was read as
  the order's own reason and the fund paid a self-pay test).
- Two drafts numbered B1 answered differently: which one the order is cannot be told; the reason
  carried from the first is cleared.
- The order's own reason (ORC-16) still wins over any CDS answer.
- A draft with two placer numbers is found by either (the second was never linked).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests import test_money19_cds_orders
from tests.test_money19_cds_orders import PLAC, flags, override, setup
from tests.test_pay18_cds_choices import EHR, bearer, feedback
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_recognition_policy_e2e import result as oru

engine = test_money19_cds_orders.engine  # the fixture: the policy community on each store


def card(engine: Engine, http: TestClient, patient: str, instance: str, draft_id: str = "draft-77",
         placers: tuple[str, ...] = ("B1",)) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": draft_id, "status": "draft", "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": f"{ts(1)[:4]}-{ts(1)[4:6]}-{ts(1)[6:8]}T07:30:00+08:00",
        "identifier": [{"system": "http://hospb.example/his/order", "value": p, "type": PLAC} for p in placers]}
    body = {"hookInstance": instance, "hook": "order-sign",
            "context": {"userId": "Practitioner/d7", "patientId": patient,
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}}
    res = http.post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine, EHR))
    assert res.status_code == 200, res.text
    [c] = res.json()["cards"]
    return c


FIRST, SECOND = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize("order_between", [False, True], ids=["order-after", "order-between"])
def test_the_doctors_later_answer_stands_over_the_one_copied_to_the_order(engine: Engine, mllp: int,
                                                                          order_between: bool) -> None:
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, card(engine, http, patient, FIRST), "R01")
    if order_between:
        hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    override(engine, http, card(engine, http, patient, SECOND), "R07")
    if not order_between:
        hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_two_drafts_of_one_number_answered_differently_clear_the_copied_reason(engine: Engine, mllp: int) -> None:
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, card(engine, http, patient, FIRST, "draft-77"), "R01")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    override(engine, http, card(engine, http, patient, SECOND, "draft-78"), "R07")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("flagged", None), flag


R07 = "R07^家属要求^urn:huren:recognition-reason"


def test_the_orders_own_reason_still_wins_over_a_later_answer(engine: Engine, mllp: int) -> None:
    """ORC-16 R07 on the HIS's order is the order's own: the doctor's later R01 in CDS is not."""
    hl7, http, patient = setup(engine, mllp)
    c = card(engine, http, patient, FIRST)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R07))
    override(engine, http, c, "R01")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


def test_an_order_update_stating_its_own_reason_replaces_the_copied_one(engine: Engine, mllp: int) -> None:
    """The order took R01 from CDS; its update (ORC-1 XO) before the result states R07: R07 alone."""
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, card(engine, http, patient, FIRST), "R01")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1, 5), reason=R07, control="XO"))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("self_pay", "R07"), flag


@pytest.mark.parametrize("sent", ["B1", "B9"])
def test_a_draft_with_two_placer_numbers_is_found_by_either(engine: Engine, mllp: int, sent: str) -> None:
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, card(engine, http, patient, FIRST, placers=("B1", "B9")), "R04")
    hl7.send(order("HOSPB", sent, CBC, ts(1)))
    hl7.send(oru("HOSPB", sent, CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag


def test_a_draft_recognised_under_two_numbers_and_placed_by_the_second_counts_once(engine: Engine, mllp: int) -> None:
    hl7, http, patient = setup(engine, mllp)
    c = card(engine, http, patient, FIRST, placers=("B1", "B9"))
    feedback(engine, http, {"card": c["uuid"], "outcome": "accepted",
                            "acceptedSuggestions": [{"id": c["suggestions"][0]["uuid"]}]})
    hl7.send(order("HOSPB", "B9", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B9", CBC, ts(1, 10)))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rs", kind="auditor")
    rate = http.get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"}).json()["recognition_rate"]
    assert (rate["HOSPB"]["recognisable"], rate["HOSPB"]["recognised"]) == (1, 0), rate


def test_an_answer_after_the_order_finds_it_among_many_numbered_alike(engine: Engine, mllp: int) -> None:
    """Placer numbers restart and repeat: 25 other orders numbered B1 (another system's, stored
    first, ids sorting first) hid the HIS's order from the first page of 20 searched."""
    hl7, http, patient = setup(engine, mllp)
    c = card(engine, http, patient, FIRST)
    token = engine.auth.issue_system_token("ehr-other", "system/ServiceRequest.cruds")
    for n in range(25):
        other = {"resourceType": "ServiceRequest", "id": f"a-other-{n:02d}", "status": "active", "intent": "order",
                 "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
                 "subject": {"reference": "Patient/someone-else"},
                 "identifier": [{"system": f"http://clinic{n}.example/order", "value": "B1", "type": PLAC}]}
        res = http.put(f"/fhir/ServiceRequest/{other['id']}", json=other, headers={"Authorization": f"Bearer {token}"})
        assert res.status_code in (200, 201), res.text
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    override(engine, http, c, "R04")  # posted once the HIS's order is recorded
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag
