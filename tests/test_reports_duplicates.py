"""``/reports/duplicates`` (JSON, CSV, filters, totals, recognition rate), drill-down, review, CLI."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc, lft

AUDITOR = "system/DetectedIssue.rus"
EVIDENCE = AUDITOR + " system/DiagnosticReport.rs system/ImagingStudy.rs system/ServiceRequest.rs"


def bearer(engine: Any, scopes: str = AUDITOR, kind: str = "auditor") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("auditor-zhang", scopes, kind=kind)}


@pytest.fixture
def county(engine: Any) -> dict[str, Any]:
    """Two people, hospital A's results, hospital B's repeats: one CBC and one LFT flag at B (80 CNY),
    one justified LFT re-test at B, one CBC recognised (order revoked) and one CBC ordered at A again."""
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
    w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
    w.report(A, bob_a, cbc(A), "2026-03-20T09:00:00+08:00")
    w.report(A, bob_a, lft(A), "2026-03-20T09:00:00+08:00")
    # B repeats Alice's CBC (flag, 20) and LFT (flag, 60)
    o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
    w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
    o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")
    w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)
    # B re-tests Bob's LFT with a reason (justified) and recognises his CBC (order revoked)
    o3 = w.order(B, bob_b, lft(B), "2026-03-22T08:00:00+08:00", reasons=("R03",))
    w.report(B, bob_b, lft(B), "2026-03-22T09:00:00+08:00", order=o3)
    w.order(B, bob_b, cbc(B), "2026-03-22T08:00:00+08:00", placer="REV")
    w.order(B, bob_b, cbc(B), "2026-03-22T08:00:00+08:00", placer="REV", status="revoked")
    return {"http": TestClient(create_app(engine))}


def test_json_report_totals_and_rate(engine: Any, county: dict[str, Any]) -> None:
    res = county["http"].get("/reports/duplicates", headers=bearer(engine))
    assert res.status_code == 200, res.text
    rep = res.json()
    t = rep["totals"]
    assert t["count"] == 3
    assert t["money_at_stake"] == 80.0
    assert t["by_status"]["flagged"] == 2 and t["by_status"]["justified"] == 1
    assert t["by_institution"][B]["money"] == 80.0 and t["by_institution"][B]["count"] == 3
    assert t["by_item"]["CBC"]["money"] == 20.0 and t["by_item"]["LFT"]["money"] == 60.0
    assert rep["recognition_rate"][B] == {"recognisable": 4, "recognised": 1, "retested": 3, "pending": 0, "rate": 0.25}
    assert [r["day"] for r in rep["rows"]] == ["2026-03-22", "2026-03-05", "2026-03-03"]
    assert rep["currency"] == "CNY"


@pytest.mark.parametrize(("query", "count", "money"), [
    ("from=2026-03-04&to=2026-03-31", 2, 60.0),
    ("item=CBC", 1, 20.0),
    ("category=%E6%A3%80%E9%AA%8C", 3, 80.0),  # 检验
    ("category=%E6%A3%80%E6%9F%A5", 0, 0.0),  # 检查
    ("status=justified", 1, 0.0),
    ("institution=FNXRMYY", 0, 0.0),
])
def test_filters(engine: Any, county: dict[str, Any], query: str, count: int, money: float) -> None:
    rep = county["http"].get("/reports/duplicates?" + query, headers=bearer(engine)).json()
    assert (rep["totals"]["count"], rep["totals"]["money_at_stake"]) == (count, money)


def test_csv(engine: Any, county: dict[str, Any]) -> None:
    res = county["http"].get("/reports/duplicates?_format=csv&status=flagged", headers=bearer(engine))
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(res.text.lstrip("\ufeff"))))
    # Chinese headers, each code beside its name (fifteenth round)
    assert rows[0][:5] == ["标记编号", "状态代码", "状态", "复查日期", "机构代码"]
    assert [r[6] for r in rows[1:3]] == ["LFT", "CBC"]
    assert ["合计", "2", "涉及金额", "80.00", "CNY", "自费金额", "0.00"] in rows
    same = county["http"].get("/reports/duplicates?status=flagged", headers={**bearer(engine), "Accept": "text/csv"})
    assert same.text == res.text


def test_bad_filters_are_400(engine: Any, county: dict[str, Any]) -> None:
    for q in ("from=March", "status=maybe", "category=x", "from=2026-03-05&to=2026-03-01", "_format=xml"):
        res = county["http"].get("/reports/duplicates?" + q, headers=bearer(engine))
        assert res.status_code == 400, q
        assert res.json()["resourceType"] == "OperationOutcome"


def test_access(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    assert http.get("/reports/duplicates").status_code == 401
    assert http.get("/reports/duplicates", headers=bearer(engine, "system/Patient.rs", "system")).status_code == 403
    flag = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"][0]["id"]
    read_only = bearer(engine, "system/DetectedIssue.rs")
    res = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": "x"}, headers=read_only)
    assert res.status_code == 403


def test_drill_down_and_review_are_audited(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    rows = http.get("/reports/duplicates?status=flagged&item=CBC", headers=bearer(engine)).json()["rows"]
    flag = rows[0]["id"]
    # the evidence is clinical data: read with the auditor's own scopes, absent without them
    assert http.get(f"/reports/duplicates/{flag}", headers=bearer(engine)).json()["priorResource"] is None
    ev = http.get(f"/reports/duplicates/{flag}", headers=bearer(engine, EVIDENCE)).json()
    assert ev["detectedIssue"]["id"] == flag
    assert ev["priorResource"]["resourceType"] == "DiagnosticReport"
    assert ev["resultResource"]["id"] == ev["flag"]["result"].split("/")[1]
    res = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "upheld", "reason": "no reason on order"},
                    headers=bearer(engine))
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "upheld"
    assert engine.repository.read("DetectedIssue", flag)["status"] == "final"
    rep = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert rep["totals"]["by_status"]["upheld"] == 1 and rep["totals"]["money_at_stake"] == 80.0
    res = http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": "emergency"},
                    headers=bearer(engine))
    assert engine.repository.read("DetectedIssue", flag)["status"] == "cancelled"
    rep = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert rep["totals"]["money_at_stake"] == 60.0
    row = next(r for r in rep["rows"] if r["id"] == flag)
    assert (row["reviewed_by"], row["review_reason"]) == ("auditor:auditor-zhang", "emergency")
    assert http.post("/reports/duplicates/nope/review", json={"decision": "upheld", "reason": "x"},
                     headers=bearer(engine)).status_code == 404
    # every review is an AuditEvent attributed to the auditor
    events = [engine.audit.events(seq, 1)[0] for seq in range(engine.audit.size)]
    reviews = [e for e in events if any(c.get("code") == "review" for c in e.get("subtype") or ())]
    assert len(reviews) == 2
    assert all("auditor-zhang" in orjson.dumps(e).decode() for e in reviews)
    assert all(f"DetectedIssue/{flag}" in orjson.dumps(e).decode() for e in reviews)


def test_cli_prints_the_same_figures(engine: Any, county: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from engine.recognition.cli import run_duplicates

    class Args:
        start, end, institution, item, category, status, format, rows = (
            "2026-03-01", "2026-03-31", None, None, None, None, "text", 50)

    engine.close()  # the CLI opens its own engine on the same data directory
    assert run_duplicates(Args(), engine.settings) == 0
    out = capsys.readouterr().out
    assert "3 flags, CNY 80.00 at stake" in out
    assert "1/4" in out and "25.0%" in out


def test_incremental_tallies_equal_a_rebuild(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    flag = http.get("/reports/duplicates?status=flagged", headers=bearer(engine)).json()["rows"][0]["id"]
    http.post(f"/reports/duplicates/{flag}/review", json={"decision": "overturned", "reason": "x"}, headers=bearer(engine))
    rec = engine.recognition

    def snapshot() -> tuple[list, list]:
        return (sorted((d["_id"], d["count"], d["money"]) for d in rec.flag_days.find({})),
                sorted((d["_id"], d["count"]) for d in rec.check_days.find({})))

    before = snapshot()
    assert before[0] and before[1]
    rec.rebuild_tallies()
    assert snapshot() == before
