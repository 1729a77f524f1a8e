"""evpfix34: a pair the thirty-third round stored is checked like with like when it is read.

Round 33 stored an analyte of several measurements whose two sides shared none (the repeat's PT in
seconds, the prior's as an INR) as a plain pair -- {analyte, result, prior[, result_also]}, no
``measure``, no ``unlike`` -- and a flag nothing decides again keeps it. ``pairs.of_flag`` now groups
such a pair again as it is read, so the evidence API, the list (JSON), the duplicates CSV and the
deduction CSV say what today's decision of the same bytes records: ``unlike``, not compared. Money,
the billed result and the signed deduction list are the same either way.

Real HL7 v2 over ``POST /hl7v2`` into the real store, read back over HTTP (TestClient); the row a
round-33 store holds is today's row with its pair as round 33 wrote it (rvevpage34 checked that
release's code on these bytes: the same references, without the marks).
"""

from __future__ import annotations

import base64
import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from engine import fhirjson
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.insurance.deductions import verify_bundle
from tests.test_evidence33_pairs import A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import COAG_LOCAL, PT_INR, PT_S, flag_of, index_ref, timed
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer

PAIRS_COLUMN = "分项对照（复查 ↔ 前次，同一分析项目）"
ROUND33_KEYS = ("analyte", "result", "prior", "result_also", "prior_also")  # what round 33 wrote of a pair


def coag_rerun(http: TestClient) -> None:  # noqa: F811
    """FNXRMYY's PT of 2026-03-10 as an INR; FNZYY's PT of 2026-03-12 in seconds, run twice (12.9, 12.5)."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800", obx=timed((PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800",
                      obx=timed((PT_S, "12.9", "20260312110000+0800", "s"), (PT_S, "12.5", "", "s"))))


def as_round33(engine: Any, flag_id: str) -> dict[str, Any]:
    """The stored row with each pair as round 33 wrote it (no ``measure`` / ``unlike`` / ``*_measure``),
    put in place of today's; returned."""
    stored = engine.recognition.flags.get(flag_id)
    old = {**stored, "pairs": [{k: p[k] for k in ROUND33_KEYS if k in p} for p in stored["pairs"]]}
    engine.recognition.flags.coll.replace(old)
    return old


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _deductions(engine: Any, http: TestClient) -> tuple[bytes, dict[str, Any]]:  # noqa: F811
    res = http.get("/reports/deductions", params={"institution": B, "month": "2026-03"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    return res.content, fhirjson.loads(res.content)


def test_a_round33_pair_is_read_as_todays_decision_records_it_everywhere(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The re-run PT against an INR: today's decision stores one unlike pair (12.5 shown, 12.9 in
    ``result_also``). The same row as round 33 stored it is read back -- evidence API, list, duplicates
    CSV, deduction CSV -- exactly as today's, and the deduction list (amount, charge, billed result,
    total) and its signature are unchanged; reading writes nothing."""
    coag_rerun(http)
    row = flag_of(engine, http, "COAG")
    [pt] = row["pairs"]
    s1, s2 = index_ref(engine, B, "PT", "12.5", http), index_ref(engine, B, "PT", "12.9", http)
    inr = index_ref(engine, A, "PT", "1.02", http)
    assert pt["unlike"] is True and {pt["result"], *pt["result_also"]} == {s1, s2} and pt["prior"] == inr
    assert http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                     headers=bearer(engine)).status_code == 200
    today = {
        "list": http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"],
        "csv": http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text,
        "evidence": evidence(engine, http, row["id"]),
        "deductions": _deductions(engine, http),
    }

    old = as_round33(engine, row["id"])
    [old_pt] = old["pairs"]
    assert "unlike" not in old_pt and "measure" not in old_pt and old_pt["result_also"] == pt["result_also"]
    ev = evidence(engine, http, row["id"])
    assert ev["pairsSource"] == "recorded"
    [p] = ev["pairs"]
    assert {k: p.get(k) for k in pt} == pt  # unlike, with each side's measure: as today records it
    assert ev["pairs"] == today["evidence"]["pairs"]  # resources, institutions, the other results: all the same
    assert p["resultResource"]["valueQuantity"]["unit"] == "s" and p["priorResource"]["valueQuantity"]["unit"] == "{INR}"
    listed = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    assert listed == today["list"]
    text = http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text
    assert text == today["csv"]
    table = _csv(text)
    cell = table[1][table[0].index(PAIRS_COLUMN)]
    assert "两次测量指标不同，未作对照（同一项目，计费不变）" in cell and "↔" not in cell, cell

    # the deduction list: the same CSV (pairs cell and all) and the same List; both signatures verify
    raw, bundle = _deductions(engine, http)
    raw_today, bundle_today = today["deductions"]
    keys = AuditKeys.from_public_pems(KEY_NAME, [k["pem"].encode() for k in http.get("/audit/public-key").json()["keys"]])
    assert verify_bundle(raw, keys) and verify_bundle(raw_today, keys)

    def csv_of(b: dict[str, Any]) -> str:
        return base64.b64decode(b["entry"][-1]["resource"]["data"]).decode("utf-8")

    def list_of(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b["entry"][0]["resource"].items() if k != "date"}

    assert csv_of(bundle) == csv_of(bundle_today)
    assert list_of(bundle) == list_of(bundle_today)
    deduction = _csv(csv_of(bundle))
    [line] = [r for r in deduction[1:] if r and r[0] != "合计" and row["id"] in r]
    head = deduction[0]
    assert line[head.index("复查结果")] == row["result"]  # the billed result, as before
    assert "未作对照（同一项目，计费不变）" in line[head.index(PAIRS_COLUMN)]
    # the money: the line's amount and the list's total are the flag's price, as today's decision priced it
    assert line[head.index("扣款金额")] == f"{row['price']:.2f}" == "15.00"
    total = {x["url"]: x for x in list_of(bundle)["extension"][0]["extension"]}["total"]["valueMoney"]
    assert (str(total["value"]), total["currency"]) == ("15.00", "CNY")
    # reading decided nothing: the round-33 row is as it was put
    assert engine.recognition.flags.get(row["id"]) == old


def test_a_round33_pair_of_a_shared_measurement_stands_as_recorded(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The prior measured seconds and INR, the repeat seconds: something is alike, so the recorded pair
    (even without its ``measure``) is shown as it was stored -- compared, the INR named beside it."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800",
                      obx=timed((PT_S, "12.1", "20260310090000+0800", "s"), (PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800", obx=timed((PT_S, "12.5", "", "s"))))
    row = flag_of(engine, http, "COAG")
    old = as_round33(engine, row["id"])
    [old_pt] = old["pairs"]
    assert old_pt["prior"] == index_ref(engine, A, "PT", "12.1", http)
    [p] = evidence(engine, http, row["id"])["pairs"]
    assert "unlike" not in p and {k: p.get(k) for k in old_pt} == old_pt
    [listed] = flag_of(engine, http, "COAG")["pairs"]
    assert listed == old_pt
    table = _csv(http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text)
    assert "↔" in table[1][table[0].index(PAIRS_COLUMN)]


def test_a_blind_reader_of_a_round33_pair_learns_what_todays_flag_tells_them(engine: Any, http: TestClient) -> None:  # noqa: F811
    """Read with the report's own token (no Observation scope): the round-33 pair is marked unlike with
    the two measurement codes -- what today's stored pair already says to that reader -- and no side,
    other result or institution is given."""
    coag_rerun(http)
    row = flag_of(engine, http, "COAG")
    blind_today = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).json()
    as_round33(engine, row["id"])
    blind = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).json()
    assert blind["pairs"] == blind_today["pairs"]
    [p] = blind["pairs"]
    assert p["unlike"] is True and (p["result_measure"], p["prior_measure"]) == ("5902-2", "6301-6")
    assert (p["resultResource"], p["priorResource"], p["resultInstitution"], p["priorInstitution"]) == (None, None, None, None)
    assert [(o["resource"], o["institution"]) for o in p["resultAlso"]] == [(None, None)]
