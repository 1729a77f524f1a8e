"""A flag is decided on the facts recorded when it was decided, end to end over a real MLLP socket.

Three wrong answers the eleventh round's edge tests left (``test_hooks11_policy_edges``), each sent
as HL7 v2 between members of one medical community and read back from the stored flags, check
rows, tallies and DetectedIssues:

- a re-test reason first recorded after the result (an order update, a corrected result's ORC)
  made a flagged repeat payable: DOMAIN.md says the reason recorded at order time stands. The
  late reason is kept on the flag for the auditor, the decision is not changed by it;
- an auditor's "overturned" on a self-pay flag went back to self-pay when the flag was decided
  again; a review stands while the facts it was made on (prior, reason) stand, and when they
  change the flag is decided again with the review kept in its history;
- after an ID-number correction (ADT^A08) the order's check row kept the person it was checked
  for, so the recognition rate counted an order against another person's result.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine import fhirjson
from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_hooks11_policy_edges import LI, flag_of, flags, issue_status, repeat, result, row_of
from tests.test_hooks11_policy_edges import (
    declared_engine as engine,  # (HIS A08 corrections: its HIS declared, decl42)
)
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts

__all__ = ["engine"]  # the fixture, used by name

R04 = "R04^急诊急救^urn:huren:recognition-reason"
R07 = "R07^家属要求^urn:huren:recognition-reason"


def check_of(engine: Engine, inst: str = "HOSPB") -> dict:
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == inst]
    return check


def result_with_reason(inst: str, placer: str, item: str, when: str, reason: str, status: str = "F",
                       control: str = "") -> str:
    """A result message whose ORC carries a re-test reason (ORC-16)."""
    return result(inst, placer, item, when, status, control).replace(
        f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n", f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM|||||||||||{reason}\n")


def a08(inst: str, pid_segment: str) -> str:
    return msh(inst, "HIS", "ADT^A08^ADT_A01", ts(0), f"{inst}-A08-1") + f"EVN|A08|{ts(0)}\n" + pid_segment + "PV1|1|O\n"


# -- 1. the reason recorded at order time stands --------------------------------------------------
def test_a_reason_added_to_the_order_after_the_flag_does_not_make_it_payable(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged"
    ack = hl7.send(order("HOSPB", "B1", CBC, ts(1, 12), reason=R04, control="XO"))
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == "flagged", row
    assert (row["reason"], row["late_reasons"]) == (None, ["R04"]), row
    assert "R04" in ack and "after the result" in ack, ack  # the sender hears the reason did not count
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert issue["status"] == "preliminary"
    late = [e for e in issue["extension"][0]["extension"] if e["url"] == "lateReason"]
    assert [e["valueCodeableConcept"]["coding"][0]["code"] for e in late] == ["R04"], issue
    check = check_of(engine)
    assert (check["reasons"], check["late_reasons"], check["outcome"]) == ([], ["R04"], "duplicate"), check
    # the auditors' report shows it, over HTTP
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rs", kind="auditor")
    rep = TestClient(create_app(engine)).get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"})
    body = fhirjson.loads(rep.content)  # the amounts as the decimals written (20.00)
    [shown] = [r for r in body["rows"] if r["institution"] == "HOSPB"]
    price = stored_fen(row["price"])  # stored as decimal text (moneyleft27)
    assert (shown["status"], shown["late_reasons"], stored_fen(shown["price"])) == ("flagged", "R04", price), shown
    assert stored_fen(body["totals"]["money_at_stake"]) == price > 0


def test_a_reason_added_after_an_auditor_upheld_the_flag_keeps_it_upheld(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    row = row_of(engine, "HOSPB")
    assert row is not None
    engine.recognition.review(row["_id"], "upheld", "no change in condition", "auditor")
    hl7.send(order("HOSPB", "B1", CBC, ts(1, 12), reason=R04, control="XO"))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["late_reasons"]) == ("upheld", ["R04"]), row
    assert issue_status(engine) == "final"


def test_a_reason_a_corrected_result_message_adds_is_late_too(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04, status="C"))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["late_reasons"]) == ("flagged", ["R04"]), row


def test_a_reason_added_before_the_result_is_an_order_time_reason(engine: Engine, mllp: int) -> None:
    """An order updated with its reason before any result: still order time, the re-test is justified."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1, 9), reason=R04, control="XO"))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["late_reasons"]) == ("justified", "R04", []), row


def test_an_order_first_seen_in_its_result_message_keeps_that_reason(engine: Engine, mllp: int) -> None:
    """No order message: the result's ORC is the order as huren first saw it, its reason the order-time one."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["late_reasons"]) == ("justified", "R04", []), row
    # ...and sent again (a copy of the same result), it stays so
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04, status="C"))
    assert flag_of(engine) == "justified"


# -- 2. a review stands while its facts stand ----------------------------------------------------
def test_an_overturned_self_pay_flag_stays_overturned_when_decided_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1, reason=R07)
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == "self_pay"
    engine.recognition.review(row["_id"], "overturned", "the fund pays: clinically needed", "auditor")
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10), status="C"))  # decided again, nothing changed
    assert flag_of(engine) == "overturned", flags(engine)
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))  # the prior withdrawn...
    assert flag_of(engine) == "void"
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C", control="2"))  # ...and sent again
    assert flag_of(engine) == "overturned", flags(engine)
    assert issue_status(engine) == "cancelled"


@pytest.mark.parametrize(("reason", "first", "review", "again"), [
    (R07, "self_pay", "overturned", "self_pay"),
    ("", "flagged", "upheld", "flagged"),
    ("", "flagged", "overturned", "flagged"),
])
def test_a_review_is_decided_again_when_its_prior_changes(engine: Engine, mllp: int, reason: str, first: str,
                                                         review: str, again: str) -> None:
    """The auditor judged the repeat of HOSPA's result; HOSPA withdraws it, and HOSPC's result of
    the same week (reaching huren later) is the prior now: the flag is decided again, the earlier
    review stays in its history (the flag row and the DetectedIssue's mitigations)."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1, reason=reason)
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == first
    engine.recognition.review(row["_id"], review, "judged on HOSPA's result", "auditor")
    hl7.send(order("HOSPC", "C1", CBC, ts(3)))
    hl7.send(result("HOSPC", "C1", CBC, ts(3, 10)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["prior_inst"]) == (again, "HOSPC"), row
    assert [r["decision"] for r in row["reviews"]] == [review]
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert [m["action"]["coding"][0]["code"] for m in issue["mitigation"]
            if m["action"]["coding"][0]["system"] == "urn:huren:recognition-review"] == [review]
    # decided again on the same new facts (a copy of the repeat): the earlier review does not come back
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10), status="C"))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["prior_inst"]) == (again, "HOSPC"), row


# -- 3. the order's check row follows an ID-number correction ------------------------------------
def test_a_corrected_id_number_moves_the_order_check_to_the_right_person(engine: Engine, mllp: int) -> None:
    """HOSPB typed 王建国's number on 李秀英's record: her order was checked against his blood count.
    Corrected, her order had nothing recognisable when it was placed: it leaves the rate."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert check_of(engine)["recognisable"]
    hl7.send(a08("HOSPB", f"PID|1||{LI}^^^公安部^NNCHN~MRN-HOSPB^^^HOSPB^MR||李^秀英||19880903|F\n"))
    check = check_of(engine)
    assert (check["person"], check["recognisable"], check["outcome"]) == (LI, [], "retested"), check
    tallies = [t for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"]
    assert tallies == [], tallies  # no recognisable prior at order time: not in the rate
    assert engine.repository.read("DetectedIssue", check["issue"])["status"] == "cancelled"


def test_a_corrected_id_number_puts_the_right_persons_order_in_the_rate(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    from tests.test_recognition_policy_e2e import WANG

    wrong = pid("HOSPB").replace(WANG, LI).replace("19850412|M", "19880903|F")
    for text in (order("HOSPB", "B1", CBC, ts(1)), result("HOSPB", "B1", CBC, ts(1, 10))):
        hl7.send(text.replace(pid("HOSPB"), wrong))
    assert check_of(engine)["recognisable"] == []
    hl7.send(a08("HOSPB", pid("HOSPB")))
    check = check_of(engine)
    assert (check["person"], len(check["recognisable"]), check["outcome"]) == (
        "32092319850412001X", 1, "duplicate"), check
    tallies = {t["outcome"]: t["count"] for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"}
    assert tallies == {"duplicate": 1}, tallies


def test_a_corrected_id_number_does_not_count_a_prior_held_after_the_order(engine: Engine, mllp: int) -> None:
    """Recognisable *at order time*: a prior result huren received after the order was placed
    is no part of the rate's denominator, even once the person is corrected."""
    hl7 = Sender(mllp)
    from tests.test_recognition_policy_e2e import WANG

    wrong = pid("HOSPB").replace(WANG, LI).replace("19850412|M", "19880903|F")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)).replace(pid("HOSPB"), wrong))
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))  # dated before, received after B1 was placed
    hl7.send(a08("HOSPB", pid("HOSPB")))
    check = check_of(engine)
    assert (check["person"], check["recognisable"]) == ("32092319850412001X", []), check
