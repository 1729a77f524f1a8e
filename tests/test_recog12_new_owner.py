"""An ID-number correction gives a result to its right person: for that person it counts as held
only from the correction on, end to end over a real MLLP socket, read back from the stored check
rows, tallies and flags.

HOSPA filed 王建国's record under 李秀英's number, so his blood count there was filed under her.
HOSPB placed an order for his blood count: nothing of *his* was recognisable, its reminder showed
nothing. HOSPA corrects its record (ADT^A08): the blood count is his from now. DOMAIN.md asks what
was recognisable for *this* person when the order was placed -- the result was then another
person's, the ordering doctor could not see it -- so HOSPB's order placed before the correction
neither gains it (the recognition rate) nor is flagged as its repeat (with no reason, or with R98
"outside record not accessible", which the records do not contradict). An order placed after the
correction sees it, and its repeat is flagged. An order of the corrected record itself, filed under
the same wrong number, saw the result all along: its flag stays, moved with it.
"""

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests.test_hooks11_policy_edges import LI, flag_of, result, row_of
from tests.test_hooks11_policy_edges import (
    declared_engine as engine,  # (HIS A08 corrections: its HIS declared, decl42)
)
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


def _moved(engine: Engine) -> dict:
    [entry] = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPA" and e["_id"].startswith("D")]
    return entry


def test_a_resulted_order_placed_before_the_correction_is_not_flagged_for_the_moved_result(
        engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert (check_of(engine)["recognisable"], flag_of(engine), _tallies(engine)) == ([], None, {})
    hl7.send(a08("HOSPA", _HIS))
    check = check_of(engine)
    assert (check["person"], check["recognisable"]) == (WANG, []), check
    assert (flag_of(engine), _tallies(engine)) == (None, {})
    entry = _moved(engine)
    assert (entry["person"], bool(entry.get("owned"))) == (WANG, True), entry
    assert entry["held"] < check["placed"] < entry["owned"], entry  # held before, his after


@pytest.mark.parametrize("reason", ["", "R98"])
def test_an_order_placed_before_the_correction_and_resulted_after_it_is_not_flagged(
        engine: Engine, mllp: int, reason: str) -> None:
    """Its result decided after the correction: the moved result was not his when the order was
    placed, so it is no prior of this order (R98 is not 'contradicted by records' by it), and the
    order stays out of the rate."""
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=reason))
    assert _tallies(engine) == {}
    hl7.send(a08("HOSPA", _HIS))
    assert (check_of(engine)["recognisable"], _tallies(engine)) == ([], {})
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert flag_of(engine) is None, row_of(engine, "HOSPB")
    assert (check_of(engine)["recognisable"], _tallies(engine)) == ([], {})


def test_an_order_placed_after_the_correction_is_flagged_for_the_moved_result(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    hl7.send(a08("HOSPA", _HIS))
    hl7.send(order("HOSPB", "B2", CBC, ts(0)))
    check = check_of(engine)
    assert (check["person"], len(check["recognisable"])) == (WANG, 1), check
    assert _tallies(engine) == {"pending": 1}
    hl7.send(result("HOSPB", "B2", CBC, ts(0, 10)))
    assert (flag_of(engine), _tallies(engine)) == ("flagged", {"duplicate": 1})
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["prior_inst"], row["person"]) == ("HOSPA", WANG), row
    # corrected back (the correction was the mistake): his later order loses it again
    hl7.send(a08("HOSPA", _HERS).replace("HOSPA-A08-1", "HOSPA-A08-2"))
    assert (check_of(engine)["recognisable"], flag_of(engine), _tallies(engine)) == ([], "void", {})


def test_the_corrected_records_own_repeat_stays_flagged(engine: Engine, mllp: int) -> None:
    """HOSPA's own later order on the same record, under the same wrong number, was shown the
    result when it was placed: the correction moves the two together and the flag stays."""
    hl7 = Sender(mllp)
    _his_prior_filed_under_her(hl7)
    for text in (order("HOSPA", "A2", CBC, ts(1)), result("HOSPA", "A2", CBC, ts(1, 10))):
        hl7.send(text.replace(pid("HOSPA"), _HERS))
    assert flag_of(engine, "HOSPA") == "flagged"
    hl7.send(a08("HOSPA", _HIS))
    [row] = [f for f in engine.recognition.flags.find({}) if f["status"] != "void"]
    assert (row["status"], row["person"], row["inst"]) == ("flagged", WANG, "HOSPA"), row
    [check] = [c for c in engine.recognition.checks.find({}) if c["_id"].endswith(row["order"].split("/", 1)[1])] \
        if row.get("order") else [None]
    assert check is None or len(check["recognisable"]) == 1, check
