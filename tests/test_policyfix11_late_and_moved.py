"""Two wrong answers a reviewer found in the eleventh round's policy work, end to end over a real
MLLP socket, read back from the stored flags, check rows, tallies and DetectedIssues:

- a re-test reason first sent in an order's *first* result message, the order already recorded by
  its own order message without one, made a flagged repeat payable (the order's copy in the result
  message is written before its result is decided), while the same reason in a corrected result
  was a late one. DOMAIN.md: the reason recorded at order time stands;
- an ID-number correction on the *prior's* side (ADT^A08 at the institution that held the prior
  result) moved the result to another person, but the later order of the first person still
  listed it as recognisable: it stayed in its institution's rate, and its reminder stayed 'final'
  in that person's compartment naming another person's result.
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hooks11_policy_edges import LI, engine, flag_of, repeat, result, row_of
from tests.test_policy11_decided_facts import R04, a08, check_of, result_with_reason
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, WANG, order, ts

__all__ = ["engine"]  # the fixture, used by name


# -- 1. a reason first sent in the first result message is late -----------------------------------
def test_a_reason_first_sent_in_the_first_result_message_is_late(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))  # recorded, no reason
    ack = hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["late_reasons"]) == ("flagged", None, ["R04"]), row
    check = check_of(engine)
    assert (check["reasons"], check["late_reasons"], check["outcome"]) == ([], ["R04"], "duplicate"), check
    assert "after the result" in ack, ack  # the sender hears the reason did not count
    issue = engine.repository.read("DetectedIssue", row["_id"])
    evidence = {e["url"] for x in issue["extension"] for e in x["extension"]}
    assert "lateReason" in evidence and "reason" not in evidence, evidence
    # the same reason in a corrected result: the same answer, whichever version carries it
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04, status="C"))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["late_reasons"]) == ("flagged", ["R04"]), row


def test_a_first_result_message_repeating_the_order_time_reason_keeps_it(engine: Engine, mllp: int) -> None:
    """The order message stated R04; its result message repeats it: order time, justified, nothing late."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R04))
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["late_reasons"]) == ("justified", "R04", []), row


def test_an_order_first_seen_in_its_result_message_still_takes_its_reason(engine: Engine, mllp: int) -> None:
    """No order message at all: the result message is the order as first seen (policy11's decision)."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04))
    assert flag_of(engine) == "justified"
    assert check_of(engine)["late_reasons"] == []


def test_an_order_update_with_a_reason_before_any_result_still_counts(engine: Engine, mllp: int) -> None:
    """An order message (ORC-1 XO) adding R04 before the result: order time (policy11's decision)."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1, 9), reason=R04, control="XO"))
    hl7.send(result_with_reason("HOSPB", "B1", CBC, ts(1, 10), R04))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["late_reasons"]) == ("justified", "R04", []), row


# -- 2. an ID correction on the prior's side re-checks the orders that listed the prior ----------
def test_a_corrected_id_number_on_the_priors_side_takes_it_out_of_the_later_order(engine: Engine, mllp: int) -> None:
    """HOSPA filed 李秀英's blood count under 王建国's number; HOSPB's order for 王建国 was reminded
    of it and repeated it. HOSPA corrects the record (ADT^A08): the prior was never his."""
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged"
    before = check_of(engine)
    assert before["recognisable"] and before["issue"], before
    assert engine.repository.read("DetectedIssue", before["issue"])["status"] == "final"
    hl7.send(a08("HOSPA", f"PID|1||{LI}^^^公安部^NNCHN~MRN-HOSPA^^^HOSPA^MR||李^秀英||19880903|F\n"))
    assert flag_of(engine) == "void"
    assert check_of(engine, "HOSPA")["person"] == LI
    check = check_of(engine)
    assert (check["person"], check["recognisable"]) == (WANG, []), check
    tallies = [t for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"]
    assert tallies == [], tallies  # nothing of his was recognisable when the order was placed
    # the reminder in his compartment no longer stands pointing at her result
    assert engine.repository.read("DetectedIssue", before["issue"])["status"] == "cancelled"


def test_a_corrected_id_number_on_the_priors_side_keeps_his_own_other_prior(engine: Engine, mllp: int) -> None:
    """He had a blood count of his own at HOSPC too: the order keeps that one, and its reminder."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPC", "C1", CBC, ts(6)))
    hl7.send(result("HOSPC", "C1", CBC, ts(6, 10)))
    repeat(hl7, prior_days=5, repeat_days=1)
    before = check_of(engine)
    assert len(before["recognisable"]) == 2, before
    hl7.send(a08("HOSPA", f"PID|1||{LI}^^^公安部^NNCHN~MRN-HOSPA^^^HOSPA^MR||李^秀英||19880903|F\n"))
    check = check_of(engine)
    kept = [r for r in before["recognisable"] if r in check["recognisable"]]
    assert (check["person"], len(check["recognisable"]), kept) == (WANG, 1, check["recognisable"]), check
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["prior_inst"]) == ("flagged", "HOSPC"), row
    assert engine.repository.read("DetectedIssue", before["issue"])["status"] == "final"
    tallies = [t for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"]
    assert [t["count"] for t in tallies] == [1], tallies
