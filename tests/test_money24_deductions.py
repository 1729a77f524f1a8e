"""money24: the deduction list's policy sentence says what the payment policy did.

R07 (patient or family asks) and R05 (legal assessment) are, by DOMAIN.md's payment policy, a re-test
*allowed* but not payable by the fund (self-pay). When an auditor upholds such a flag, the list the
hospital receives said "复查理由 R07 不予认可" -- the reason not accepted -- which is not what was
decided: the re-test was allowed and the fund does not pay it. A reason the records contradicted
(R08 with a prior not old enough) is still "不予认可", with the contradiction quoted; a repeat with no
reason names none. Totals: the list's total is the sum of the rows it lists (20.00 + 60.00 + 20.00).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc, lft
from tests.test_reports_duplicates import bearer


def test_self_pay_flags_upheld_say_self_pay_and_the_total_is_the_rows(engine: Any) -> None:
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
    w.report(A, bob_a, cbc(A), "2026-03-10T09:00:00+08:00")
    o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R07",))  # self-pay
    w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
    o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")  # no reason
    w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)
    o3 = w.order(B, bob_b, cbc(B), "2026-03-12T08:00:00+08:00", reasons=("R08",))  # 2 days old: contradicted
    w.report(B, bob_b, cbc(B), "2026-03-12T09:00:00+08:00", order=o3)
    http = TestClient(create_app(engine))

    rows = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    by_reason = {r.get("reason"): r for r in rows}
    assert {(k, r["status"]) for k, r in by_reason.items()} == {("R07", "self_pay"), (None, "flagged"),
                                                                  ("R08", "flagged")}
    for r in rows:
        res = http.post(f"/reports/duplicates/{r['id']}/review",
                        json={"decision": "upheld", "reason": "复核属实"}, headers=bearer(engine))
        assert res.status_code == 200, res.text

    res = http.get("/reports/deductions", params={"institution": B, "month": "2026-03", "_format": "csv"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    table = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
    header, body = table[0], [row for row in table[1:] if row and row[0].startswith("ded-")]
    policy, amount, flag = header.index(header[22]), header.index(header[9]), header.index(header[4])
    sentences = {r[flag]: r[policy] for r in body}
    self_pay, plain, old = (sentences[by_reason[k]["id"]] for k in ("R07", None, "R08"))
    assert "复查理由 R07" in self_pay and "不予认可" not in self_pay, self_pay
    assert "自费" in self_pay and "医保基金不予支付" in self_pay, self_pay
    assert "复查理由" not in plain
    assert "复查理由 R08 不予认可" in old and "与记录不符" in old, old
    total_row = table[len(body) + 2]  # after the rows and a blank line
    assert sum(D(r[amount]) for r in body) == D(total_row[5]) == D("100.00")
