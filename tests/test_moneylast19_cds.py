"""A CDS answer sent again reads as the order read it on arrival (nineteenth round, moneylast19,
the pre-merge review of moneymend19): HL7 over a real MLLP socket, CDS Hooks calls and feedback
over real HTTP, the real store, both stores.

draft-77 (placers B1, B2) answered R01, draft-78 (placer B1) answered R07; the HIS's order
arrives numbered B2 only and takes draft-77's R01. The EHR posts draft-77's R01 again (a retry):
the answer was read again with the draft's numbers (B1 and B2), found two drafts answering B1
differently, and cleared the order's R01 -- its repeat was flagged *not payable*.
"""

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests import test_money19_cds_orders
from tests.test_money19_cds_orders import flags, override, setup
from tests.test_moneymend19_cds import FIRST, SECOND, card
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_recognition_policy_e2e import result as oru

engine = test_money19_cds_orders.engine  # the fixture: the policy community on each store


@pytest.mark.parametrize("repost", [False, True])
def test_an_answer_sent_again_keeps_the_reason_the_order_took(engine: Engine, mllp: int, repost: bool) -> None:
    hl7, http, patient = setup(engine, mllp)
    first = card(engine, http, patient, FIRST, "draft-77", placers=("B1", "B2"))
    override(engine, http, first, "R01")
    override(engine, http, card(engine, http, patient, SECOND, "draft-78", placers=("B1",)), "R07")
    hl7.send(order("HOSPB", "B2", CBC, ts(1)))
    if repost:
        override(engine, http, first, "R01")  # the same answer again (an EHR retry)
    hl7.send(oru("HOSPB", "B2", CBC, ts(1, 10)))
    [flag] = flags(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag
