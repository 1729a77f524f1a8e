"""A doctor's CDS answer and the order it belongs to (nineteenth round, money19): HL7 over a real
MLLP socket, CDS Hooks calls and feedback over real HTTP, the real store.

- The HIS's HL7 order (ORM) for a draft answered in CDS has another id than the draft (its placer
  number's): it is the same order when its placer number (ORC-2) is the draft's (its identifier
  typed PLAC) for the same person, item, institution and day. The reason given in CDS then holds
  for it. An order of the same test with another placer number is another order: no reason.
- A CDS answer given once the order is already recorded (signed and sent before the feedback) is
  an order-time reason while no result of the order has been decided on; after that it is a late
  reason, shown for the auditor and not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.shared_worlds44d import Own, own_sender, policy_eng, policy_mllp  # noqa: F401 -- fixtures (own's)
from tests.test_pay18_cds_choices import EHR, REASONS, bearer, feedback
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC) on each store."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng

PLAC = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]}


def register(hl7: Sender, inst: str) -> None:
    when = ts(2)
    ack = hl7.send(msh(inst, "HIS", "ADT^A04^ADT_A01", when, f"{inst}-A04") + f"EVN|A04|{when}\n" + pid(inst)
                   + "PV1|1|O\n")
    assert "MSA|AA" in ack, ack


def patient_id(engine: Engine, inst: str) -> str:
    [p] = engine.repository.search("Patient", [("identifier", f"MRN-{inst}")]).resources
    return str(p["id"])


def cds_card(engine: Engine, http: TestClient, patient: str, placer: str | None) -> dict[str, Any]:
    draft: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": "draft-77", "status": "draft", "intent": "order",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": f"{ts(1)[:4]}-{ts(1)[4:6]}-{ts(1)[6:8]}T07:30:00+08:00",
    }
    if placer:
        draft["identifier"] = [{"system": "http://hospb.example/his/order", "value": placer, "type": PLAC}]
    body = {"hookInstance": "77777777-7777-4777-8777-777777777777", "hook": "order-sign",
            "context": {"userId": "Practitioner/d7", "patientId": patient,
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}}
    res = http.post("/cds-services/huren-recognition-sign", json=body, headers=bearer(engine, EHR))
    assert res.status_code == 200, res.text
    [card] = res.json()["cards"]
    return card


def override(engine: Engine, http: TestClient, card: dict[str, Any], code: str) -> None:
    feedback(engine, http, {"card": card["uuid"], "outcome": "overridden",
                            "overrideReason": {"reason": {"system": REASONS, "code": code}}})


def flags(engine: Engine) -> list[dict[str, Any]]:
    return [f for f in engine.recognition.flags.find({}) if f["status"] != "void"]


def setup(engine: Engine, mllp: int) -> tuple[Sender, TestClient, str]:
    hl7 = Sender(mllp)
    hl7.send(oru("HOSPA", "A1", CBC, ts(3)))
    register(hl7, "HOSPB")
    return hl7, TestClient(create_app(engine)), patient_id(engine, "HOSPB")


# the tests below but the last share the policy community's engine and listener a module and backend
# (shared_worlds44d.policy_eng/policy_mllp): each sends as a resident, records, orders and control IDs of its own
# (shared_worlds44d.Own), answers CDS for its own draft's placer number and reads its own flags -- each had opened an
# engine. The last counts the store's recognition rate (``/reports/duplicates``): an engine of its own.


def own_setup(own: Own) -> tuple[Own, TestClient, str]:
    """``setup`` through this test's sender: HOSPA's blood count three days ago, her registration at HOSPB; the
    sender, a client of the app and her HOSPB record's id."""
    own.send(oru("HOSPA", "A1", CBC, ts(3)))
    register(own, "HOSPB")
    return own, TestClient(create_app(own.engine)), own.patient_id("HOSPB")


def own_flags(own: Own) -> list[dict[str, Any]]:
    """``flags`` (the standing flags) of this test's own records."""
    return [f for inst in ("HOSPA", "HOSPB") for f in own.flags(inst)]


def test_the_hl7_order_of_a_draft_answered_in_cds_takes_its_reason_by_placer_number(own: Own) -> None:
    hl7, http, patient = own_setup(own)
    engine = own.engine
    override(engine, http, cds_card(engine, http, patient, own.number("B1")), "R04")
    assert "Recognisable prior result" in hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = own_flags(own)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag


def test_an_hl7_order_of_another_placer_number_is_another_order(own: Own) -> None:
    """Same person, test, institution and day, another placer number: the emergency R04 given for
    the draft does not pay a second count nobody justified."""
    hl7, http, patient = own_setup(own)
    engine = own.engine
    override(engine, http, cds_card(engine, http, patient, own.number("B1")), "R04")
    hl7.send(order("HOSPB", "B2", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B2", CBC, ts(1, 10)))
    [flag] = own_flags(own)
    assert (flag["status"], flag["reason"]) == ("flagged", None), flag


def test_a_draft_without_a_placer_number_is_not_linked_by_test_and_day(own: Own) -> None:
    hl7, http, patient = own_setup(own)
    engine = own.engine
    override(engine, http, cds_card(engine, http, patient, None), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = own_flags(own)
    assert (flag["status"], flag["reason"]) == ("flagged", None), flag


def test_a_cds_answer_posted_after_the_hl7_order_and_before_its_result_is_order_time(own: Own) -> None:
    hl7, http, patient = own_setup(own)
    engine = own.engine
    card = cds_card(engine, http, patient, own.number("B1"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))  # the HIS sends the order before the EHR posts the feedback
    override(engine, http, card, "R04")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = own_flags(own)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag


def test_a_cds_answer_posted_after_the_result_is_late_and_shown(own: Own) -> None:
    hl7, http, patient = own_setup(own)
    engine = own.engine
    card = cds_card(engine, http, patient, own.number("B1"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    override(engine, http, card, "R04")
    [flag] = own_flags(own)
    assert (flag["status"], flag["reason"], flag["late_reasons"]) == ("flagged", None, ["R04"]), flag
    issue = engine.repository.read("DetectedIssue", flag["_id"])
    assert "R04" in issue["detail"], issue["detail"]


def test_a_draft_recognised_in_cds_whose_hl7_order_comes_all_the_same_counts_once(engine: Engine, mllp: int) -> None:
    hl7, http, patient = setup(engine, mllp)
    card = cds_card(engine, http, patient, "B1")
    feedback(engine, http, {"card": card["uuid"], "outcome": "accepted",
                            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]})
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rs", kind="auditor")
    rate = http.get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"}).json()["recognition_rate"]
    assert (rate["HOSPB"]["recognisable"], rate["HOSPB"]["recognised"]) == (1, 0), rate
