"""The auditors' duplicate report and deduction lists do not tell an R result's item (labels20).

Found wrong: the FHIR read hides a recognition flag (``DetectedIssue``) citing a result labelled R
from a caller not cleared for R (an auditor reads both 404), but ``/reports/duplicates`` (JSON,
CSV, the evidence drill-down, a review's answer) and ``/reports/deductions`` (CSV and the signed
Bundle, which carried the DetectedIssue as stored) read recognition's rows unscoped and listed the
flag's item ("CBC", its name), the analytes, the results it cites and their ids. Now such a line
keeps its money -- the totals are what the fund will not pay -- and shows 受限项目 for its item and
evidence, with no reference to the results; by item it is counted under 受限项目, and a report asked
for that one item leaves it out. A hospital system shown every label reads it as before.
(labelsmend20: such a flag is now not listed at all -- its drill-down and review answer 404 -- and
the lists say how many were left out and their money: tests/test_labelsmend20_report_flags.py.)

Results sent over real HTTP (PUT) by the hospitals' system, flags written by the real recognition
hook, read over real HTTP with real tokens; the real store (SQLite).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_labels19_flag_label import HttpWorld
from tests.test_recognition_world import ALICE, A, B, cbc, lft

AUDITOR = "system/DetectedIssue.rus system/DiagnosticReport.rs system/ServiceRequest.rs"


def _auditor(engine: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("auditor-li", AUDITOR, kind="auditor")}


def _county(engine: Any, http: TestClient) -> tuple[dict[str, str], str]:
    """Alice's CBC at A is labelled R; B repeats it (flag, 20.00) and her LFT (flag, 60.00)."""
    system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
    w = HttpWorld(engine, http, system)
    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    w.label = "R"
    prior = w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00").resource
    w.label = None
    w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
    o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
    w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
    o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")
    w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)
    return system, f"DiagnosticReport/{prior['id']}"


def _tells_nothing(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, secret


def test_the_duplicate_report_masks_a_flag_citing_a_restricted_result(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system, prior = _county(engine, http)
        auditor = _auditor(engine)
        full = http.get("/reports/duplicates", headers=system).json()
        by_item = {r["item"]: r for r in full["rows"]}
        assert set(by_item) == {"CBC", "LFT"} and by_item["CBC"]["prior_result"] == prior
        cbc_row = by_item["CBC"]
        secrets = ["CBC", prior, cbc_row["result"], cbc_row["order"], *([cbc_row["item_name"]] if cbc_row["item_name"] else [])]
        assert http.get(f"/fhir/{prior}", headers=auditor).status_code == 404  # what the report must agree with

        r = http.get("/reports/duplicates", headers=auditor)
        assert r.status_code == 200, r.text
        _tells_nothing(r.text, secrets)
        rep = r.json()
        # labelsmend20: not listed at all (a masked row kept its id, patient, institution and day)
        assert [row["item"] for row in rep["rows"]] == ["LFT"]
        t = rep["totals"]
        assert (t["count"], t["money_at_stake"], t["restricted"]) == (1, 60.0, {"count": 1, "amount": None, "amount_shown_from": 5})  # amount: fewer than K (labelslast20)
        assert set(t["by_item"]) == {"LFT"}
        assert t["by_institution"][B]["money"] == 60.0

        # the CSV export says the same
        r = http.get("/reports/duplicates?_format=csv", headers=auditor)
        assert r.status_code == 200
        _tells_nothing(r.text, secrets)
        assert "涉及受限记录" in r.text and "60.00" in r.text
        # asked for the item itself: the restricted flag is not listed nor counted
        r = http.get("/reports/duplicates?item=CBC", headers=auditor)
        _tells_nothing(r.text.replace('"item":"CBC"', ""), secrets)
        assert (r.json()["rows"], r.json()["totals"]["count"], r.json()["totals"]["by_item"]) == ([], 0, {})
        assert http.get("/reports/duplicates?item=CBC", headers=system).json()["totals"]["count"] == 1

        # the drill-down and a review: as for no flag (labelsmend20)
        assert http.get(f"/reports/duplicates/{cbc_row['id']}", headers=auditor).status_code == 404
        r = http.post(f"/reports/duplicates/{cbc_row['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                      headers=auditor)
        assert r.status_code == 404, r.text

        # the system shown every label still reads it all
        assert "CBC" in http.get("/reports/duplicates?_format=csv", headers=system).text
        assert http.get(f"/reports/duplicates/{cbc_row['id']}", headers=system).json()["flag"]["prior"] == prior


def test_the_deduction_list_keeps_the_amount_and_names_nothing(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system, prior = _county(engine, http)
        auditor = _auditor(engine)
        rows = http.get("/reports/duplicates", headers=system).json()["rows"]
        for row in rows:
            r = http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "属实"},
                          headers=system)
            assert r.status_code == 200, r.text
        cbc_row = next(r for r in rows if r["item"] == "CBC")
        secrets = ["CBC", prior, cbc_row["result"], cbc_row["order"], *([cbc_row["item_name"]] if cbc_row["item_name"] else [])]
        q = {"institution": B, "month": "2026-03"}

        r = http.get("/reports/deductions", params={**q, "_format": "csv"}, headers=auditor)
        assert r.status_code == 200, r.text
        _tells_nothing(r.text, secrets)
        lines = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
        # labelsmend20: the line is left out; the total of those listed, then what was left out
        assert "涉及受限记录" in lines[-1][0] and (lines[-2][5], lines[-1][5]) == ("60.00", "")

        # labelslast20: the signed list is whole or not served (a payment document is the same for all)
        r = http.get("/reports/deductions", params=q, headers=auditor)
        assert r.status_code == 403 and "扣款清单须由可查看全部记录的账户生成" in r.text, r.text
        _tells_nothing(r.text, secrets)

        full = http.get("/reports/deductions", params={**q, "_format": "csv"}, headers=system)
        assert "CBC" in full.text and prior in full.text
