"""money29: the placer's ORC-16 ``""`` withdraws a CDS answer's reason too (moneymend20's left xfail).

An order that states no reason of its own takes the one the doctor gave in the CDS answer (kept on the
check row). An XO stating ORC-16 ``""`` (HL7's explicit delete) had nothing stored to delete, so it left no
trace and the CDS answer's reason stood. The delete is now marked on the stored order with its message
(``facts.REASON_WITHDRAWN_EXT``); a thinner update (ORC-16 empty) still withdraws nothing. Real HL7 over
MLLP, the CDS answer over HTTP, both stores (the fixture's parameters)."""

from __future__ import annotations

from engine.engine import Engine
from tests import test_money19_cds_orders
from tests.test_money19_cds_orders import cds_card, override, setup
from tests.test_money20_reason_change import R01, the_flag, update
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_recognition_policy_e2e import result as oru

engine = test_money19_cds_orders.engine


def test_a_thinner_update_after_the_delete_brings_no_reason_back(engine: Engine, mllp: int) -> None:
    """CDS R04, the order without a reason, XO ``""``, then an XO with ORC-16 empty: still no reason."""
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, cds_card(engine, http, patient, "B1"), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 8), '""'))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), "", n=2))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = the_flag(engine)
    assert (flag["status"], flag["reason"]) == ("flagged", None), flag


def test_a_reason_stated_after_the_delete_is_the_reason(engine: Engine, mllp: int) -> None:
    """CDS R04, the order, XO ``""``, then an XO stating R01: R01 (the placer's own) decides."""
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, cds_card(engine, http, patient, "B1"), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 8), '""'))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), R01, n=2))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = the_flag(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), flag


def test_guard_without_the_delete_the_cds_answer_stands(engine: Engine, mllp: int) -> None:
    """CDS R04, the order, an XO with ORC-16 empty (thinner, no delete): R04 stands."""
    hl7, http, patient = setup(engine, mllp)
    override(engine, http, cds_card(engine, http, patient, "B1"), "R04")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 9), ""))
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = the_flag(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag


def test_a_cds_answer_given_after_the_delete_counts(engine: Engine, mllp: int) -> None:
    """The order, XO ``""``, then the doctor answers CDS with R04 (before the result): the newer answer
    is an order-time reason -- the mark withdrew what stood then, not what the doctor says afterwards."""
    hl7, http, patient = setup(engine, mllp)
    card = cds_card(engine, http, patient, "B1")
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(update("HOSPB", "B1", CBC, ts(1, 8), '""'))
    override(engine, http, card, "R04")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flag = the_flag(engine)
    assert (flag["status"], flag["reason"]) == ("justified", "R04"), flag
