"""Which prior and which order a flag is decided on, end to end over a real MLLP socket, read
back from the stored flags and check rows (each failed before, except the time-zone guard):

- R98 "outside record not accessible" is a claim about every prior the doctor could have used:
  an older recognisable prior huren held before the order was placed contradicts it, even when a
  newer one reached huren only afterwards (only the newest was asked: the repeat was paid);
- ... and a prior huren held only as a *preliminary* result when the order was placed (final
  afterwards) was nothing the doctor could recognise: it contradicted a true R98 claim ("huren held
  it since"), while the order's own check row recorded nothing recognisable;
- two orders of the same test at one institution on one day are one test (one flag): the flag was
  decided by whichever result id sorted first, so a later order's R04 made an earlier, reasonless
  repeat payable, or the other way round. The least favourable decision stands, and each order's
  check row takes its own outcome;
- a day is the institution's local day whatever offset the sender wrote: a prior at 23:30 and an
  order at 00:30 Asia/Shanghai, both sent in UTC, are seven days apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.engine import Engine
from tests.test_hooks11_policy_edges import engine, flags, result, row_of
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, TZ, order, ts

__all__ = ["engine"]  # the fixture, used by name
R04 = "R04^急诊急救^urn:huren:recognition-reason"
R98 = "R98^外院结果无法调阅^urn:huren:recognition-reason"


def test_r98_is_contradicted_by_an_older_prior_held_before_the_order(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(6)))
    hl7.send(result("HOSPA", "A1", CBC, ts(6, 10)))  # held before HOSPB's order
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    hl7.send(order("HOSPC", "C1", CBC, ts(3)))
    hl7.send(result("HOSPC", "C1", CBC, ts(3, 10)))  # newer, but reached huren after the order
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["prior_inst"]) == ("flagged", "R98", "HOSPA"), row
    assert (row["contradicted"] or "").startswith("reason contradicted by records"), row


def test_r98_holds_when_no_prior_was_held_before_the_order(engine: Engine, mllp: int) -> None:
    """The guard the other way: every recognisable prior reached huren after the order: payable."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    for inst, days in (("HOSPA", 6), ("HOSPC", 3)):
        hl7.send(order(inst, f"{inst[-1]}1", CBC, ts(days)))
        hl7.send(result(inst, f"{inst[-1]}1", CBC, ts(days, 10)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["prior_inst"]) == ("justified", "HOSPC"), row


def test_r98_holds_against_a_prior_held_only_preliminary_when_the_order_was_placed(engine: Engine, mllp: int
                                                                                   ) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F"))  # final after the order was placed
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"], row["contradicted"]) == ("justified", "R98", None), row
    # a correction of the now-final prior keeps when it became final
    final_at = _entry(engine, "HOSPA")["final_at"]
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    assert _entry(engine, "HOSPA")["final_at"] == final_at
    assert _entry(engine, "HOSPA")["held"] < final_at


def _entry(engine: Engine, inst: str) -> dict:
    [entry] = [e for e in engine.recognition.index.coll.find({}) if e["inst"] == inst]
    return entry


@pytest.mark.parametrize("reason_on", ["first", "second"])
def test_two_orders_of_one_test_on_one_day_keep_the_reasonless_repeat_flagged(engine: Engine, mllp: int,
                                                                                reason_on: str) -> None:
    """HOSPB draws a blood count at 08:00 and again at 15:00, one of the two orders with R04: one
    test, repeating HOSPA's of five days before. One of its orders repeated it with no reason."""
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    for placer, hour in (("B1", 8), ("B2", 15)):
        reason = R04 if (placer == "B1") == (reason_on == "first") else ""
        hl7.send(order("HOSPB", placer, CBC, ts(1, hour), reason=reason))
        hl7.send(result("HOSPB", placer, CBC, ts(1, hour + 1)))
    row = row_of(engine, "HOSPB")
    assert row is not None and (row["status"], row["reason"]) == ("flagged", None), row
    checks = {c["_id"]: c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"}
    assert row["order"] in checks and checks[row["order"]]["reasons"] == [], (row, checks)
    outcomes = sorted(c["outcome"] for c in checks.values())
    assert outcomes == ["duplicate", "justified"], checks  # each order its own, none left pending
    tallies = {t["outcome"]: t["count"] for t in engine.recognition.check_days.find({}) if t["inst"] == "HOSPB"}
    assert tallies.get("pending", 0) == 0, tallies


def _utc(days_ago: int, hour: int, minute: int) -> str:
    local = datetime.now(TZ).replace(hour=hour, minute=minute, second=0, microsecond=0) - timedelta(days=days_ago)
    return local.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def test_days_are_local_days_whatever_offset_the_sender_wrote(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, _utc(8, 23, 30)))
    hl7.send(result("HOSPA", "A1", CBC, _utc(8, 23, 40)))
    hl7.send(order("HOSPB", "B1", CBC, _utc(1, 0, 30)))
    hl7.send(result("HOSPB", "B1", CBC, _utc(1, 0, 40)))
    row = row_of(engine, "HOSPB")
    today = datetime.now(TZ).date()
    assert row is not None and row["status"] == "flagged", flags(engine)
    assert (row["order_day"], row["prior_day"]) == (str(today - timedelta(days=1)), str(today - timedelta(days=8)))
