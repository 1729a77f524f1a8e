"""Review of perfrecog28 (rvperfrecog28): findings as plain failing tests on 51cbc291.

Real HL7 v2 over a real MLLP socket into the real store (SQLite), charge lines PUT and the
DetectedIssue read over real HTTP (FastAPI's TestClient); the flag an earlier release stored is put
as it stored it (a float price, no marker of moneyfix27's pass), as the author's test does.

The author's rule (``repricing.repriced_from``'s docstring): the ``repricedFrom`` evidence says "this
price came from that one by a rule"; "a decision pricing the flag otherwise (a billed line, a
catalogue since changed, other analytes) supersedes that price, and the issue then says the
decision's price alone". 51cbc291 decides it by the price figure alone (the last change's ``to``
equals the decision's price), so the evidence comes back after it was superseded, and stays when a
billed line (not the rule) set the price.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.repricing import MONEY_RULES
from engine.recognition.upgrade import LAYOUT
from tests.conftest import running_mllp
from tests.test_moneyleft27_money import ALT, LOCAL, PRICES, _h, _money_text
from tests.test_probepay26_windows import LFT, flags, make_site, open_engine, order, result
from tests.test_recognition_e2e import Sender

_ALT_AT = "20260312100000+0800"


def _repriced_store(tmp_path: Path) -> tuple[Path, dict]:
    """An ALT repeated alone after HOSPA's liver panel, stored at 1.68 as an earlier release did."""
    site = make_site(tmp_path, recognition__prices__yaml=PRICES)
    for eng in open_engine(tmp_path, site):
        with running_mllp(eng) as port:
            s = Sender(port)
            s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=LOCAL))
            s.send(order("HOSPB", "B1", "1742-6^ALT^LN", "20260312080000+0800"))
            s.send(result("HOSPB", "B1", "1742-6^ALT^LN", _ALT_AT, obx=ALT))
        (flag,) = flags(eng, "flagged")
        rec = eng.recognition
        with rec.store.transaction():
            rec._put_flag(flag, {**flag, "price": 1.68})
            rec.store.collection(LAYOUT).delete(MONEY_RULES)
    return site, flag


def _opened(tmp_path: Path, site: Path) -> Iterator[tuple[Engine, TestClient]]:
    """The store opened by this release (moneyfix27's pass: 1.68 -> 1.69, ``repricedFrom`` 1.68)."""
    for eng in open_engine(tmp_path, site):
        yield eng, TestClient(create_app(eng))


def _put_line(eng: Engine, http: TestClient, cid: str, flag: dict, money: str, status: str = "billable") -> None:
    """The HIS bills the ALT it did (a ChargeItem naming the repeated result), over FHIR."""
    body = ('{{"resourceType":"ChargeItem","id":"{}","status":"{}","code":{{"coding":[{{"system":'
            '"urn:huren:code:price","code":"250101001"}}]}},"subject":{{"reference":"{}"}},'
            '"occurrenceDateTime":"2026-03-12T10:00:00+08:00","service":[{{"reference":"{}"}}],'
            '"priceOverride":{{"value":{},"currency":"CNY"}}}}').format(cid, status, flag["patient"], flag["result"], money)
    his = {"Authorization": "Bearer " + eng.auth.issue_system_token("his-billing", "system/*.cruds"),
           "Content-Type": "application/fhir+json"}
    res = http.put(f"/fhir/ChargeItem/{cid}", content=body.encode(), headers=his)
    assert res.status_code in (200, 201), res.text


def _issue(eng: Engine, http: TestClient, flag_id: str) -> str:
    return http.get(f"/fhir/DetectedIssue/{flag_id}", headers=_h(eng)).text


def test_rvperfrecog28_superseded_repriced_from_does_not_come_back_when_the_line_is_withdrawn(tmp_path: Path) -> None:
    """Repriced 1.68 -> 1.69 by the pass; the HIS then bills the ALT at 5.00: the line supersedes the
    rule's price (issue 5.00, no ``repricedFrom`` -- right). The line is entered in error: the flag is
    decided again at the catalogue's 1.69. The issue's previous version said 5.00, yet 51cbc291 writes
    "1.69, repricedFrom 1.68": a price the flag last carried two decisions ago, presented as what a
    rule changed it from. The 1.69 now is the catalogue's decision, not the rule's re-pricing."""
    site, flag = _repriced_store(tmp_path)
    for eng, http in _opened(tmp_path, site):
        assert _money_text(_issue(eng, http, flag["_id"]), "repricedFrom") == "1.68"
        _put_line(eng, http, "alt-line", flag, "5.00")
        (billed,) = flags(eng, "flagged")
        assert (D(billed["price"]), billed["price_source"]) == (D("5.00"), "charge"), billed
        issue = _issue(eng, http, flag["_id"])
        assert _money_text(issue) == "5.00" and '"repricedFrom"' not in issue, issue
        _put_line(eng, http, "alt-line", flag, "5.00", status="entered-in-error")
        (back,) = flags(eng, "flagged")
        assert (D(back["price"]), back["price_source"]) == (D("1.69"), "catalogue"), back
        issue = _issue(eng, http, flag["_id"])
        assert _money_text(issue) == "1.69", issue
        assert '"repricedFrom"' not in issue, issue  # 51cbc291: repricedFrom 1.68 is back


def test_rvperfrecog28_a_billed_line_at_the_rules_figure_does_not_claim_the_rule_priced_it(tmp_path: Path) -> None:
    """Repriced 1.68 -> 1.69 by the pass; the HIS then bills the ALT at 1.69 (the line is the money at
    stake now: ``price_source`` "charge"). The author's rule: a billed line supersedes the rule's price
    and the issue says the decision's price alone. 51cbc291 compares figures only, so the issue still
    says the price came from 1.68 by a rule although the flag's row says a charge line priced it."""
    site, flag = _repriced_store(tmp_path)
    for eng, http in _opened(tmp_path, site):
        _put_line(eng, http, "alt-line", flag, "1.69")
        (billed,) = flags(eng, "flagged")
        assert (D(billed["price"]), billed["price_source"]) == (D("1.69"), "charge"), billed
        issue = _issue(eng, http, flag["_id"])
        assert _money_text(issue) == "1.69", issue
        assert '"repricedFrom"' not in issue, issue  # 51cbc291: repricedFrom 1.68 on a line's price


def test_rvperfrecog28_superseded_repriced_from_does_not_come_back_when_the_catalogue_returns(tmp_path: Path) -> None:
    """The author's own case, one step on: repriced 1.68 -> 1.69; the catalogue changes (LFT 12.00, the
    ALT's share 2.00) and the ALT is corrected: 2.00, no ``repricedFrom`` (right). The catalogue goes
    back to 10.11 and the ALT is corrected again: 1.69 is the catalogue's decision now, after the
    issue said 2.00 -- 51cbc291 writes "repricedFrom 1.68" again."""
    site, flag = _repriced_store(tmp_path)
    prices = tmp_path / "site" / "recognition" / "prices.yaml"
    for eng, http in _opened(tmp_path, site):  # the pass, under the catalogue whose rounding it mends
        assert _money_text(_issue(eng, http, flag["_id"]), "repricedFrom") == "1.68"
    for catalogue, value, price in ((PRICES.replace("LFT: 10.11", "LFT: 12.00"), "32", "2.00"), (PRICES, "33", "1.69")):
        prices.write_text(catalogue, "utf-8")
        for eng, http in _opened(tmp_path, site):
            with running_mllp(eng) as port:
                Sender(port).send(result("HOSPB", "B1", "1742-6^ALT^LN", _ALT_AT, status="C",
                                         obx=ALT.replace("||30|", f"||{value}|")))
            (row,) = flags(eng, "flagged")
            assert D(row["price"]) == D(price), row
            issue = _issue(eng, http, flag["_id"])
            assert _money_text(issue) == price, issue
            assert '"repricedFrom"' not in issue, issue  # 51cbc291: back at 1.68 once the price is 1.69 again
