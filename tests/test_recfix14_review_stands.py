"""An auditor's review stands while the prior it reviewed still counts, whatever arrives late.

HOSPA's blood count six days ago; HOSPB's, two days ago with no reason, flagged against it; an
auditor overturns the flag. HOSPC's blood count dated four days ago then arrives (a lab's feed
late): the repeat is decided again (rec14), and the newer prior had made itself the flag's, the
review no longer matched and the flag went back to "flagged" -- not payable, the auditor's
decision dropped though HOSPA's prior still stood. The review is re-opened only when the prior
it reviewed stops counting (here: HOSPA's withdrawn). Real MLLP, SQLite and mongomock.
"""

from __future__ import annotations

from tests.test_hooks11_policy_edges import flag_of, flags, issue_status, result, row_of
from tests.test_rec14_late_prior import hl7  # noqa: F401  (the fixture: both backends)
from tests.test_recognition_policy_e2e import CBC, order, ts


def _overturned(engine, sender) -> dict:  # noqa: ANN001
    sender.send(order("HOSPA", "A1", CBC, ts(6)))
    sender.send(result("HOSPA", "A1", CBC, ts(6, 10)))
    sender.send(order("HOSPB", "B1", CBC, ts(2)))
    sender.send(result("HOSPB", "B1", CBC, ts(2, 10)))
    row = row_of(engine, "HOSPB")
    assert row is not None and row["status"] == "flagged", flags(engine)
    engine.recognition.review(row["_id"], "overturned", "clinically needed", "auditor")
    assert flag_of(engine) == "overturned"
    return row


def test_a_late_prior_does_not_undo_an_overturned_review(hl7) -> None:  # noqa: ANN001, F811
    engine, sender = hl7
    row = _overturned(engine, sender)
    sender.send(order("HOSPC", "C1", CBC, ts(4)))
    sender.send(result("HOSPC", "C1", CBC, ts(4, 10)))  # newer than HOSPA's, inside the window
    assert flag_of(engine) == "overturned", flags(engine)
    assert issue_status(engine) == "cancelled"
    assert row_of(engine, "HOSPB")["prior"] == row["prior"]  # the prior the auditor judged


def test_the_review_reopens_when_its_prior_is_withdrawn(hl7) -> None:  # noqa: ANN001, F811
    engine, sender = hl7
    row = _overturned(engine, sender)
    sender.send(order("HOSPC", "C1", CBC, ts(4)))
    sender.send(result("HOSPC", "C1", CBC, ts(4, 10)))
    sender.send(result("HOSPA", "A1", CBC, ts(6, 10), status="W"))  # the reviewed prior withdrawn
    now = row_of(engine, "HOSPB")
    assert now["prior"] != row["prior"], flags(engine)  # HOSPC's now: a decision nobody reviewed
    assert flag_of(engine) == "flagged", flags(engine)
