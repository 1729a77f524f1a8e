"""evpage34: an auditor reads a flag's evidence in the page -- every result of an analyte measured
more than once on a side, with its value, time (Beijing) and performing institution; which one is the
billed result; and an analyte measured differently on each side, said not to be compared. Headless
Chromium through the real app (a staff auditor signed in with password and TOTP), at 1366x768 and at a
phone's 390x844; the flags come in as real HL7 v2 over ``POST /hl7v2``. Screenshots go to
``$HUREN_SCREENSHOTS`` when set (the round's report folder), else the test's own folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_evidence33_page import SIZES, _shot, _shot_of, _shots
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, http, panel_repeat, send, the_flag  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import coag_unlike, timed
from tests.test_insurance_ui import sign_in
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures


def _open(browser: Browser, flag_id: str) -> None:  # noqa: F811
    browser.eval(f"document.querySelector('#flags tr[data-id={json.dumps(flag_id)}] button.open').click(); true")
    browser.wait_for(f"!document.querySelector('#evidence').hidden && document.querySelector('#ev-id').textContent === {json.dumps(flag_id)}"
                     " && document.querySelectorAll('#ev-pairs .pair').length > 0")


@pytest.mark.parametrize("size", list(SIZES))
def test_an_auditor_reads_every_result_of_an_analyte_and_the_billed_one(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                        browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    # the liver panel: the prior ALT 30 + AST 28; the repeat ran ALT twice (88 at 10:00, 90 at 11:00) and AST 35
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=timed((ALT, "30", "20260310090000+0800"), (AST, "28", "20260310090000+0800"))))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800",
                      obx=timed((ALT, "90", "20260312110000+0800"), (AST, "35", "20260312100000+0800"), (ALT, "88", ""))))
    # and a coagulation panel whose PT was measured in seconds, its prior as an INR
    coag_unlike(http)
    rows = {r["item"]: r for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]}
    lft, coag = rows["LFT"], rows["COAG"]

    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"zhou.{size}", "auditor")
    _open(browser, lft["id"])
    pairs = browser.eval("[...document.querySelectorAll('#ev-pairs .pair')].map(p => [p.dataset.analyte, p.innerText])")
    assert [a for a, _ in pairs] == ["ALT", "AST"]
    alt = dict(pairs)["ALT"]
    prior, repeat = alt.split("复查结果 Repeat")
    assert "结果 Value\n30 U/L" in prior and "执行机构 Performed at\n阜宁县人民医院（FNXRMYY）" in prior and "同项其他结果" not in prior
    # the repeat side: one ALT in full, the other listed with its value, Beijing time and institution
    also = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child .also li')]"
                        ".map(li => li.innerText)")
    assert len(also) == 1, also
    shown, listed = ("90", "88") if "结果 Value\n90 U/L" in repeat else ("88", "90")
    assert f"结果 Value\n{shown} U/L" in repeat
    at = "2026年3月12日 " + ("11:00" if listed == "90" else "10:00")
    assert also[0].startswith(f"{listed} U/L") and at in also[0] and f"（{B}）" in also[0], also
    assert "同项其他结果 1 条" in repeat
    # the billed result (the flag's: the charge line is found by it) is marked, once, where it is drawn
    billed = browser.eval("[...document.querySelectorAll('#ev-pairs .billed')].map(b => b.closest('li, .pair-side')"
                          ".querySelector('small.ref').textContent)")
    assert billed == [lft["result"]]
    assert "计费结果 Billed result" in browser.eval("document.querySelector('#ev-facts').innerText")
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot(browser, _shots(tmp_path) / f"evpage34-rerun-{size}.png")
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / f"evpage34-rerun-{size}-pairs.png")

    _open(browser, coag["id"])
    [[analyte, said, cls]] = browser.eval("[...document.querySelectorAll('#ev-pairs .pair')].map(p => [p.dataset.analyte, p.innerText, p.className])")
    assert analyte == "PT" and "unlike" in cls.split()
    assert "两次测量的指标不同" in said and "不作对照" in said and "复查：PT；前次：INR" in said
    # the LOINC codes told apart are kept for tracing, folded (uifix35: the lab's names first)
    trace = browser.eval("document.querySelector('#ev-pairs .pair .unlike-note details.trace').textContent")
    assert "5902-2" in trace and "6301-6" in trace and "5902-2" not in said, (trace, said)
    prior, repeat = said.split("复查结果 Repeat")
    assert "结果 Value\n1.02 INR" in prior and "{INR}" not in said and "结果 Value\n12.5 s" in repeat
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / f"evpage34-unlike-{size}-pairs.png")


def test_a_report_billed_is_said_above_its_analytes(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                    browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """Both sides reports of the panel: the billed result is the repeat's report, which no analyte row
    draws -- the page says so once above the rows, and marks no analyte's result as billed."""
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35")), code=LFT)
    row = the_flag(engine, http)
    assert row["result"].startswith("DiagnosticReport/")
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.report", "auditor")
    _open(browser, row["id"])
    said = browser.eval("[...document.querySelectorAll('#ev-pairs .billed-note')].map(n => n.innerText)")
    assert len(said) == 1 and said[0].startswith("计费结果是本次检查检验的整份报告"), said
    assert browser.eval("document.querySelectorAll('#ev-pairs .billed').length") == 0
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#evidence", _shots(tmp_path) / "evpage34-report-billed-phone-evidence.png")


def test_a_billed_result_no_row_draws_is_not_called_a_report(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                             browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """pages32's case: results as Observations alone, the prior AST alone, the repeat ALT + AST. The billed
    result is the repeat's first entry, its ALT, which is not repeated against a prior: no row draws it,
    and the page does not call it the test's report."""
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    assert row["result"].startswith("Observation/") and [p["analyte"] for p in row["pairs"]] == ["AST"]
    assert row["result"] not in {r for p in row["pairs"] for r in (p["result"], p["prior"])}
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.alt", "auditor")
    _open(browser, row["id"])
    said = browser.eval("[...document.querySelectorAll('#ev-pairs .billed-note')].map(n => n.innerText)")
    assert len(said) == 1 and said[0].startswith("计费结果（见上方“计费结果”）不是以下对照中的结果"), said
    assert "整份报告" not in said[0]
