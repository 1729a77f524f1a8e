"""Two tests of one day: the later one is the repeat, whichever reaches huren first.

DOMAIN.md ("The decision, precisely"): an order O is a repeat of a prior result R when R was
recognisable for it -- "O's date minus R's date" within the window. The index kept each result's
day alone, so of two same-day results each lay in the other's window: when the morning's result
reached huren *after* the afternoon's, the morning hospital's test was flagged "not payable" as a
repeat of the afternoon's, a test done after it. Each result's effective time (and each order's
time), to the precision sent, is now kept: a result taken after the order was placed is not its
prior; a time point sent as a date alone stays a same-day prior (age 0), as before. Real MLLP,
the real store, SQLite and MongoDB (mongomock).
"""

from __future__ import annotations

from engine.engine import Engine
from tests.test_hooks11_policy_edges import flags, result
from tests.test_rec14_late_prior import hl7  # noqa: F401  (the fixture: real MLLP, SQLite and mongomock)
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, order, ts


def morning(sender: Sender, *, date_only: bool = False) -> str:
    """HOSPA's blood count of yesterday: ordered 08:00, taken 09:00 (or both sent as the day alone)."""
    when, taken = (ts(1)[:8], ts(1)[:8]) if date_only else (ts(1, 8), ts(1, 9))
    sender.send(order("HOSPA", "A1", CBC, when))
    return sender.send(result("HOSPA", "A1", CBC, taken))


def afternoon(sender: Sender) -> str:
    """HOSPB's blood count of the same day: ordered 14:00, taken 15:00."""
    sender.send(order("HOSPB", "B1", CBC, ts(1, 14)))
    return sender.send(result("HOSPB", "B1", CBC, ts(1, 15)))


def repeats(engine: Engine) -> dict[str, str]:
    """The repeating institution of each flag that stands (not void) -> its prior's institution."""
    return {f["inst"]: f["prior_inst"] for f in flags(engine) if f["status"] != "void"}


def test_the_afternoons_test_is_the_repeat_when_the_morning_arrives_late(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    afternoon(sender)
    assert repeats(engine) == {}
    ack = sender.send(order("HOSPA", "A1", CBC, ts(1, 8)))
    assert "Recognisable prior result" not in ack  # HOSPB's 15:00 result did not exist at 08:00
    ack = sender.send(result("HOSPA", "A1", CBC, ts(1, 9)))
    assert "duplicate" not in ack.lower(), ack
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)
    [row] = flags(engine)
    assert row["status"] == "flagged"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPA"]
    assert check["recognisable"] == [] and check["outcome"] == "retested", check


def test_morning_then_afternoon_is_unchanged(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    engine, sender = hl7
    morning(sender)
    ack = afternoon(sender)
    assert "not payable" in ack.lower() or "duplicate" in ack.lower(), ack
    assert repeats(engine) == {"HOSPB": "HOSPA"}, flags(engine)


def test_a_date_alone_stays_a_same_day_prior(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    """The morning's order and result sent with the day alone, after the afternoon's: which came
    first is not known, so the afternoon's result is a prior of age 0 for it, as before."""
    engine, sender = hl7
    afternoon(sender)
    morning(sender, date_only=True)
    assert repeats(engine) == {"HOSPA": "HOSPB"}, flags(engine)


def test_entries_stored_before_the_times_were_kept_decide_as_before(hl7: tuple[Engine, Sender]) -> None:  # noqa: F811
    """An index entry and a check row written before this round have no time: each is read as
    its day alone, so a same-day pair is decided as it was (no flag started or stopped by the
    upgrade); a later version of the result writes its time."""
    engine, sender = hl7
    afternoon(sender)
    rec = engine.recognition
    for coll in (rec.index.coll, rec.checks):
        for doc in coll.find({}):
            if "at" in doc:
                coll.replace({k: v for k, v in doc.items() if k != "at"})
    assert not [d for d in rec.index.coll.find({}) if d.get("at")]
    morning(sender)
    # the afternoon's entry has no time: the morning's order cannot tell it came later, so the
    # morning's test is the repeat, as the code before this round decided it
    assert repeats(engine) == {"HOSPA": "HOSPB"}, flags(engine)
