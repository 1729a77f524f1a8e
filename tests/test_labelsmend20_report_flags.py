"""labelsmend20: a duplicate flag citing a record withheld from the reader is not listed to them.

Review of labels20 (rv-labels20): the auditors' lists showed such a flag masked (受限项目) but kept
its id (``dup-`` + sha256(institution|person|item|day): hashing the 22 catalogue items gave the
item back), patient, institution and day (one DiagnosticReport search then found the repeat),
category and window, and an auditor could uphold a flag whose evidence he could not see. And the
screen kept its own list of cited fields (result, prior, order): a flag about a Patient labelled R,
404 on /fhir, was listed with its item. Now the screen asks the one owner
(``ScopedRepository.label_withholds``: the rule the FHIR read applies to the flag's DetectedIssue),
such a flag is in no row, drill-down, CSV line, deduction line or Bundle, its review is refused as
for no flag (404), and every list says how many were left out and the money at stake
(``totals.restricted``, and in Chinese). Asked for one item, such flags are left out of rows and
totals and not counted as restricted (that would name the item).

Same world as tests/test_labels20_report_flags.py (Alice's CBC at A labelled R, B repeats it; her
LFT repeated too, unlabelled): results PUT over real HTTP by the hospitals' system, flags by the
real recognition hook, read over real HTTP with real tokens, the real SQLite store (and mongomock).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_labels19_flag_label import HttpWorld
from tests.test_labels20_report_flags import _auditor, _county
from tests.test_recognition_world import ALICE, A, B, cbc

WORDS = "另有 1 条涉及受限记录的疑似重复未显示，金额不显示（少于 5 条），需具备相应权限的审核员处理"  # labelslast20: K = 5


def _secrets(http: TestClient, system: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The CBC flag as the system reads it, and everything of it the auditor must not read."""
    rows = http.get("/reports/duplicates", headers=system).json()["rows"]
    row = next(r for r in rows if r["item"] == "CBC")
    return row, ["CBC", row["id"], row["result"], row["prior_result"], row["order"], row["day"],
                 *([row["item_name"]] if row["item_name"] else [])]


def _tells_nothing(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, secret


def test_a_flag_citing_a_restricted_record_is_not_listed(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        row, secrets = _secrets(http, system)
        auditor = _auditor(engine)
        r = http.get("/reports/duplicates", headers=auditor)
        assert r.status_code == 200, r.text
        _tells_nothing(r.text, secrets)
        rep = r.json()
        assert [x["item"] for x in rep["rows"]] == ["LFT"]
        t = rep["totals"]
        assert (t["count"], t["money_at_stake"], t["restricted"]) == (1, 60.0, {"count": 1, "amount": None, "amount_shown_from": 5})  # amount: fewer than K (labelslast20)
        assert set(t["by_item"]) == {"LFT"} and t["by_institution"][B]["money"] == 60.0
        assert t["by_status"]["flagged"] == 1
        assert [d["day"] for d in rep["over_time"]] == ["2026-03-05"]

        r = http.get("/reports/duplicates?_format=csv", headers=auditor)
        assert r.status_code == 200
        _tells_nothing(r.text, secrets)
        assert WORDS in r.text

        # neither its evidence nor a review: as for a flag that does not exist
        assert http.get(f"/reports/duplicates/{row['id']}", headers=auditor).status_code == 404
        r = http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "属实"},
                      headers=auditor)
        made_up = http.post("/reports/duplicates/dup-0/review", json={"decision": "upheld", "reason": "属实"},
                            headers=auditor)
        assert (r.status_code, r.text.replace(row["id"], "dup-0")) == (404, made_up.text), r.text
        assert http.get(f"/reports/duplicates/{row['id']}", headers=system).json()["flag"]["status"] == "flagged"

        # asked for the item itself: not listed, not counted, and not said to be restricted
        r = http.get("/reports/duplicates?item=CBC", headers=auditor).json()
        assert (r["rows"], r["totals"]["count"], r["totals"]["restricted"]) == ([], 0, {"count": 0, "amount": 0.0, "amount_shown_from": 5})
        # the system shown every label reads it all
        full = http.get("/reports/duplicates", headers=system).json()["totals"]
        assert (full["count"], full["money_at_stake"], full["restricted"]["count"]) == (2, 80.0, 0)


def test_filtered_reports_add_up_and_never_name_the_item(engine: Any) -> None:
    """Honest totals (the reviewer's probe, re-aimed): per item the auditor's counts add up to the
    whole report, which says what was left out; no filter shows the restricted item."""
    with TestClient(create_app(engine)) as http:
        _county(engine, http)
        auditor = _auditor(engine)
        whole = http.get("/reports/duplicates", headers=auditor).json()["totals"]
        parts, money = 0, 0.0
        for item in ("CBC", "LFT"):
            t = http.get(f"/reports/duplicates?item={item}", headers=auditor).json()["totals"]
            parts += t["count"]
            money += t["money_at_stake"]
        assert (parts, round(money, 2)) == (whole["count"], whole["money_at_stake"])
        # one flag: its amount is not shown (fewer than amount_shown_from; labelslast20)
        assert whole["restricted"] == {"count": 1, "amount": None, "amount_shown_from": 5}
        for q in ("status=flagged", "category=检验", f"institution={B}", "from=2026-03-01&to=2026-03-31"):
            r = http.get(f"/reports/duplicates?{q}", headers=auditor)
            assert r.status_code == 200, (q, r.text)
            assert "CBC" not in r.text and "2026-03-03" not in r.text, q
            assert r.json()["totals"]["restricted"]["count"] == 1, q


def test_a_flag_about_a_restricted_patient_is_screened_as_its_fhir_read_is(engine: Any) -> None:
    """The read withholds a DetectedIssue when any record it references is withheld -- its
    ``patient`` too; labels20's screen looked only at result/prior/order."""
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        w = HttpWorld(engine, http, system)
        alice_a = w.patient(A, ALICE)
        w.label = "R"  # B registers Alice as a restricted patient (a VIP, an STD clinic's)
        alice_b = w.patient(B, ALICE, mrn="B-1")
        w.label = None
        w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
        o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
        rows = http.get("/reports/duplicates", headers=system).json()["rows"]
        assert [r["item"] for r in rows] == ["CBC"], rows
        flag_id = rows[0]["id"]
        auditor = _auditor(engine)
        assert http.get(f"/fhir/DetectedIssue/{flag_id}", headers=auditor).status_code == 404  # withheld on /fhir
        r = http.get("/reports/duplicates", headers=auditor)
        assert r.json()["rows"] == [] and r.json()["totals"]["restricted"]["count"] == 1, r.text
        assert flag_id not in r.text
        assert "CBC" not in http.get("/reports/duplicates?_format=csv", headers=auditor).text
        assert http.get(f"/reports/duplicates/{flag_id}", headers=auditor).status_code == 404


def test_the_deduction_list_leaves_the_line_out_and_says_so(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        cbc_row, secrets = _secrets(http, system)
        rows = http.get("/reports/duplicates", headers=system).json()["rows"]
        for row in rows:
            r = http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "属实"},
                          headers=system)
            assert r.status_code == 200, r.text
        secrets = [s for s in secrets if s != cbc_row["day"]]  # the list's period is the month
        auditor = _auditor(engine)
        q = {"institution": B, "month": "2026-03"}

        r = http.get("/reports/deductions", params={**q, "_format": "csv"}, headers=auditor)
        assert r.status_code == 200, r.text
        _tells_nothing(r.text, secrets)
        lines = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert [x[5] for x in lines[-2:]] == ["60.00", ""], lines[-2:]  # the listed total, then the left out
        assert lines[-1][0] == WORDS

        # labelslast20: the signed list is whole or not served (a payment document is the same for all)
        r = http.get("/reports/deductions", params=q, headers=auditor)
        assert r.status_code == 403 and "扣款清单须由可查看全部记录的账户生成" in r.text, r.text
        _tells_nothing(r.text, secrets)

        full = http.get("/reports/deductions", params={**q, "_format": "csv"}, headers=system)
        assert "CBC" in full.text and "受限" not in full.text


def test_the_report_leaves_it_out_on_mongomock_too(settings: Settings) -> None:
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine, TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        row, secrets = _secrets(http, system)
        auditor = _auditor(engine)
        r = http.get("/reports/duplicates", headers=auditor)
        assert r.status_code == 200, r.text
        _tells_nothing(r.text, secrets)
        t = r.json()["totals"]
        assert (t["count"], t["money_at_stake"], t["restricted"]) == (1, 60.0, {"count": 1, "amount": None, "amount_shown_from": 5})  # amount: fewer than K (labelslast20)
        assert http.get(f"/reports/duplicates/{row['id']}", headers=auditor).status_code == 404
