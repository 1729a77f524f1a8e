"""probepay26: what happens to a flag, and to the hospital's deduction, after the fact -- a prior
corrected out of the window or withdrawn after an auditor upheld the flag, an overturned flag --
and the short and long windows, and a payer's own R08 fraction as data.

DOMAIN.md: R must be "final (not preliminary, corrected-away or entered-in-error)" and "O's date
minus R's date is within the item's window"; the deduction list holds what the fund will not pay.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.conftest import running_mllp
from tests.test_probepay26_money import _deductions, _uphold
from tests.test_probepay26_windows import CBC, LFT, flags, make_site, open_engine, order, reminded, result
from tests.test_recognition_e2e import Sender
from tests.test_reports_duplicates import bearer

REPO = Path(__file__).resolve().parent.parent
SYS = "urn:huren:recognition-reason"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path))


def _flagged_repeat(hl7: Sender, item: str = CBC) -> None:
    hl7.send(result("HOSPA", "A1", item, "20260310090000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", item, "20260312080000+0800")))
    hl7.send(result("HOSPB", "B1", item, "20260312100000+0800"))


def test_probepay26_prior_corrected_out_of_the_window_is_warned_and_the_flag_stands(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _flagged_repeat(hl7)
    assert len(flags(engine, "flagged")) == 1
    # the lab: it was done 03-01 -- said by a correction sent after the report (its MSH-7 03-13): a
    # message stamped 03-01 is older than the 03-10 report and is held whole, the report too (tfix34)
    corrected = result("HOSPA", "A1", CBC, "20260301090000+0800", status="C")
    assert "|C1|20260301090000+0800|" in corrected
    ack = hl7.send(corrected.replace("|C1|20260301090000+0800|", "|C1|20260313090000+0800|", 1))
    # prior42 (forty-second round): a correction over a final states the result again, not another exam -- its
    # time is not taken (a restamped correction had dated a "prior" no exam made: rv41k), the ACK warns naming
    # both times, and the flag stands until the operator sets the exam's time (a FHIR PUT of the result)
    assert "MSA|AA" in ack and "|W|" in ack, ack
    assert len(flags(engine, "flagged")) == 1, flags(engine)


def test_probepay26_upheld_flag_whose_prior_is_withdrawn_is_not_deducted(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _flagged_repeat(hl7)
    http = TestClient(create_app(engine))
    _uphold(http, engine)
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    assert (len(rows), total) == (1, D("20.00")), rows
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800", status="W"))  # entered in error
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    assert (len(rows), total) == (0, D("0.00")), (rows, flags(engine))


def test_probepay26_overturned_flag_is_not_deducted(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    _flagged_repeat(hl7)
    http = TestClient(create_app(engine))
    [f] = flags(engine, "flagged")
    r = http.post(f"/reports/duplicates/{f['_id']}/review", json={"decision": "overturned", "reason": "病情需要"},
                  headers=bearer(engine))
    assert r.status_code == 200, r.text
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    assert (len(rows), total) == (0, D("0.00")), rows
    # a later copy of the repeat's result does not reopen it
    hl7.send(result("HOSPB", "B1", CBC, "20260312100000+0800", status="C"))
    rows, total = _deductions(http, engine, "HOSPB", "2026-03")
    rep = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert (len(rows), D(str(rep["totals"]["money_at_stake"]))) == (0, D("0")), (rows, rep["totals"])


@pytest.mark.parametrize(("item", "obx", "prior", "counts"), [
    # electrolytes (K), window 3
    ("2823-3^Potassium^LN", "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||{s}", "20260309235959+0800", True),
    ("2823-3^Potassium^LN", "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||{s}", "20260308235959+0800", False),
    # HbA1c, window 60: 2026-01-11 -> 2026-03-12 is 60 days; 01-10 is 61
    ("4548-4^HbA1c^LN", "OBX|1|NM|4548-4^HbA1c^LN||6.1|%|||||{s}", "20260111090000+0800", True),
    ("4548-4^HbA1c^LN", "OBX|1|NM|4548-4^HbA1c^LN||6.1|%|||||{s}", "20260110235959+0800", False),
])
def test_probepay26_short_and_long_windows(engine: Engine, mllp: int, item: str, obx: str, prior: str,
                                           counts: bool) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", item, prior, obx=obx))
    assert reminded(hl7.send(order("HOSPB", "B1", item, "20260312080000+0800"))) is counts, prior
    hl7.send(result("HOSPB", "B1", item, "20260312100000+0800", obx=obx))
    assert len(flags(engine, "flagged")) == int(counts), (prior, flags(engine))


def test_probepay26_payer_age_fraction_is_data(tmp_path: Path) -> None:
    """Community c1's payer pays R08 once the prior is older than a quarter of the window: an LFT
    (window 14) 4 days old is then payable (default 0.5: it would be contradicted)."""
    policy = (REPO / "mappings/recognition/policy.yaml").read_text("utf-8")
    policy = policy.replace("communities: {}", "communities:\n  c1:\n    age_fraction: 0.25")
    for eng in open_engine(tmp_path, make_site(tmp_path, recognition__policy__yaml=policy)):
        with running_mllp(eng) as port:
            hl7 = Sender(port)
            hl7.send(result("HOSPA", "A1", LFT, "20260308090000+0800"))
            assert reminded(hl7.send(order("HOSPB", "B1", LFT, "20260312080000+0800", reason="R08^结果过旧^" + SYS)))
            hl7.send(result("HOSPB", "B1", LFT, "20260312100000+0800"))
            [f] = flags(eng)
            assert (f["status"], f["reason"]) == ("justified", "R08"), f


def test_probepay26_payer_direction_makes_recognition_optional(tmp_path: Path) -> None:
    """Community c1's payer: a 二级 member must recognise only 二级 and 一级 results. HOSPB (二级)
    repeating HOSPA's (三级) blood count is then reported, basis optional -- nothing at stake; HOSPB
    repeating HOSPC's (一级) is still not payable."""
    policy = (REPO / "mappings/recognition/policy.yaml").read_text("utf-8")
    policy = policy.replace("communities: {}", "communities:\n  c1:\n    direction: {三级: [三级, 二级, 一级], "
                                               "二级: [二级, 一级], 一级: [三级, 二级, 一级]}")
    for eng in open_engine(tmp_path, make_site(tmp_path, recognition__policy__yaml=policy)):
        with running_mllp(eng) as port:
            hl7 = Sender(port)
            _flagged_repeat(hl7)
            [f] = flags(eng)
            assert (f["status"], f["basis"]) == ("reported", "optional"), f
            hl7.send(result("HOSPC", "C1", LFT, "20260310090000+0800"))
            assert reminded(hl7.send(order("HOSPB", "B2", LFT, "20260312080000+0800")))
            hl7.send(result("HOSPB", "B2", LFT, "20260312100000+0800"))
            [g] = [g for g in flags(eng) if g["item"] == "LFT"]
            assert (g["status"], g["prior_inst"], stored_fen(g["price"])) == ("flagged", "HOSPC", 60.0), g
