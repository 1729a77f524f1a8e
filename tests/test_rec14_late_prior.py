"""A prior that huren receives after its repeat was decided decides the repeat again.

DOMAIN.md ("The decision, precisely"): an order O *for which a recognisable R existed* is a
suspected duplicate test, not payable, without a reason that makes it payable; R98 ("outside
record not accessible") is checked against whether huren held R *before O was placed*. So a
prior that reached huren after the order already flags the repeat (R98 then stands), and the
flag must not depend on whether the prior's message arrived before or after the repeat's result:
HOSPA's feed delayed by a day let HOSPB's repeat go unflagged. Real MLLP, the real store,
SQLite and MongoDB (mongomock).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import running_mllp
from tests.test_hooks11_policy_edges import flag_of, flags, issue_status, result
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, order, ts

R98 = "R98^外院结果无法调阅^urn:huren:recognition-reason"


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def hl7(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Sender]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng, \
            running_mllp(eng) as port:
        yield eng, Sender(port)


def repeat_first(hl7: Sender, reason: str = "") -> None:
    """HOSPB's blood count ordered and resulted two days ago, before anything of HOSPA's."""
    hl7.send(order("HOSPB", "B1", CBC, ts(2), reason=reason))
    hl7.send(result("HOSPB", "B1", CBC, ts(2, 10)))


def test_a_prior_received_after_the_repeat_flags_it(hl7: tuple[Engine, Sender]) -> None:
    engine, sender = hl7
    repeat_first(sender)
    assert flag_of(engine) is None
    sender.send(order("HOSPA", "A1", CBC, ts(5)))
    sender.send(result("HOSPA", "A1", CBC, ts(5, 10)))  # dated 3 days before HOSPB's order: in its window
    assert flag_of(engine) == "flagged", flags(engine)
    assert issue_status(engine) == "preliminary"
    [check] = [c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB"]
    assert check["outcome"] == "duplicate", check
    assert check["recognisable"] == [], check  # at order time huren held nothing: the rate is unchanged


def test_r98_stands_against_a_prior_received_after_the_order(hl7: tuple[Engine, Sender]) -> None:
    engine, sender = hl7
    repeat_first(sender, reason=R98)
    sender.send(order("HOSPA", "A1", CBC, ts(5)))
    sender.send(result("HOSPA", "A1", CBC, ts(5, 10)))
    assert flag_of(engine) == "justified", flags(engine)  # huren did not hold it when HOSPB ordered


def test_a_prior_outside_the_window_received_later_flags_nothing(hl7: tuple[Engine, Sender]) -> None:
    engine, sender = hl7
    repeat_first(sender)
    sender.send(order("HOSPA", "A1", CBC, ts(10)))
    sender.send(result("HOSPA", "A1", CBC, ts(10, 10)))  # 8 days before the order: past CBC's 7
    assert flag_of(engine) is None, flags(engine)


def test_a_prior_preliminary_when_the_repeat_was_decided_flags_it_when_final(hl7: tuple[Engine, Sender]) -> None:
    engine, sender = hl7
    sender.send(order("HOSPA", "A1", CBC, ts(5)))
    sender.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
    repeat_first(sender)
    assert flag_of(engine) is None, flags(engine)  # a preliminary prior is no recognisable one
    sender.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F", control="2"))
    assert flag_of(engine) == "flagged", flags(engine)
