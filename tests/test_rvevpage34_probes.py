"""rvevpage34: probes of evpage34's change (the duplicate flag's evidence finished: every other result of
an analyte with its time and institution, the billed mark, an analyte measured differently on each side
marked ``unlike``, old flags derived as the decision reads them).

Real HL7 v2 over ``POST /hl7v2`` into the real store, the evidence read back over HTTP (TestClient) and,
for the page, in headless Chromium through the real app. A probe that shows a defect is a strict xfail.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import COAG_LOCAL, PT_INR, PT_S, coag_unlike, flag_of, index_ref, timed
from tests.test_insurance_ui import sign_in
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer
from tests.test_reports_ui import CHROMIUM, Browser, browser, server  # noqa: F401 - fixtures

PAIRS_COLUMN = "分项对照（复查 ↔ 前次，同一分析项目）"


def _csv_cell(engine: Any, http: TestClient, flag_id: str) -> str:  # noqa: F811
    text = http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text.lstrip("\ufeff")
    table = list(csv.reader(io.StringIO(text)))
    col = table[0].index(PAIRS_COLUMN)
    [row] = [r for r in table[1:] if r and flag_id in r]
    return row[col]


# --- MED: a PT pair stored in the thirty-third round (seconds beside an INR) is still shown compared ----

def test_a_pt_pair_recorded_in_round33_seconds_beside_inr_is_not_shown_compared(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The same bytes as evpage34's unlike test. The row fe370ad5 (the release before this change) stored
    for them differs from today's only in the PT pair: ``_analyte_pairs`` returned ``(None, mine, theirs)``
    when no measurement was common, so the pair was {analyte, result, prior} -- the same two references
    (one entry each side: ``_first`` == ``_shown``) without ``unlike`` / ``*_measure``. Such a row is in
    every store that ran round 33; shown, its seconds-vs-INR pair must not read as a comparison. (Checked:
    fe370ad5's code, run from ``git archive`` on these bytes, stored [{"analyte": "PT", "result":
    "Observation/738a1d1a-...", "prior": "Observation/528fc486-..."}], the very references below.)"""
    coag_unlike(http)
    row = flag_of(engine, http, "COAG")
    stored = engine.recognition.flags.get(row["id"])
    [pt] = stored["pairs"]
    assert pt["unlike"] is True
    round33 = {**stored, "pairs": [{k: pt[k] for k in ("analyte", "result", "prior")}]}
    engine.recognition.flags.coll.replace(round33)
    ev = evidence(engine, http, row["id"])
    [p] = ev["pairs"]
    assert p["resultResource"]["valueQuantity"]["unit"] == "s" and p["priorResource"]["valueQuantity"]["unit"] == "{INR}"
    cell = _csv_cell(engine, http, row["id"])
    assert p.get("unlike") is True, p
    assert "↔" not in cell, cell


# --- guards that pass: what the change must keep -------------------------------------------------------

def test_an_unlike_analyte_cites_every_entry_and_its_money_is_the_likes(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The repeat ran PT in seconds twice (12.5, then 12.9), the prior was an INR: one unlike row, the
    other seconds in ``result_also``, every entry cited by the DetectedIssue (labels screen by it); the
    flag's price, billed result and analytes are what the same test as a like pair (seconds both sides)
    is billed -- the unlike mark moves no money."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800", obx=timed((PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800",
                      obx=timed((PT_S, "12.9", "20260312110000+0800", "s"), (PT_S, "12.5", "", "s"))))
    row = flag_of(engine, http, "COAG")
    [pt] = row["pairs"]
    s1, s2 = index_ref(engine, B, "PT", "12.5", http), index_ref(engine, B, "PT", "12.9", http)
    inr = index_ref(engine, A, "PT", "1.02", http)
    assert pt["unlike"] is True and {pt["result"], *pt["result_also"]} == {s1, s2} and pt["prior"] == inr
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    assert {s1, s2, inr} <= {i["reference"] for i in issue["implicated"]}
    [unlike] = [e for e in issue["extension"][0]["extension"] if e["url"] == "unlikeAnalyte"]
    assert [x["valueReference"]["reference"] for x in unlike["extension"] if x["url"] == "alsoRepeatResult"] == pt["result_also"]
    ev = evidence(engine, http, row["id"])
    [p] = ev["pairs"]
    assert [o["resource"]["valueQuantity"]["value"] for o in p["resultAlso"]] + [p["resultResource"]["valueQuantity"]["value"]] \
        in ([12.9, 12.5], [12.5, 12.9])
    unlike_money = {k: row[k] for k in ("price", "price_source", "result", "analytes", "status")}
    # the prior corrected to seconds (the same OBX, sent again): the flag is decided again, now a like
    # pair, and bills exactly what it billed as unlike
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800", status="C", obx=timed((PT_S, "12.0", "", "s"))))
    row2 = flag_of(engine, http, "COAG")
    [like] = row2["pairs"]
    assert "unlike" not in like and like["measure"] == "5902-2", like
    assert {k: row2[k] for k in unlike_money} == unlike_money


def test_the_evidence_of_a_blind_reader_names_no_institution_of_an_unlike_side(engine: Any, http: TestClient) -> None:  # noqa: F811
    """Read with the report's own token (no Observation scope): each side and each other result is null,
    and no performing institution of any is given -- the evidence API shows nothing the caller may not read."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800", obx=timed((PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800",
                      obx=timed((PT_S, "12.9", "20260312110000+0800", "s"), (PT_S, "12.5", "", "s"))))
    row = flag_of(engine, http, "COAG")
    blind = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).json()
    [p] = blind["pairs"]
    assert p["unlike"] is True
    assert (p["resultResource"], p["priorResource"], p["resultInstitution"], p["priorInstitution"]) == (None, None, None, None)
    assert [(o["resource"], o["institution"]) for o in p["resultAlso"]] == [(None, None)]
    assert blind["resultResource"] is None and blind["priorResource"] is None


# --- LOW: the page's "oldest first" is a text sort of times in different offsets -------------------------

def _instant(s: str) -> datetime:
    return datetime.fromisoformat(s)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_other_results_are_listed_oldest_first_whatever_their_offset(engine: Any, http: TestClient, server: str,  # noqa: F811
                                                                           browser: Browser) -> None:  # noqa: F811
    """The repeat ran ALT four times: at 10:00 and 11:00 Beijing (sent +0800), at 11:30 and 12:00 Beijing
    sent in UTC (03:30 / 04:00 +0000). One is drawn in full; the page must list the other three by the
    instant they were taken, oldest first, as its own comment says."""
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=timed((ALT, "30", "20260310090000+0800"), (AST, "28", "20260310090000+0800"))))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800",
                      obx=timed((ALT, "90", "20260312040000+0000"), (ALT, "91", "20260312110000+0800"),
                                (ALT, "89", "20260312033000+0000"), (AST, "35", "20260312100000+0800"), (ALT, "88", ""))))
    row = flag_of(engine, http)
    ev = evidence(engine, http, row["id"])
    [alt] = [p for p in ev["pairs"] if p["analyte"] == "ALT"]
    assert len(alt["resultAlso"]) == 3
    chronological = [o["reference"] for o in sorted(alt["resultAlso"], key=lambda o: _instant(o["resource"]["effectiveDateTime"]))]
    offsets = {o["resource"]["effectiveDateTime"][-6:] for o in alt["resultAlso"]}
    assert offsets == {"+00:00", "+08:00"}, offsets  # the precondition: both offsets among the listed
    browser.send("Emulation.setDeviceMetricsOverride", width=1366, height=768, deviceScaleFactor=1, mobile=False)
    sign_in(browser, server, engine, "/ui/duplicates", "zhou.order", "auditor")
    browser.eval(f"document.querySelector('#flags tr[data-id={json.dumps(row['id'])}] button.open').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden && document.querySelectorAll('#ev-pairs .pair').length > 0")
    listed = browser.eval("[...document.querySelectorAll('#ev-pairs .pair[data-analyte=ALT] .pair-side:last-child .also li')]"
                          ".map(li => li.dataset.ref)")
    assert listed == chronological
