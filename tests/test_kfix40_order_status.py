"""kfix40: rv40k's findings fixed -- the message's groups together say how far an order got, ORC-5 CM on every
group (MED 1); the HIS's RL or NW replay after its own CA leaves the order revoked, said (MED 2); the lab's X on a
reminded repeat is no cancellation for the 互认率 (LOW 3).

HOSPA's blood count five days ago is a recognisable prior for HOSPB's order B1 yesterday; each test reads back the
recognition row (the flag: payable or not; the order-time check: the rate's row). Real HL7 v2 over MLLP into the
real store, both backends. The tests share one community a module and backend (``shared_worlds44.community_eng``,
suite44c), each sending as a person of its own -- her ID number, records, order numbers and control IDs
(``OwnSender``) -- and reading back only her order, check and flags; the rate's test counts the whole store's
HOSPB and keeps a store of its own (``test_money19_cds_orders.engine``)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.engine import Engine
from engine.recognition.reports import ReportFilter, recognition_rate
from tests import test_money19_cds_orders
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, theirs
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_rv40k_probes import _checks, _hospb, _lis, _order, _request, _split

__all__ = ["community_eng", "community_mllp"]

engine = test_money19_cds_orders.engine


# --- MED 1: the groups of one message naming one order, ORC-5 on each ------------------------------------------


@pytest.mark.parametrize("orc5", ["", "CM"], ids=["orc5-empty", "orc5-CM"])
def test_the_withdrawn_group_first_then_the_final_group_completes_the_order(
        community_eng: Engine, community_mllp: int, orc5: str, request: pytest.FixtureRequest) -> None:
    """HGB W in the first group, WBC F in the second, one ORU, one order B1: the order is as far as the groups
    together say -- completed by WBC's final, whichever group comes first. With ORC-5 CM on both the first
    group's W ("CM was not stored ... the order stays as it stands") is taken back: the second group's CM is
    stored and the W would be false of the order. WBC final is a repeat without reason: not payable."""
    run = own(request, "KF1")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_split(orc5, "W", "F"))
    assert "MSA|AA" in ack and "ORC^1^5" not in ack and "ORC^2^5" not in ack, ack
    sr, _, flags = theirs(community_eng, run)
    assert sr["status"] == "completed", ack
    assert [s for s, _ in flags] == ["flagged"], (flags, ack)


def test_a_withdrawn_only_message_with_orc5_cm_still_says_its_cm_was_not_stored(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Control (st40): both groups withdrawn, ORC-5 CM on both -- no group stands, the order stays active and the
    first group's W says why; nothing is a repeat yet (no flag), the check stays pending."""
    run = own(request, "KF2")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_split("CM", "W", "W"))
    assert "MSA|AA" in ack and "ERR||ORC^1^5" in ack and "ORC^2^5" not in ack, ack
    sr, checks, flags = theirs(community_eng, run)
    assert sr["status"] == "active", ack
    assert not [s for s, _ in flags if s == "flagged"], flags
    assert checks == ["pending"]


def test_a_final_group_then_a_preliminary_group_of_the_same_order_leave_it_active(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """WBC F under ORC-5 CM, then HGB P under ORC-5 IP, one order: the order is as far as its least advanced
    group (as with ORC-5 empty) -- in process, not completed; the final WBC is still a repeat (not payable)."""
    run = own(request, "KF3")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    mixed = _split("CM", "F", "P")
    second = mixed.index("ORC|RE", mixed.index("OBX|"))
    mixed = mixed[:second] + mixed[second:].replace("ORC|RE|B1^HIS|FB1^LIS||CM", "ORC|RE|B1^HIS|FB1^LIS||IP", 1)
    mixed = mixed.replace("|F\nOBX|1|NM|HGB", "|P\nOBX|1|NM|HGB")
    ack = hl7.send(mixed)
    assert "MSA|AA" in ack, ack
    sr, _, flags = theirs(community_eng, run)
    assert sr["status"] == "active", ack
    assert [s for s, _ in flags] == ["flagged"], (flags, ack)


# --- MED 2: revoked stands against the HIS's order messages --------------------------------------------------------


@pytest.mark.parametrize("again", ["RL", "NW", "HD"])
def test_the_his_cancelled_order_stays_revoked_said_and_its_check_recognised(
        community_eng: Engine, community_mllp: int, again: str, request: pytest.FixtureRequest) -> None:
    """HIS NW, HIS CA (revoked: recognised in the rate), then the HIS's RL, a queue's NW replay or an HD: the
    order stays revoked and the ACK's W at ORC-1 names the revoked status that stands (table 0119: RL releases a
    held order, a cancelled one is "unable to release"); the check stays recognised. The lab's final after all
    is still a repeat: completed, the check re-tested, the flag not payable."""
    run = own(request, "KF4")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    assert "MSA|AA" in hl7.send(_request("HIS", "CA", 0))
    assert theirs(community_eng, run)[1] == ["recognised"]
    ack = hl7.send(order("HOSPB", "B1", CBC, ts(1)).replace("HOSPB-ORM-B1-NW", "HOSPB-ORM-B1-NW2")
                   if again == "NW" else _request("HIS", again, 1))
    assert "MSA|AA" in ack and "ERR||ORC^1^1|" in ack and '"revoked", stated earlier, stands' in ack, ack
    sr, checks, flags = theirs(community_eng, run)
    assert sr["status"] == "revoked", ack
    assert checks == ["recognised"], checks
    assert not flags
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 14), "f", obr25="F", obx11="F"))
    assert "MSA|AA" in ack, ack
    sr, checks, flags = theirs(community_eng, run)
    assert sr["status"] == "completed", ack
    assert checks != ["recognised"], checks
    assert [s for s, _ in flags] == ["flagged"], (flags, ack)


def test_the_his_release_of_its_hold_still_takes_the_order_on(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Control: HD then RL from the HIS -- on-hold, then active, the RL now stated at ORC-1 with no W."""
    run = own(request, "KF5")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    assert "MSA|AA" in hl7.send(_request("HIS", "HD", 0))
    assert theirs(community_eng, run)[0]["status"] == "on-hold"
    ack = hl7.send(_request("HIS", "RL", 1))
    assert "MSA|AA" in ack and "ERR" not in ack, ack
    sr, checks, _ = theirs(community_eng, run)
    assert sr["status"] == "active"
    assert checks == ["pending"]


# --- LOW 3: the lab's X is no cancellation for the rate ------------------------------------------------------------


def _rate(engine: Engine, today: date | None = None) -> dict:
    return recognition_rate(engine.recognition, ReportFilter(), today=today)["HOSPB"]


@pytest.mark.parametrize("obr25", ["F", "X"])
def test_the_labs_x_leaves_the_check_pending_until_the_window_passes(engine: Engine, mllp: int, obr25: str) -> None:
    """HOSPB's LIS posts WBC X (OBR-25 F, or X): the order is revoked by its result's message, not cancelled by
    its placer -- the check stays pending (no flag: nothing measured), and with no re-draw it counts recognised
    as "never resulted within the item's window" once the window has passed (DOMAIN's numerator)."""
    hl7 = Sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_lis("HOSPB", "B1", ts(1, 10), "x", obr25=obr25, obx11="X", value=""))
    assert "MSA|AA" in ack, ack
    assert _order(engine, "B1")["status"] == "revoked", ack
    assert _checks(engine) == ["pending"], _checks(engine)
    assert not _hospb(engine)
    now = _rate(engine)
    assert (now["recognised"], now["pending"]) == (0, 1), now
    later = _rate(engine, date.today() + timedelta(days=30))
    assert (later["recognised"], later["pending"]) == (1, 0), later


def test_the_his_cancel_after_the_labs_x_is_recognised(community_eng: Engine, community_mllp: int,
                                                      request: pytest.FixtureRequest) -> None:
    """The lab's X, then the doctor gives the repeat up (the HIS's CA): that is the placer's cancel -- recognised
    at once (a revoked order stays revoked; the CA's own statement decides the check)."""
    run = own(request, "KF7")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(_lis("HOSPB", "B1", ts(1, 10), "x", obr25="F", obx11="X", value=""))
    assert theirs(community_eng, run)[1] == ["pending"]
    ack = hl7.send(_request("HIS", "CA", 1))
    assert "MSA|AA" in ack, ack
    sr, checks, flags = theirs(community_eng, run)
    assert sr["status"] == "revoked"
    assert checks == ["recognised"], (checks, ack)
    assert not flags
