"""evpfix34: the evidence page as an auditor reads it, after rvevpage34's review.

- A PT flag the thirty-third round stored (its pair seconds beside an INR, no ``unlike``) is drawn as
  today's decision records it: not compared -- and, since the analyte is still repeated and priced, the
  row says its billing is unchanged (计费不变), so "not compared" is not read as "not deducted".
- Every side the evidence names an institution for says where it was performed (执行机构, name and
  code), for HL7 results too: the line had been drawn only for a performer named by reference alone,
  which the converter never writes; a whole item's two results say it as well.
- An analyte's other results are listed by the instant they were taken, whatever offset each sender
  used; a result dated by its day alone comes first on that day.

Headless Chromium through the real app (a staff auditor signed in with password and TOTP), at 1366x768
and 390x844; the flags come in as real HL7 v2 over ``POST /hl7v2``. Screenshots go to
``$HUREN_SCREENSHOTS`` when set, else the test's own folder.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_evidence33_page import SIZES, _shot_of, _shots
from tests.test_evidence33_pairs import ALT, AST, CBC, LFT, LOCAL_LFT, A, B, evidence, http, send, the_flag  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import flag_of, timed
from tests.test_evpfix34_evidence import as_round33, coag_rerun
from tests.test_insurance_ui import sign_in
from tests.test_probepay26_windows import order, result
from tests.test_reports_ui import Browser, browser, pytestmark, server  # noqa: F401 - fixtures


def _open(browser: Browser, flag_id: str) -> None:  # noqa: F811
    browser.eval(f"document.querySelector('#flags tr[data-id={json.dumps(flag_id)}] button.open').click(); true")
    browser.wait_for(f"!document.querySelector('#evidence').hidden && document.querySelector('#ev-id').textContent === {json.dumps(flag_id)}")


def _terms(browser: Browser, selector: str) -> list[list[str]]:  # noqa: F811
    """The (term, value) lines of the first ``dl`` under ``selector``."""
    return browser.eval(f"[...document.querySelector({selector!r}).querySelectorAll('dt')]"
                        ".map(dt => [dt.textContent, dt.nextElementSibling.textContent])")


@pytest.mark.parametrize("size", list(SIZES))
def test_a_round33_pt_flag_is_drawn_not_compared_and_its_billing_unchanged(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                           browser: Browser, tmp_path: Path, size: str) -> None:  # noqa: F811
    coag_rerun(http)
    row = flag_of(engine, http, "COAG")
    as_round33(engine, row["id"])  # the pair as round 33 stored it: no unlike, no measures
    width, height, mobile = SIZES[size]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", f"zhou.{size}", "auditor")
    _open(browser, row["id"])
    [[analyte, said, cls]] = browser.eval("[...document.querySelectorAll('#ev-pairs .pair')]"
                                          ".map(p => [p.dataset.analyte, p.innerText, p.className])")
    assert analyte == "PT" and "unlike" in cls.split()
    note = browser.eval("document.querySelector('#ev-pairs .pair .unlike-note').innerText")
    assert "两次测量的指标不同" in note and "不作对照" in note
    # the LOINC codes told apart, kept for tracing beneath the note, folded (uifix35: the lab's names first)
    trace = browser.eval("document.querySelector('#ev-pairs .pair .unlike-note details.trace').textContent")
    assert "5902-2" in trace and "6301-6" in trace, trace
    billing = browser.eval("document.querySelector('#ev-pairs .pair .unlike-billing').innerText")
    assert "计费不变" in billing and "billing unchanged" in billing
    # the money is the flag's, as shown above the rows: the same price as today's decision stored
    facts = dict(_terms(browser, "#ev-facts"))
    assert facts["价格 Price"] == "15.00 元（价格目录 price catalogue）"
    # each side says where it was performed, by name and code; the performer's display is not said twice
    prior, repeat = said.split("复查结果 Repeat")
    assert "执行机构 Performed at\n阜宁县人民医院（FNXRMYY）" in prior and "1.02 INR" in prior
    assert "执行机构 Performed at\n阜宁县中医院（FNZYY）" in repeat and "结果 Value\n12.5 s" in repeat
    assert "执行 By" not in said
    also = browser.eval("[...document.querySelectorAll('#ev-pairs .pair-side:last-child .also li')].map(li => li.innerText)")
    assert len(also) == 1 and also[0].startswith("12.9 s") and "2026年3月12日 11:00" in also[0] and "（FNZYY）" in also[0], also
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / f"evpfix34-round33-pt-{size}-pairs.png")


def test_a_whole_items_two_results_say_where_they_were_performed(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                 browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """A blood count repeated: no analyte rows, the two whole results are what was compared -- each
    with the institution the evidence names for it (the item's one pair)."""
    send(http, result(A, "A1", CBC, "20260310090000+0800"))
    send(http, order(B, "B1", CBC, "20260312080000+0800"))
    send(http, result(B, "B1", CBC, "20260312100000+0800"))
    row = the_flag(engine, http)
    ev = evidence(engine, http, row["id"])
    [item] = ev["pairs"]
    assert item["analyte"] is None and (item["priorInstitution"], item["resultInstitution"]) == (A, B)
    browser.send("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.cbc", "auditor")
    _open(browser, row["id"])
    assert browser.eval("document.querySelector('.results').hidden") is False
    prior, repeat = dict(_terms(browser, "#ev-prior-words")), dict(_terms(browser, "#ev-repeat-words"))
    assert prior["执行机构 Performed at"] == "阜宁县人民医院（FNXRMYY）"
    assert repeat["执行机构 Performed at"] == "阜宁县中医院（FNZYY）"
    assert "执行 By" not in prior and "执行 By" not in repeat
    assert browser.eval("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    _shot_of(browser, "#evidence", _shots(tmp_path) / "evpfix34-whole-item-phone-evidence.png")


def test_other_results_are_listed_by_the_instant_a_day_alone_first(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                   browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The repeat ran ALT five times: dated 2026-03-12 alone, at 09:30 Beijing sent in UTC (01:30 +0000),
    at 10:00 and 11:00 Beijing (+0800), and at 12:00 Beijing sent in UTC (04:00 +0000). One is drawn in
    full; the other four are listed by when they were taken, the day alone first."""
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=timed((ALT, "30", "20260310090000+0800"), (AST, "28", "20260310090000+0800"))))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800",
                      obx=timed((ALT, "90", "20260312040000+0000"), (ALT, "87", "20260312"),
                                (ALT, "91", "20260312110000+0800"), (ALT, "89", "20260312013000+0000"),
                                (AST, "35", "20260312100000+0800"), (ALT, "88", ""))))
    row = flag_of(engine, http)
    ev = evidence(engine, http, row["id"])
    [alt] = [p for p in ev["pairs"] if p["analyte"] == "ALT"]
    times = {o["resource"]["valueQuantity"]["value"]: o["resource"]["effectiveDateTime"] for o in alt["resultAlso"]}
    shown = alt["resultResource"]["valueQuantity"]["value"]
    times[shown] = alt["resultResource"]["effectiveDateTime"]
    # the preconditions: a day alone, and both offsets, among the results
    assert times[87] == "2026-03-12" and times[90].endswith("+00:00") and times[91].endswith("+08:00"), times

    def taken(value: float) -> tuple[datetime, int]:
        s = times[value]
        return (datetime.fromisoformat(s + "T00:00:00+08:00"), 0) if len(s) == 10 else (datetime.fromisoformat(s), 1)

    expected = [v for v in sorted(times, key=taken) if v != shown]
    assert expected[0] == 87 and len(expected) == 4
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.times", "auditor")
    _open(browser, row["id"])
    listed = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child .also li b.value')]"
                          ".map(b => b.textContent)")
    assert listed == [f"{v} U/L" for v in expected]
    said = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child .also li')]"
                        ".map(li => li.innerText)")
    assert "2026年3月12日" in said[0] and ":" not in said[0].split("·")[1], said  # a day alone: no time made up
    _shot_of(browser, "#ev-pairs", _shots(tmp_path) / "evpfix34-other-results-by-instant-pairs.png")
