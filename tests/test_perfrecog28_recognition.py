"""perfrecog28: the once-per-store passes' ports declared once, and a repriced flag decided again.

Real HL7 v2 over a real MLLP socket into the real store (SQLite), the DetectedIssue read back over
real HTTP (FastAPI's TestClient); the rows an earlier release wrote are put as it stored them (a
float price, no marker of moneyfix27's pass), as ``tests/test_moneyfix27_repricing.py`` does.
"""

from __future__ import annotations

import typing
from decimal import Decimal as D
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition import billed_lines, ports, repricing, upgrade
from engine.recognition.repricing import MONEY_RULES
from engine.recognition.upgrade import LAYOUT
from tests.conftest import running_mllp
from tests.test_moneyleft27_money import ALT, LOCAL, PRICES, _h, _money_text
from tests.test_probepay26_windows import LFT, flags, make_site, open_engine, order, result
from tests.test_recognition_e2e import Sender


def test_perfrecog28_passes_declare_store_and_index_once() -> None:
    """``billed_lines`` and ``repricing`` take the store and index they are handed from one module
    (``ports``), and ``upgrade``'s store is that one plus its backend: no second copy to drift."""
    for module in (billed_lines, repricing):
        hints = {name: typing.get_type_hints(getattr(module._Recognition, name).fget, vars(module))["return"]
                 for name in ("store", "index")}
        assert hints == {"store": ports.Store, "index": ports.Index}, module.__name__
        assert not {"_Store", "_Index", "_each", "_each_row"} & set(vars(module)), module.__name__
    assert ports.Store in upgrade._Store.__mro__


def _issue(http: TestClient, eng, flag_id: str) -> str:
    return http.get(f"/fhir/DetectedIssue/{flag_id}", headers=_h(eng)).text


def test_perfrecog28_repriced_flag_decided_again_keeps_repriced_from_until_its_price_moves(tmp_path: Path) -> None:
    """An ALT repeated alone, stored at 1.68 by an earlier release, priced 1.69 by moneyfix27's pass
    (``repricedFrom`` 1.68). The lab corrects the ALT (a new version: the flag is decided again, same
    price 1.69): the DetectedIssue still says it came from 1.68 (it lost it before). The catalogue then
    changes (LFT 12.00: the ALT's share is 2.00) and the ALT is corrected again: the decision's price
    supersedes the rule's, the issue says 2.00 and no ``repricedFrom``; the row keeps its history."""
    site = make_site(tmp_path, recognition__prices__yaml=PRICES)
    alt = "20260312100000+0800"
    for eng in open_engine(tmp_path, site):
        with running_mllp(eng) as port:
            s = Sender(port)
            s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=LOCAL))
            s.send(order("HOSPB", "B1", "1742-6^ALT^LN", "20260312080000+0800"))
            s.send(result("HOSPB", "B1", "1742-6^ALT^LN", alt, obx=ALT))
        (flag,) = flags(eng, "flagged")
        assert D(flag["price"]) == D("1.69"), flag
        rec = eng.recognition
        with rec.store.transaction():  # as an earlier release stored it: a float, and no marker
            rec._put_flag(flag, {**flag, "price": 1.68})
            rec.store.collection(LAYOUT).delete(MONEY_RULES)
    for eng in open_engine(tmp_path, site):  # moneyfix27's pass: 1.68 -> 1.69, said
        http = TestClient(create_app(eng))
        issue = _issue(http, eng, flag["_id"])
        assert (_money_text(issue), _money_text(issue, "repricedFrom")) == ("1.69", "1.68"), issue
        with running_mllp(eng) as port:  # the lab corrects the ALT: the flag is decided again
            Sender(port).send(result("HOSPB", "B1", "1742-6^ALT^LN", alt, status="C",
                                     obx=ALT.replace("||30|", "||31|")))
        (again,) = flags(eng, "flagged")
        assert [(c["from"], c["to"]) for c in again["repriced"]] == [("1.68", "1.69")], again
        issue = _issue(http, eng, flag["_id"])
        assert (_money_text(issue), _money_text(issue, "repricedFrom")) == ("1.69", "1.68"), issue
        assert "CNY 1.69 at stake" in issue, issue
    (tmp_path / "site" / "recognition" / "prices.yaml").write_text(PRICES.replace("LFT: 10.11", "LFT: 12.00"), "utf-8")
    for eng in open_engine(tmp_path, site):  # a catalogue since changed, and the ALT corrected again
        with running_mllp(eng) as port:
            Sender(port).send(result("HOSPB", "B1", "1742-6^ALT^LN", alt, status="C",
                                     obx=ALT.replace("||30|", "||32|")))
        (last,) = flags(eng, "flagged")
        assert D(last["price"]) == D("2.00"), last
        assert [(c["from"], c["to"]) for c in last["repriced"]] == [("1.68", "1.69")], last
        issue = _issue(TestClient(create_app(eng)), eng, flag["_id"])
        assert _money_text(issue) == "2.00" and '"repricedFrom"' not in issue, issue
