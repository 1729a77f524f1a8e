"""evidence33: the signed deduction list with the evidence pairs, and a list signed before them.

The deduction Bundle is the signed export that carries flags (its DetectedIssues and its CSV; the
audit log export carries no flag's evidence). The pairs add columns at the end of its CSV and an
``analytePair`` evidence to each DetectedIssue; ``tests/data/evidence33/old-deductions.json`` is a
list the code before them signed (see the README there), which must still verify offline.
"""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine import cli, fhirjson
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.insurance.deductions import verify_bundle
from tests.test_evidence33_pairs import ALT, AST, B, http, panel_repeat, the_flag  # noqa: F401  (``http``: the fixture)
from tests.test_reports_duplicates import bearer

OLD = Path(__file__).parent / "data" / "evidence33"


def _csv(bundle: dict[str, Any]) -> list[list[str]]:
    text = base64.b64decode(bundle["entry"][-1]["resource"]["data"]).decode("utf-8")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_a_list_signed_before_the_pairs_still_verifies(tmp_path: Path) -> None:
    data = (OLD / "old-deductions.json").read_bytes()
    keys = AuditKeys.from_public_pems(KEY_NAME, [(OLD / "old-deductions-public.pem").read_bytes()])
    assert verify_bundle(data, keys)
    assert cli.main(["deductions", "verify", str(OLD / "old-deductions.json"),
                     "--public-key", str(OLD / "old-deductions-public.pem")]) == 0
    # and it is the old format: no pairs in it (a test of nothing otherwise), one byte changed breaks it
    assert b"analytePair" not in data
    forged = tmp_path / "forged.json"
    forged.write_bytes(data.replace("复核属实".encode(), "复核不实".encode()))
    assert forged.read_bytes() != data
    assert cli.main(["deductions", "verify", str(forged), "--public-key", str(OLD / "old-deductions-public.pem")]) == 1


def test_the_signed_list_carries_the_pairs_after_the_older_columns(engine: Any, http: TestClient) -> None:  # noqa: F811
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    auditor = bearer(engine)
    assert http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                     headers=auditor).status_code == 200
    res = http.get("/reports/deductions", params={"institution": B, "month": "2026-03"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    published = http.get("/audit/public-key").json()["keys"]
    keys = AuditKeys.from_public_pems(KEY_NAME, [k["pem"].encode() for k in published])
    assert verify_bundle(res.content, keys)
    bundle = fhirjson.loads(res.content)
    table = _csv(bundle)
    old_head = _csv(fhirjson.loads((OLD / "old-deductions.json").read_bytes()))[0]
    head = table[0]
    # every older column where it was; the pairs after them
    assert head[:len(old_head)] == old_head
    assert head[len(old_head):] == ["分项对照（复查 ↔ 前次，同一分析项目）", "未与前次结果重复的分析项目"]
    [line] = [r for r in table[1:] if r and r[0] != "合计"]
    [pair] = row["pairs"]
    assert line[head.index("复查结果")] == row["result"] != pair["result"]  # the billed result, as before
    assert line[-2] == f"AST 天门冬氨酸氨基转移酶：复查 {pair['result']} ↔ 前次 {pair['prior']}"
    assert line[-1] == "ALT 丙氨酸氨基转移酶"
    [issue] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    [ext] = [e for e in issue["extension"][0]["extension"] if e["url"] == "analytePair"]
    assert {x["url"]: x.get("valueCode") or x.get("valueReference", {}).get("reference") for x in ext["extension"]} == \
        {"analyte": "AST", "repeatResult": pair["result"], "priorResult": pair["prior"]}
    engine.validator.validate(bundle)
