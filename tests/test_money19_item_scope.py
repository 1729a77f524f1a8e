"""An item that is not on the community's list is not "not payable" at the hospital that repeats
its own result (nineteenth round, money19): HL7 over a real MLLP socket, the real store.

DOMAIN.md: non-payment covers repeats inside the same medical community, for items on the
community list; a result recognisable only through a wider HR scope counts for the rate and is
"not payable" only when the payer extends it. A site lists the blood count under the national HR
scope alone (``scope: [CN]``, no ``community``). A repeat of HOSPA's count at HOSPB was reported
(recognisable through CN only), but HOSPA's repeat of its *own* count was flagged "not payable"
inside the community: ``scope_via`` took one institution as the community whatever the item's
scope said. Now the same institution is the community's case only for an item on its list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, order, result, ts

ITEMS = Path(__file__).resolve().parents[1] / "mappings" / "recognition" / "items.yaml"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    site = tmp_path / "site"
    (site / "recognition").mkdir(parents=True)
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    shipped = ITEMS.read_text("utf-8")
    line = "- {code: CBC,    name: 血常规,        category: 检验, window_days: 7,  scope: [community],"
    assert line in shipped
    (site / "recognition" / "items.yaml").write_text(shipped.replace(line, line.replace("[community]", "[CN]")), "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.mark.parametrize("repeater", ["HOSPA", "HOSPB"])
def test_a_repeat_of_an_item_recognised_only_through_an_hr_scope_is_reported(engine: Engine, mllp: int,
                                                                            repeater: str) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    hl7.send(order(repeater, "R1", CBC, ts(1)))
    hl7.send(result(repeater, "R1", CBC, ts(1, 10)))
    [flag] = [f for f in engine.recognition.flags.find({}) if f["status"] != "void"]
    assert (flag["status"], flag["basis"]) == ("reported", "CN"), flag
