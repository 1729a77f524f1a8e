"""moneyfix27: the once-per-store pass that prices again the flags an earlier release priced from the
catalogue by a float's rounding (``engine.recognition.repricing``). Real HL7 v2 over a real MLLP
socket into the real store (SQLite), real HTTP through FastAPI's TestClient out; the rows an
earlier release wrote are put as it stored them (a float price, no marker of the pass).

The pass changes what the rounding changed and nothing else, and says so on the flag: a price
stored under a catalogue since changed (neither rule's figure) is the catalogue of its day and
stays; run once per store, a store opened again is not priced again.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition.repricing import MONEY_RULES
from engine.recognition.upgrade import LAYOUT
from tests.conftest import running_mllp
from tests.test_moneyleft27_money import ALT, LOCAL, PRICES, _h, _money_text
from tests.test_probepay26_windows import CBC, LFT, flags, make_site, open_engine, order, result
from tests.test_recognition_e2e import Sender


def _by_item(eng) -> dict[str, dict]:
    return {f["item"]: f for f in flags(eng, "flagged")}


def test_moneyfix27_rounding_repriced_once_and_said_a_changed_catalogue_left(tmp_path: Path) -> None:
    """An ALT repeated alone (1.69 now) stored by an earlier release at 1.68, and a blood count
    stored at 0.12 (the catalogue of its day; 0.10 now, and no rounding gives 0.12): opened by this
    release the ALT is 1.69 -- row, tally (the report's money at stake 1.81), DetectedIssue with
    ``repricedFrom`` 1.68 -- and says so in its row's ``repriced``; the count keeps 0.12 and says
    nothing. Opened again (the marker stored), a price put back to 1.68 is not priced again."""
    site = make_site(tmp_path, recognition__prices__yaml=PRICES)
    for eng in open_engine(tmp_path, site):
        with running_mllp(eng) as port:
            s = Sender(port)
            s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=LOCAL))
            s.send(result("HOSPA", "A2", CBC, "20260310090000+0800"))
            s.send(order("HOSPB", "B1", "1742-6^ALT^LN", "20260312080000+0800"))
            s.send(result("HOSPB", "B1", "1742-6^ALT^LN", "20260312100000+0800", obx=ALT))
            s.send(order("HOSPB", "B2", CBC, "20260312080000+0800"))
            s.send(result("HOSPB", "B2", CBC, "20260312100000+0800"))
        got = _by_item(eng)
        assert {k: D(str(f["price"])) for k, f in got.items()} == {"LFT": D("1.69"), "CBC": D("0.10")}, got
        rec = eng.recognition
        with rec.store.transaction():  # as an earlier release stored them: floats, and no marker
            rec._put_flag(got["LFT"], {**got["LFT"], "price": 1.68})
            rec._put_flag(got["CBC"], {**got["CBC"], "price": 0.12})
            rec.store.collection(LAYOUT).delete(MONEY_RULES)
    for eng in open_engine(tmp_path, site):
        got = _by_item(eng)
        assert (D(str(got["LFT"]["price"])), D(str(got["CBC"]["price"]))) == (D("1.69"), D("0.12")), got
        assert [(c["from"], c["to"], c["why"]) for c in got["LFT"]["repriced"]] == [("1.68", "1.69", "half-up-at-the-fen")]
        assert "repriced" not in got["CBC"], got["CBC"]
        http = TestClient(create_app(eng))
        raw = http.get("/reports/duplicates?from=2026-03-01&to=2026-03-31", headers=_h(eng)).text
        assert '"money_at_stake":1.81' in raw, raw[:600]
        issue = http.get(f"/fhir/DetectedIssue/{got['LFT']['_id']}", headers=_h(eng)).text
        assert (_money_text(issue), _money_text(issue, "repricedFrom")) == ("1.69", "1.68"), issue
        assert "CNY 1.69 at stake" in issue, issue
        rec = eng.recognition
        with rec.store.transaction():
            rec._put_flag(got["LFT"], {**got["LFT"], "price": 1.68})
    for eng in open_engine(tmp_path, site):
        assert D(str(_by_item(eng)["LFT"]["price"])) == D("1.68")  # once per store: not priced again
