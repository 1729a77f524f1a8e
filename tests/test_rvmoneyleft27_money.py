"""Review of moneyleft27 (rvmoneyleft27): findings as plain failing tests on ff82b657.

Real HL7 v2 bytes over a real MLLP socket into the real store (SQLite), charge lines PUT over
real HTTP through FastAPI's TestClient; a store written by the base code (7e6d12a6) run from this
checkout's history. DOMAIN.md "Payment policy": the money at stake is "the billed charge line when
one exists, else the price catalogue at the ordered level".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_moneyleft27_money import LOCAL, PRICES
from tests.test_probepay26_windows import CBC, LFT, flags, make_site, open_engine, order, result
from tests.test_recognition_e2e import Sender


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path, recognition__prices__yaml=PRICES))


def _put(engine: Engine, body: str, cid: str) -> None:
    http = TestClient(create_app(engine))
    his = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-billing", "system/*.cruds"),
           "Content-Type": "application/fhir+json"}
    res = http.put(f"/fhir/ChargeItem/{cid}", content=body.encode(), headers=his)
    assert res.status_code in (200, 201), res.text


def _line(cid: str, f: dict, day: str, money: str, extension: str = "") -> str:
    return ('{{"resourceType":"ChargeItem","id":"{}","status":"billable","code":{{"coding":[{{"system":'
            '"urn:huren:code:price","code":"250101001"}}]}},"subject":{{"reference":"{}"}},{}'
            '"occurrenceDateTime":"{}T10:00:00+08:00","service":[{{"reference":"{}"}}],'
            '"priceOverride":{}}}').format(cid, f["patient"], extension, day, f["result"], money)


def test_rvmoneyleft27_alt_ordered_alone_keeps_its_billed_line_when_the_lab_reports_the_panel(
        engine: Engine, mllp: int) -> None:
    """An ALT ordered alone (OBR-4 ALT) after HOSPA's whole liver panel; the lab's report is coded as
    the panel with its results coded locally (no analyte named). What was ordered (ALT) and what the
    report says was done (the panel) were both repeated, so by the author's own rule ("a billed line
    prices the repeat only when what was ordered and what was done both repeat") and DOMAIN.md's
    (the billed line when one exists) the ALT line billed at 5.00 is the money at stake -- the base
    took it. ff82b657 turns the order into the whole panel (``performed`` empty -> ``analytes=()``)
    while matching on the ALT, so the line is never taken: the catalogue's 1.69 stands."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=LOCAL))
    s.send(order("HOSPB", "B1", "1742-6^ALT^LN", "20260312080000+0800"))
    s.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx=LOCAL))
    [f] = flags(engine, "flagged")
    assert f["analytes"] == ["ALT"], f
    _put(engine, _line("alt1", f, "2026-03-12", '{"value":5.00,"currency":"CNY"}'), "alt1")
    [f] = flags(engine, "flagged")
    assert (D(str(f["price"])), f["price_source"]) == (D("5.00"), "charge"), f


def test_rvmoneyleft27_line_whose_currency_is_on_its_fund_share_does_not_price_the_flag(
        engine: Engine, mllp: int) -> None:
    """The settlement reads a line's currency as its priceOverride's, else its fund share's
    (``charges.read_line``) and leaves a USD line out; ``service._on_charge`` decides "another
    currency" a second time, from the priceOverride alone, so a line of 25.00 whose fund share says
    USD still prices the flag as CNY 25.00. One rule, one owner: the catalogue's 0.10 should stand."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", CBC, "20260301090000+0800"))
    s.send(order("HOSPB", "B1", CBC, "20260302080000+0800"))
    s.send(result("HOSPB", "B1", CBC, "20260302100000+0800"))
    [f] = flags(engine, "flagged")
    share = ('"extension":[{"url":"urn:huren:StructureDefinition:fund-share",'
             '"valueMoney":{"value":20.00,"currency":"USD"}}],')
    _put(engine, _line("u2", f, "2026-03-02", '{"value":25.00}', share), "u2")
    [f] = flags(engine, "flagged")
    assert (D(str(f["price"])), f["price_source"]) == (D("0.10"), "catalogue"), f


def test_rvmoneyleft27_report_with_locally_coded_results_reads_no_store_row_per_result(
        engine: Engine, mllp: int) -> None:
    """Hot path: a blood count whose 19 results are coded locally (no analyte: not in the results
    index). ``_decide_repeat`` now looks up, one ``index.get`` each, every result the report lists
    that the test's entries do not hold -- 19 store reads that all miss, per decision (~12 us each
    here, ~+230 us on a message whose hook costs ~800 us). The base read the index once."""
    idx = engine.recognition.index
    calls: list[str] = []
    orig = idx.get

    def counted(ref: str):  # counts the reads; the real index answers them
        calls.append(ref)
        return orig(ref)

    idx.get = counted  # type: ignore[method-assign]
    obx = "\n".join(f"OBX|{i}|NM|W{i}^血细胞{i}^L||6.1|10*9/L|||||{{s}}|||20260302100000+0800" for i in range(1, 20))
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", CBC, "20260301090000+0800", obx=obx))
    s.send(order("HOSPB", "B1", CBC, "20260302080000+0800"))
    calls.clear()
    s.send(result("HOSPB", "B1", CBC, "20260302100000+0800", obx=obx))
    assert len(flags(engine, "flagged")) == 1
    assert len(calls) <= 2, (len(calls), calls[:4])


# Run by the base code (PYTHONPATH=its tree): the messages (argv[3], JSON) through its ingestor's
# handle -- the listener's own call, without a socket -- so that only the engine is imported (no
# test modules, no HTTP client: moneyfix27 made the test cheaper; the store is the base's, as before)
OLD = r"""
import json, sys
from pathlib import Path
from engine.engine import Engine
from engine.settings import Settings

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0, site=Path(sys.argv[2]))) as eng:
    for text in json.loads(sys.argv[3]):
        ack = eng.ingestor.handle(text.replace("\n", "\r").encode(), channel="mllp", peer="127.0.0.1")
        assert b"MSA|AA|" in ack, ack
    print(json.dumps([f["price"] for f in eng.recognition.flags.find({})]))
"""
_RUNTIME = ("engine/", "adapters/", "mappings/")  # what the base engine imports and reads at run time


def _base_tree(commit: str, tmp_path: Path) -> Path:
    """The base's engine, adapters and mappings from this checkout's history (``git archive`` of
    those folders only: the tests, docs and benches are not needed to write its store)."""
    import io
    import tarfile

    from tests.test_moneylast19_charges import ROOT
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, *_RUNTIME], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"commit {commit} is not in this checkout's history (a shallow clone?)")
    base = tmp_path / "before"
    base.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(base, filter="data")
    return base


def test_rvmoneyleft27_flag_the_base_priced_by_float_rounding_is_priced_again(tmp_path: Path) -> None:
    """A store written by the base: an ALT repeated alone after a 10.11 liver panel of six was
    stored at 1.68 (a float's ``round`` of 1.685). Opened by ff82b657 the flag, the duplicates
    report and the deduction list still say 1.68 where this release prices the same repeat 1.69
    (half up at the fen): nothing prices again the flags an earlier release priced from the
    catalogue. (The README's "left" names only the DetectedIssue's 10.0 text.)
    moneyfix27: priced again once when the store is opened, and the flag says so (its row's
    ``repriced``, its DetectedIssue's ``repricedFrom``)."""
    from tests.test_moneyleft27_money import ALT, _h, _money_text

    site = make_site(tmp_path, recognition__prices__yaml=PRICES)
    base = _base_tree("7e6d12a6", tmp_path)
    data = tmp_path / "var"
    sent = [result("HOSPA", "A9", LFT, "20260310090000+0800", obx=LOCAL),
            order("HOSPB", "B9", "1742-6^ALT^LN", "20260312080000+0800"),
            result("HOSPB", "B9", "1742-6^ALT^LN", "20260312100000+0800", obx=ALT)]
    done = subprocess.run([sys.executable, "-c", OLD, str(data), str(site), json.dumps(sent)], cwd=base,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(base)}, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1.68]  # what the base stored
    for eng in open_engine(tmp_path, site):
        http = TestClient(create_app(eng))
        raw = http.get("/reports/duplicates?from=2026-03-01&to=2026-03-31", headers=_h(eng)).text
        assert '"money_at_stake":1.69' in raw, raw[:600]
        [f] = flags(eng, "flagged")
        assert [(c["from"], c["to"]) for c in f["repriced"]] == [("1.68", "1.69")], f
        issue = http.get(f"/fhir/DetectedIssue/{f['_id']}", headers=_h(eng)).text
        assert (_money_text(issue), _money_text(issue, "repricedFrom")) == ("1.69", "1.68"), issue
