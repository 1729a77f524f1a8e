"""Names where codes show: the auditors' CSV exports and the bureau's code, from the one words owner.

An auditor signed in at the insurance bureau (YBJ) saw the bare code on the pages: the bureau is no
member institution, so institutions.yaml names it nowhere; the words file now does
(``places``). The duplicates report and the deduction list, opened in Excel, had English column
headers and raw codes (``justified``, ``FNZYY``, ``R03``, ``community``, ``catalogue``): the headers are
now Chinese and each code has its name beside it, the code kept in its own column for a machine,
all from the same words ``/ui/session`` gives the pages; UTF-8 with a BOM so Excel reads the
Chinese. Real HTTP through FastAPI, a staff member signed in with password and code.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_recognition_world import B
from tests.test_reports_duplicates import bearer, county  # noqa: F401  (the flags fixture)
from tests.test_staff_signin import PASSWORD, add_staff, clock, rfc6238, sign_in  # noqa: F401


def test_the_bureau_is_named_and_the_csv_speaks_chinese(
        engine: Any, settings: Any, http: TestClient, clock: Any, county: Any,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    secret = add_staff(monkeypatch, capsys, settings, "wang.li", "auditor", "王丽", institution="YBJ")
    assert sign_in(http, "wang.li", PASSWORD, rfc6238(secret, clock.now)).status_code == 303
    me = http.get("/ui/session").json()
    assert me["institution"] == "YBJ" and me["places"]["YBJ"] == "阜宁县医疗保障局"
    assert me["places"][B] == engine.site.institutions[B].name  # the members still from institutions.yaml

    res = http.get("/reports/duplicates?_format=csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert res.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"))))
    flagged = [r for r in rows if r.get("状态代码") == "flagged"]
    [justified] = [r for r in rows if r.get("状态代码") == "justified"]
    assert len(flagged) == 2 and all(r["状态"] == me["statuses"]["flagged"][0] for r in flagged)
    assert (justified["状态"], justified["复查理由代码"], justified["复查理由"]) == (
        "有理由复查", "R03", engine.recognition.rules.reasons["R03"].display)
    assert (justified["机构代码"], justified["机构"]) == (B, engine.site.institutions[B].name)
    assert (justified["不予支付范围代码"], justified["不予支付范围"]) == ("community", "医共体内")
    assert (justified["金额来源代码"], justified["金额来源"]) == ("catalogue", "价格目录")
    assert {r["项目名称"] for r in flagged} == {"血常规", "肝功能"}
    totals = [line for line in csv.reader(io.StringIO(res.content.decode("utf-8-sig"))) if line]
    assert ["按机构", B, engine.site.institutions[B].name, "3", "80.00"] in totals


def test_the_deduction_list_csv_speaks_chinese(engine: Any, http: TestClient, county: Any) -> None:  # noqa: F811
    flags = county["http"].get("/reports/duplicates?status=flagged", headers=bearer(engine)).json()["rows"]
    auditor = bearer(engine, "system/DetectedIssue.rus system/ChargeItem.rs system/Encounter.rs")
    for row in flags:
        assert county["http"].post(f"/reports/duplicates/{row['id']}/review", headers=auditor,
                                   json={"decision": "upheld", "reason": "无复查理由"}).status_code == 200
    res = county["http"].get(f"/reports/deductions?institution={B}&month=2026-03&_format=csv", headers=auditor)
    assert res.status_code == 200, res.text
    assert res.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
    body = [dict(zip(table[0], r, strict=True)) for r in table[1:] if r and r[0] != "合计"]
    assert table[0][:4] == ["清单编号", "机构代码", "机构", "月份"]
    assert {(r["项目代码"], r["扣款金额"], r["金额来源代码"], r["金额来源"]) for r in body} == {
        ("CBC", "20.00", "catalogue", "价格目录"), ("LFT", "60.00", "catalogue", "价格目录")}
    assert all((r["机构代码"], r["机构"]) == (B, engine.site.institutions[B].name) for r in body)
    assert table[-1][:3] == ["合计", B, engine.site.institutions[B].name]
