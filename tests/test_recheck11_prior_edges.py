"""A flag rests on its prior result: the flags that named a prior are decided again when it
leaves (withdrawn, no longer final, moved to another person) or comes back final -- whatever
day the repeat's result is dated, and after final -> withdrawn -> corrected (a preliminary after the
final no longer takes it back: ordfix36).

A flag is decided on its ORDER's day (DOMAIN.md "The decision, precisely": the order's date
minus the prior's within the window); the repeat's result may come days later, past the end of
the prior's window (an imaging exam above all). These flags were found by the later tests'
RESULT days within the prior's window and so were missed. Real MLLP, the real store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from tests.test_hooks11_policy_edges import LI, flag_of, flags, issue_status, repeat, result, row_of
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, msh, order, ts


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def late_repeat(hl7: Sender) -> None:
    """HOSPA's CBC (7-day window) on day -9; HOSPB orders on day -2 (within the window), its
    result dated day 0 (past the window's last day, day -2)."""
    hl7.send(order("HOSPA", "A1", CBC, ts(9)))
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(2)))
    hl7.send(result("HOSPB", "B1", CBC, ts(0, 10)))


def test_a_prior_withdrawn_voids_a_repeat_resulted_past_its_window(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    late_repeat(hl7)
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == "flagged", flags(engine)
    assert row["day"] > row["prior_day"]  # the case: the result past the prior's window, the order in it
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="W"))
    assert flag_of(engine) == "void", flags(engine)
    assert issue_status(engine) == "cancelled"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] != "duplicate", check


def test_a_prior_withdrawn_then_sent_again_final_flags_the_late_repeat_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    late_repeat(hl7)
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="W"))
    assert flag_of(engine) == "void"
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="C"))
    assert flag_of(engine) == "flagged", flags(engine)
    assert issue_status(engine) != "cancelled"


def test_a_corrected_id_number_of_the_prior_voids_the_late_repeat(engine: Engine, mllp: int) -> None:
    """HOSPA typed 王建国's ID number on 李秀英's record: HOSPB's late-resulted blood count of
    王建国 was flagged as a repeat of hers. HOSPA corrects the number (ADT^A08): the flag goes."""
    hl7 = Sender(mllp)
    late_repeat(hl7)
    assert flag_of(engine) == "flagged"
    hl7.send(msh("HOSPA", "HIS", "ADT^A08^ADT_A01", ts(0), "HOSPA-A08-1") + f"EVN|A08|{ts(0)}\n"
             + f"PID|1||{LI}^^^公安部^NNCHN~MRN-HOSPA^^^HOSPA^MR||李^秀英||19880903|F\n" + "PV1|1|O\n")
    assert {e["person"] for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPA"} == {LI}
    assert flag_of(engine) == "void", flags(engine)
    assert issue_status(engine) == "cancelled"


def test_final_then_preliminary_then_final_flags_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    repeat(hl7, prior_days=5, repeat_days=1)
    assert flag_of(engine) == "flagged"
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
    # a P after the F does not take the final result back (OBX-11 C, A/B, W/D do; table 0085,
    # ``merge.yaml`` Observation.status ``not_back``, thirty-sixth round, ordfix36): the prior stays
    # recognisable and the flag stands -- before, the P made the prior preliminary and voided it
    assert flag_of(engine) == "flagged", flags(engine)
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C", control="2"))
    assert flag_of(engine) == "flagged", flags(engine)
    assert issue_status(engine) != "cancelled"


def test_withdrawn_then_preliminary_then_final_flags_again(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    late_repeat(hl7)
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="W"))
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="P"))
    assert flag_of(engine) == "void"
    hl7.send(result("HOSPA", "A1", CBC, ts(9, 10), status="F", control="2"))
    assert flag_of(engine) == "flagged", flags(engine)


def test_only_a_result_final_before_is_marked(engine: Engine, mllp: int) -> None:
    """The everyday preliminary -> final of a result never final before carries no mark (its
    final version asks nothing of the flags); one that left final does, across its versions."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F", control="2"))
    entries = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPA"]
    assert entries and all(e["status"] == "final" and "was_final" not in e for e in entries), entries
    # (left final by a withdrawal: a P after the F no longer takes it back -- ordfix36)
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W", control="3"))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C", control="4"))
    entries = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == "HOSPA"]
    assert entries and all(e["status"] == "corrected" and e.get("was_final") for e in entries), entries
    # and the repeat placed now is flagged against it as against any final result
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert flag_of(engine) == "flagged"


def test_the_flag_and_the_withdrawal_in_one_ingest_batch(engine: Engine) -> None:
    """The repeat's flag is written when the batch ends: the withdrawal of its prior later in the
    same batch still finds it (the flags remembered in the batch, not only the stored ones)."""
    texts = [order("HOSPA", "A1", CBC, ts(9)), result("HOSPA", "A1", CBC, ts(9, 10)),
             order("HOSPB", "B1", CBC, ts(2)), result("HOSPB", "B1", CBC, ts(0, 10)),
             result("HOSPA", "A1", CBC, ts(9, 10), status="W")]
    outcomes = engine.ingestor.process([(t.replace("\n", "\r").encode("utf-8"), "test", "127.0.0.1:1")
                                        for t in texts])
    assert all(b"MSA|AA|" in o.ack for o in outcomes)
    assert engine.ingestor.stats.redone_batches == 0
    assert flag_of(engine) == "void", flags(engine)
    assert issue_status(engine) == "cancelled"

