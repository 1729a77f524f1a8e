"""An ID-number correction gives a result to its right person: that person's own orders are
checked again to gain it, end to end over a real MLLP socket, read back from the stored check rows,
tallies and flags.

HOSPA filed 王建国's record under 李秀英's number, so his blood count there was filed under her.
HOSPB then placed and resulted his order for a blood count: nothing of *his* was recognisable, so
it was no repeat. HOSPA corrects its record (ADT^A08): the blood count is his, held before HOSPB's
order was placed -- HOSPB's order had a recognisable prior (the recognition rate counts it) and
its result repeated it (a suspected duplicate, not payable). Before, only the corrected record's
own orders and the orders that had listed the moved result were checked again, so his HOSPB order
stayed out of the rate and unflagged. Corrected back, he loses it again.
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hooks11_policy_edges import LI, engine, flag_of, result
from tests.test_policy11_decided_facts import a08, check_of
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, WANG, order, pid, ts

__all__ = ["engine"]  # the fixture, used by name

_HIS = f"PID|1||{WANG}^^^公安部^NNCHN~MRN-HOSPA^^^HOSPA^MR||王^建国||19850412|M\n"
# the record as first filed: her number (and the birth date and sex it encodes, or it is refused)
_HERS = _HIS.replace(WANG, LI).replace("19850412|M", "19880903|F")


def _his_prior_filed_under_her(hl7: Sender) -> None:
    for text in (order("HOSPA", "A1", CBC, ts(5)), result("HOSPA", "A1", CBC, ts(5, 10))):
        hl7.send(text.replace(pid("HOSPA"), _HERS))


def _tallies(engine: Engine, inst: str = "HOSPB") -> dict[str, int]:
    return {t["outcome"]: t["count"] for t in engine.recognition.check_days.find({}) if t["inst"] == inst}


def test_the_right_person_gains_the_moved_result_as_prior_of_his_resulted_order(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert (check_of(engine)["recognisable"], flag_of(engine)) == ([], None)
    prior = check_of(engine, "HOSPA")["_id"]
    hl7.send(a08("HOSPA", _HIS))
    [entry] = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPA"]
    assert entry["person"] == WANG
    check = check_of(engine)
    assert (check["person"], len(check["recognisable"]), check["outcome"]) == (WANG, 1, "duplicate"), check
    assert _tallies(engine) == {"duplicate": 1}
    assert flag_of(engine) == "flagged"
    [row] = [f for f in engine.recognition.flags.find({}) if f["inst"] == "HOSPB"]
    assert (row["prior_inst"], row["person"]) == ("HOSPA", WANG), row
    assert engine.repository.read("DetectedIssue", row["_id"])["status"] == "preliminary"
    # corrected back (the correction was the mistake): he loses it again, both ways
    hl7.send(a08("HOSPA", _HERS).replace("HOSPA-A08-1", "HOSPA-A08-2"))
    check = check_of(engine)
    assert (check["recognisable"], flag_of(engine)) == ([], "void"), check
    assert _tallies(engine) == {}
    assert check_of(engine, "HOSPA")["_id"] == prior


def test_the_right_persons_open_order_counts_in_the_rate(engine: Engine, mllp: int) -> None:
    """His order not resulted yet: it had a recognisable prior at order time (pending in the rate);
    its result, when it comes, is a repeat."""
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    assert _tallies(engine) == {}
    hl7.send(a08("HOSPA", _HIS))
    check = check_of(engine)
    assert (len(check["recognisable"]), check["outcome"]) == (1, "pending"), check
    assert _tallies(engine) == {"pending": 1}
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert (flag_of(engine), _tallies(engine)) == ("flagged", {"duplicate": 1})


def test_a_result_held_after_his_order_was_placed_is_no_gain_for_the_rate(engine: Engine, mllp: int) -> None:
    """The rate counts what was recognisable when the order was placed: a prior huren received only
    after HOSPB's order does not enter its check row (the flag rests on what huren holds when the
    repeat is decided, as for any repeat)."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    _his_prior_filed_under_her(hl7)  # dated earlier, received later
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    hl7.send(a08("HOSPA", _HIS))
    assert check_of(engine)["recognisable"] == []
    assert flag_of(engine) == "flagged"
