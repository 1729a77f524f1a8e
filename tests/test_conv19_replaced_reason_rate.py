"""The re-test under a replacement order is justified by the reason given on the order it replaces
(nineteenth round, conv19); over MLLP, the flags read back from the recognition store.

HOSPA reported a blood count six days ago; HOSPB orders one stating R01 (condition changed) in
ORC-16, replaces the order (ORC-1 RP naming it, RO the new order, no ORC-16 on the RO) and gets
the re-test's result under the RO's number. It was flagged "suspected duplicate test, not payable":
the replacement carried no reason. It now takes the replaced order's (``merge.yaml`` ``inherits``).
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hl7fix18_replaced_rate import replace
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, engine, order, result, ts

__all__ = ["engine"]  # the policy tests' community (HOSPA, HOSPB, HOSPC)


def test_the_replacements_result_is_justified_by_the_reason_given_on_the_order(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(6)))
    assert "Recognisable prior result" in hl7.send(order("HOSPB", "B1", CBC, ts(0), reason="R01^病情变化^HUREN"))
    ack = hl7.send(replace("HOSPB", "B1", "B2", CBC, ts(0, 9)))
    assert "MSA|AA" in ack, ack
    ack = hl7.send(result("HOSPB", "B2", CBC, ts(0, 10)))
    assert "not payable" not in ack, ack  # was: "Suspected duplicate test, not payable"
    flags = engine.recognition.flags.find({})
    assert not [f for f in flags if f["status"] == "flagged"], flags
    [justified] = [f for f in flags if f["status"] == "justified"]
    assert justified["reason"] == "R01"
