"""An ID-number correction that is itself reversed gives the result back, over a real MLLP socket.

HOSPA holds 王建国's blood count, filed under his own number. HOSPB places his repeat (the doctor
is reminded of it) and it is flagged. HOSPA then "corrects" the record to 李秀英's number -- by
mistake -- and sends the correction back a while later (ADT^A08 twice). DOMAIN.md: a prior R is
recognisable for an order O when it is the same person, and (last round) a result moved to a
person counts for that person only from when it was filed under them -- what the ordering doctor
could see. His HOSPB order was placed while the result was filed under him: once the mistake is
undone the result is his, and it was his when the order was placed, so the order's reminder,
its place in the recognition rate and its "not payable" flag come back. An order he placed while
the mistake stood was shown nothing of his and stays unflagged.
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hooks11_policy_edges import (
    declared_engine as engine,  # (HIS A08 corrections: its HIS declared, decl42)
)
from tests.test_hooks11_policy_edges import flag_of, result
from tests.test_policy11_decided_facts import a08, check_of
from tests.test_recog12_new_owner import _HERS, _HIS
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, pid, ts

__all__ = ["engine"]  # the fixture, used by name



def _prior(hl7: Sender) -> None:
    for text in (order("HOSPA", "A1", CBC, ts(5)), result("HOSPA", "A1", CBC, ts(5, 10))):
        hl7.send(text.replace(pid("HOSPA"), _HIS))


def _mistake_and_back(hl7: Sender) -> None:
    hl7.send(a08("HOSPA", _HERS))
    hl7.send(a08("HOSPA", _HIS).replace("HOSPA-A08-1", "HOSPA-A08-2"))


def _tallies(engine: Engine) -> dict[str, int]:
    return {t["outcome"]: t["count"] for t in engine.recognition.check_days.find({})
            if t["inst"] == "HOSPB" and t["count"]}


def _reminder(engine: Engine) -> str:
    issue = check_of(engine)["issue"]
    return engine.repository.read("DetectedIssue", issue)["status"]


def test_a_flag_voided_by_a_mistaken_correction_comes_back_when_it_is_reversed(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert (flag_of(engine), len(check_of(engine)["recognisable"]), _tallies(engine)) == (
        "flagged", 1, {"duplicate": 1})
    hl7.send(a08("HOSPA", _HERS))
    assert (flag_of(engine), check_of(engine)["recognisable"], _tallies(engine)) == ("void", [], {})
    hl7.send(a08("HOSPA", _HIS).replace("HOSPA-A08-1", "HOSPA-A08-2"))
    check = check_of(engine)
    assert (flag_of(engine), len(check["recognisable"]), _tallies(engine)) == ("flagged", 1, {"duplicate": 1})
    assert _reminder(engine) == "final"


def test_an_order_placed_before_the_mistake_and_resulted_while_it_stood_is_flagged_once_it_is_undone(
        engine: Engine, mllp: int) -> None:
    """Its result was decided while the blood count was filed under her (nothing of his to
    repeat); the reversal decides it again."""
    hl7 = Sender(mllp)
    _prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(a08("HOSPA", _HERS))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert (flag_of(engine), check_of(engine)["recognisable"], _tallies(engine)) == (None, [], {})
    hl7.send(a08("HOSPA", _HIS).replace("HOSPA-A08-1", "HOSPA-A08-2"))
    assert (flag_of(engine), len(check_of(engine)["recognisable"]), _tallies(engine)) == (
        "flagged", 1, {"duplicate": 1})


def test_an_order_placed_while_the_mistake_stood_stays_unflagged(engine: Engine, mllp: int) -> None:
    """Placed while the blood count was filed under her: his doctor could not see it."""
    hl7 = Sender(mllp)
    _prior(hl7)
    hl7.send(a08("HOSPA", _HERS))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    hl7.send(a08("HOSPA", _HIS).replace("HOSPA-A08-1", "HOSPA-A08-2"))
    assert (flag_of(engine), check_of(engine)["recognisable"], _tallies(engine)) == (None, [], {})
