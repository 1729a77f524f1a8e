"""Two tests of one day, decided from the bounds each side's times give: never both flagged, and
the same answer whichever message reaches huren first.

DOMAIN.md ("The decision, precisely"): a prior is a result taken before the order was placed. An
order sent with its day alone (ORC-9 a date) was still placed before its own result was taken, and
a result sent with its day alone was taken after its own order: those bounds order a pair the
times alone cannot. Without them, HOSPA's day-alone order (its result taken 09:00) was flagged
against HOSPB's 15:00 result and HOSPB's 14:00 order against HOSPA's 09:00 one -- both "not
payable". A result taken at the very minute the other order was placed is no prior in either
arrival order (it was one when it came first, and never re-decided when it came late). Real MLLP,
the real store, SQLite and MongoDB (mongomock).
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hooks11_policy_edges import flags, result
from tests.test_rec15_same_day import hl7, repeats  # noqa: F401  (the fixture)
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, ts


def test_a_day_alone_order_is_bounded_by_its_own_result(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    sender.send(order("HOSPB", "B1", CBC, ts(1, 14)))
    sender.send(result("HOSPB", "B1", CBC, ts(1, 15)))
    sender.send(order("HOSPA", "A1", CBC, ts(1)[:8]))
    sender.send(result("HOSPA", "A1", CBC, ts(1, 9)))
    # HOSPA's order came before its 09:00 result, so before HOSPB's 15:00: HOSPB's is the repeat
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)


def test_a_day_alone_result_is_bounded_by_its_own_order(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    sender.send(order("HOSPB", "B1", CBC, ts(1, 14)))
    sender.send(result("HOSPB", "B1", CBC, ts(1)[:8]))  # taken after its 14:00 order
    sender.send(order("HOSPA", "A1", CBC, ts(1)[:8]))
    sender.send(result("HOSPA", "A1", CBC, ts(1, 9)))  # so HOSPA's order was placed by 09:00
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)


def _early(sender: Sender) -> None:
    """HOSPA: ordered 08:00, taken 09:00."""
    sender.send(order("HOSPA", "A1", CBC, ts(1, 8)))
    sender.send(result("HOSPA", "A1", CBC, ts(1, 9)))


def _at_nine(sender: Sender) -> None:
    """HOSPB: ordered 09:00 (the minute HOSPA's sample was taken), taken 15:00."""
    sender.send(order("HOSPB", "B1", CBC, ts(1, 9)))
    sender.send(result("HOSPB", "B1", CBC, ts(1, 15)))


def test_a_prior_at_the_orders_minute_in_arrival_order(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    _early(sender)
    _at_nine(sender)
    assert repeats(engine) == {}, flags(engine)


def test_a_prior_at_the_orders_minute_arriving_late(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    _at_nine(sender)
    _early(sender)
    assert repeats(engine) == {}, flags(engine)


def _entered_late(sender: Sender) -> None:
    """HOSPA: its order sent as placed at 10:00, its sample taken at 09:00 (ORC-9 entered late)."""
    sender.send(order("HOSPA", "A1", CBC, ts(1, 10)))
    sender.send(result("HOSPA", "A1", CBC, ts(1, 9)))


def _between(sender: Sender) -> None:
    """HOSPB: ordered 09:30, taken 09:45."""
    sender.send(order("HOSPB", "B1", CBC, ts(1, 9)[:10] + "3000"))
    sender.send(result("HOSPB", "B1", CBC, ts(1, 9)[:10] + "4500"))


def test_an_order_sent_as_placed_after_its_own_result_is_bounded_by_it(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    """Review of recfix15: HOSPA's order (10:00) after its own result (09:00) made each test the
    other's prior and both were flagged; HOSPA's order was placed by 09:00, so only HOSPB's repeats."""
    engine, sender = hl7
    _entered_late(sender)
    _between(sender)
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)


def test_an_order_sent_as_placed_after_its_own_result_arriving_late(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    _between(sender)
    _entered_late(sender)
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)
