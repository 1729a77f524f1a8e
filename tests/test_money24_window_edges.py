"""money24: the validity window at its last day, in the hospital's days (+08:00), over a real MLLP
socket -- checked and found right (no fix needed; kept so that it stays right).

HOSPA's blood count (window 7 days) was taken at 2026-03-01 23:30 in Funing, sent in UTC
(``20260301153000+0000``). HOSPB's repeat, also sent in UTC:

- ordered 2026-03-08 00:10 local (``20260307161000+0000``): 7 days, the last valid day -- not payable;
- ordered 2026-03-09 00:10 local (``20260308161000+0000``; 7 days by the UTC dates): 8 days, outside
  the window -- nothing flagged;
- the same last-day repeat with R07 (patient asks): self-pay; with R01: justified; with R08 (7 of 7
  days is older than half the window): justified.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from tests.test_money19_cds_orders import flags
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, result

REASONS = "urn:huren:recognition-reason"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


@pytest.mark.parametrize(("ordered", "reason", "expected"), [
    ("20260307161000+0000", "", ("flagged", None)),
    ("20260308161000+0000", "", None),
    ("20260307161000+0000", f"R07^患者或家属要求^{REASONS}", ("self_pay", "R07")),
    ("20260307161000+0000", f"R01^病情变化^{REASONS}", ("justified", "R01")),
    ("20260307161000+0000", f"R08^结果已久^{REASONS}", ("justified", "R08")),
], ids=["last-day", "day-after", "last-day-R07", "last-day-R01", "last-day-R08"])
def test_the_last_valid_day_is_the_hospitals(engine: Engine, mllp: int, ordered: str, reason: str,
                                             expected: tuple[str, str | None] | None) -> None:
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, "20260301153000+0000"))
    hl7.send(result("HOSPA", "A1", CBC, "20260301153000+0000"))
    hl7.send(order("HOSPB", "B1", CBC, ordered, reason=reason))
    hl7.send(result("HOSPB", "B1", CBC, ordered[:8] + "170000+0000"))
    got = [(f["status"], f.get("reason")) for f in flags(engine) if f["inst"] == "HOSPB"]
    assert got == ([] if expected is None else [expected]), got
