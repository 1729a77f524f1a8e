"""evidence33: the prior shown beside a repeat is the same analyte (thirty-third round).

A liver panel (肝功能, LFT) of which only some analytes repeat showed the repeat's first entry (the
AST 35) beside the matched prior (an ALT 30): the auditor's evidence compared two analytes. A flag
now carries its evidence pairs -- every repeated analyte's result beside the prior result of the same
analyte -- and the analytes no prior covered, apart from its billed ``result`` (what the deduction
finds the charge line by, unchanged). Real HL7 v2 over ``POST /hl7v2`` into the real store (the demo
site: FNXRMYY and FNZYY pass QC for every item), everything read back over HTTP.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition.reports import BEFORE_PAIRS
from tests.hl7_calls import ER7
from tests.test_labels19_flag_label import CONF
from tests.test_probepay26_windows import LFT, order, result
from tests.test_reports_duplicates import bearer

A, B = "FNXRMYY", "FNZYY"
LOCAL_LFT = "GAN^肝功能^L"  # a local OBR-4 code no map knows: the results are the Observations alone
CBC = "58410-2^CBC panel - Blood by Automated count^LN"
ALT, AST, TBIL = "1742-6^ALT^LN", "1920-8^AST^LN", "1975-2^TBIL^LN"
LOINC = {"ALT": "1742-6", "AST": "1920-8", "TBIL": "1975-2"}


def obx(*results: tuple[str, str], when: str = "20260312100000+0800") -> str:
    """OBX segments of (code, value), each observed ``when`` (the builders append the last one's OBX-14)."""
    return "\n".join(f"OBX|{n}|NM|{code}||{value}|U/L|||||{{s}}" + (f"|||{when}" if n < len(results) else "")
                     for n, (code, value) in enumerate(results, 1))


@pytest.fixture
def http(engine: Any) -> TestClient:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
        yield client


def send(http: TestClient, message: str) -> str:
    r = http.post("/hl7v2", content=message.replace("\n", "\r").encode(), headers={"Content-Type": ER7})
    assert r.status_code == 200 and "MSA|AA" in r.text, r.text
    return r.text


def panel_repeat(http: TestClient, prior: tuple[tuple[str, str], ...], repeat: tuple[tuple[str, str], ...],
                 code: str = LOCAL_LFT, prior_code: str | None = None) -> None:
    """FNXRMYY's liver panel of 2026-03-10 (``prior``), FNZYY's order of 2026-03-12 and its result (``repeat``)."""
    send(http, result(A, "A1", prior_code or code, "20260310090000+0800", obx=obx(*prior, when="20260310090000+0800")))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", code, "20260312100000+0800", obx=obx(*repeat)))


def the_flag(engine: Any, http: TestClient) -> dict[str, Any]:
    rows = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
    assert len(rows) == 1, rows
    return rows[0]


def evidence(engine: Any, http: TestClient, flag_id: str) -> dict[str, Any]:
    # an auditor who may read the results themselves (the token of the report alone reads them as null)
    r = http.get(f"/reports/duplicates/{flag_id}", headers=bearer(engine, "system/DetectedIssue.rus system/*.rs"))
    assert r.status_code == 200, r.text
    return r.json()


def loinc(resource: dict[str, Any]) -> str:
    return next(c["code"] for c in resource["code"]["coding"] if c.get("system") == "http://loinc.org")


def value(resource: dict[str, Any]) -> str:
    return str(resource["valueQuantity"]["value"])


def test_the_prior_beside_a_partial_repeat_is_the_same_analyte(engine: Any, http: TestClient) -> None:
    """The case pages32 saw: the prior test had AST only (30), the repeat ALT (88) and AST (35). The
    flag's billed result is still the repeat's first entry (its ALT 88: the ids are fixed by the
    messages); the evidence pairs the repeat's AST with the prior AST."""
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    assert row["analytes"] == "AST" and row["partial"] is True
    ev = evidence(engine, http, row["id"])
    # the two whole results are what the old evidence showed: ALT 88 beside AST 30, two analytes
    assert (loinc(ev["resultResource"]), value(ev["resultResource"])) == (LOINC["ALT"], "88")
    assert (loinc(ev["priorResource"]), value(ev["priorResource"])) == (LOINC["AST"], "30")
    [pair] = ev["pairs"]  # the pair is one analyte
    assert pair["analyte"] == "AST" and pair["analyte_name"] == "天门冬氨酸氨基转移酶"
    assert (loinc(pair["resultResource"]), value(pair["resultResource"])) == (LOINC["AST"], "35")
    assert (loinc(pair["priorResource"]), value(pair["priorResource"])) == (LOINC["AST"], "30")
    assert "result_panel" not in pair and "prior_panel" not in pair
    assert [a["analyte"] for a in ev["unpaired"]] == ["ALT"]
    assert [a["analyte"] for a in ev["notDone"]] == ["TBIL", "ALB", "ALP", "GGT"]
    assert ev["pairsSource"] == "recorded"
    assert row["pairs"] == [{k: pair[k] for k in ("analyte", "result", "prior")}] and row["unpaired"] == ["ALT"]
    # the billed result is unchanged: the first of the repeat's entries (report first, then by reference)
    entries = [d["_id"] for d in engine.recognition.index.coll.find({"inst": B})]
    assert row["result"] == min(entries) and row["result"] != pair["result"]


def test_the_reverse_pairs_alt_with_alt(engine: Any, http: TestClient) -> None:
    panel_repeat(http, prior=((ALT, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    ev = evidence(engine, http, row["id"])
    [pair] = ev["pairs"]
    assert pair["analyte"] == "ALT" and pair["result"] == row["result"]  # here the billed result is the pair's
    assert [loinc(pair["resultResource"]), loinc(pair["priorResource"])] == [LOINC["ALT"]] * 2
    assert (value(pair["resultResource"]), value(pair["priorResource"])) == ("88", "30")
    assert [a["analyte"] for a in ev["unpaired"]] == ["AST"]


def test_every_overlapping_analyte_is_paired_not_only_the_first(engine: Any, http: TestClient) -> None:
    """Reports coded as the panel (a DiagnosticReport each side): ALT and AST repeat, TBIL is new."""
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35"), (TBIL, "12")), code=LFT)
    row = the_flag(engine, http)
    assert row["result"].startswith("DiagnosticReport/") and row["prior_result"].startswith("DiagnosticReport/")
    ev = evidence(engine, http, row["id"])
    got = {p["analyte"]: (loinc(p["resultResource"]), value(p["resultResource"]),
                          loinc(p["priorResource"]), value(p["priorResource"])) for p in ev["pairs"]}
    assert got == {"ALT": (LOINC["ALT"], "88", LOINC["ALT"], "30"), "AST": (LOINC["AST"], "35", LOINC["AST"], "28")}
    assert [a["analyte"] for a in ev["unpaired"]] == ["TBIL"]
    # the DetectedIssue says the same to a payer: one analytePair a repeated analyte, the new one apart
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    ext = issue["extension"][0]["extension"]
    pairs = {next(x["valueCode"] for x in e["extension"] if x["url"] == "analyte"):
             (next(x["valueReference"]["reference"] for x in e["extension"] if x["url"] == "repeatResult"),
              next(x["valueReference"]["reference"] for x in e["extension"] if x["url"] == "priorResult"))
             for e in ext if e["url"] == "analytePair"}
    assert pairs == {p["analyte"]: (p["result"], p["prior"]) for p in ev["pairs"]}
    assert [e["valueCode"] for e in ext if e["url"] == "unpairedAnalyte"] == ["TBIL"]
    assert {tuple(d["reference"] for d in e["detail"]) for e in issue["evidence"][2:]} == set(pairs.values())
    engine.validator.validate(issue)


def test_a_prior_reported_as_the_whole_panel_is_said_to_be_the_panels_report(engine: Any, http: TestClient) -> None:
    """A prior report coded as the panel whose results name no analyte covers the whole panel: the
    repeated ALT's prior is that report, marked as the panel's report, not an entry of another analyte."""
    panel_repeat(http, prior=(("GPT^谷丙转氨酶^L", "30"),), repeat=((ALT, "88"),), code=LOCAL_LFT, prior_code=LFT)
    row = the_flag(engine, http)
    ev = evidence(engine, http, row["id"])
    [pair] = ev["pairs"]
    assert pair["analyte"] == "ALT" and pair["prior_panel"] is True and pair["prior"] == row["prior_result"]
    assert pair["prior"].startswith("DiagnosticReport/") and loinc(pair["resultResource"]) == LOINC["ALT"]
    assert ev["unpaired"] == []


def test_a_whole_item_is_its_own_pair(engine: Any, http: TestClient) -> None:
    send(http, result(A, "A1", CBC, "20260310090000+0800"))
    send(http, order(B, "B1", CBC, "20260312080000+0800"))
    send(http, result(B, "B1", CBC, "20260312100000+0800"))
    row = the_flag(engine, http)
    assert row["pairs"] == [{"analyte": None, "result": row["result"], "prior": row["prior_result"]}]
    ev = evidence(engine, http, row["id"])
    assert [p["analyte"] for p in ev["pairs"]] == [None] and ev["unpaired"] == [] and ev["notDone"] == []


def test_a_flag_stored_before_the_pairs_still_shows(engine: Any, http: TestClient) -> None:
    """A flag row as the earlier release stored it (no pairs): the evidence pairs it when shown, by
    the decision's rule over the index ("derived"); the lists say it was recorded before the pairs."""
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    recorded = evidence(engine, http, row["id"])
    flags = engine.recognition.flags
    stored = flags.get(row["id"])
    flags.coll.replace({k: v for k, v in stored.items() if k not in ("pairs", "unpaired")})
    old = the_flag(engine, http)
    assert (old["pairs"], old["pairs_source"]) == ([], "before-pairs")
    ev = evidence(engine, http, row["id"])
    assert ev["pairsSource"] == "derived"
    assert [(p["analyte"], p["result"], p["prior"]) for p in ev["pairs"]] == \
        [(p["analyte"], p["result"], p["prior"]) for p in recorded["pairs"]]
    assert ev["unpaired"] == recorded["unpaired"]
    table = list(csv.reader(io.StringIO(http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text.lstrip("\ufeff"))))
    assert table[1][table[0].index("分项对照（复查 ↔ 前次，同一分析项目）")] == BEFORE_PAIRS
    # the next decision of the test stores them again (the repeat's ALT corrected: 88 -> 86)
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800", obx=obx((ALT, "86"), (AST, "35"))))
    assert flags.get(row["id"]).get("pairs") == [{k: p[k] for k in ("analyte", "result", "prior")} for p in recorded["pairs"]]


def test_the_duplicates_csv_lists_every_pair_after_the_older_columns(engine: Any, http: TestClient) -> None:
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35"), (TBIL, "12")), code=LFT)
    row = the_flag(engine, http)
    table = list(csv.reader(io.StringIO(http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text.lstrip("\ufeff"))))
    head, line = table[0], table[1]
    assert head[-3:] == ["复核提示", "分项对照（复查 ↔ 前次，同一分析项目）", "未与前次结果重复的分析项目"]
    cell = line[-2]
    for p in row["pairs"]:
        assert f"：复查 {p['result']} ↔ 前次 {p['prior']}" in cell
    assert cell.startswith("ALT 丙氨酸氨基转移酶：") and "；AST 天门冬氨酸氨基转移酶：" in cell
    assert line[-1] == "TBIL 总胆红素"
    assert line[head.index("复查结果")] == row["result"]  # the billed result's column as it was


def test_a_restricted_result_only_a_pair_cites_withholds_the_flag(engine: Any, http: TestClient) -> None:
    """The pairs name results the flag's own result and prior do not (the prior report's ALT): the
    flag cites them, so one labelled R withholds the flag from an auditor not shown R, as a flag
    citing an R result always was (labelsmend20: not listed, counted as restricted), and its
    DetectedIssue is labelled R (it is labelled as the most confidential record it cites)."""
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35")), code=LFT)
    row = the_flag(engine, http)
    [alt] = [p for p in row["pairs"] if p["analyte"] == "ALT"]
    assert alt["prior"] not in (row["result"], row["prior_result"])  # named by the pair alone
    rid = alt["prior"].split("/", 1)[1]
    obs = {k: v for k, v in http.get(f"/fhir/Observation/{rid}").json().items() if k != "meta"}
    obs["meta"] = {"security": [{"system": CONF, "code": "R"}]}
    assert http.put(f"/fhir/Observation/{rid}", json=obs).status_code == 200
    send(http, result(B, "B1", LFT, "20260312100000+0800", obx=obx((ALT, "86"), (AST, "35"))))  # decided again
    report = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert report["rows"] == [] and report["totals"]["restricted"]["count"] == 1
    assert http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).status_code == 404
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    assert {"system": CONF, "code": "R"} in [{k: s[k] for k in ("system", "code")} for s in issue["meta"]["security"]]


def test_an_old_flag_whose_prior_no_longer_counts_says_it_is_not_paired(engine: Any, http: TestClient) -> None:
    """An old row whose prior test the index no longer holds as recognisable (its entries gone before
    the flag was decided again): nothing is paired, the evidence says so ("before-pairs") and keeps
    the result and prior the flag recorded."""
    panel_repeat(http, prior=((AST, "30"),), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    flags = engine.recognition.flags
    flags.coll.replace({k: v for k, v in flags.get(row["id"]).items() if k not in ("pairs", "unpaired")})
    for d in engine.recognition.index.coll.find({"inst": A}):
        engine.recognition.index.coll.delete(d["_id"])
    ev = evidence(engine, http, row["id"])
    assert (ev["pairsSource"], ev["pairs"], ev["unpaired"], ev["notDone"]) == ("before-pairs", [], [], [])
    assert ev["flag"]["result"] == row["result"] and ev["flag"]["prior"] == row["prior_result"]
    assert ev["resultResource"]["id"] == row["result"].split("/", 1)[1]


def test_an_old_flags_pair_naming_a_restricted_result_is_not_derived(engine: Any, http: TestClient) -> None:
    """A flag stored before the pairs (results as Observations alone: it cites one of each side),
    while the prior's other analyte is labelled R: the pairs derived when shown would name that
    result, which no screen had judged -- for an auditor not shown R nothing is derived
    ("before-pairs"), and the result is not named."""
    panel_repeat(http, prior=((ALT, "30"), (AST, "28")), repeat=((ALT, "88"), (AST, "35")))
    row = the_flag(engine, http)
    [alt] = [p for p in row["pairs"] if p["prior"] != row["prior_result"]]  # named by a pair alone
    rid = alt["prior"].split("/", 1)[1]
    obs = {k: v for k, v in http.get(f"/fhir/Observation/{rid}").json().items() if k != "meta"}
    obs["meta"] = {"security": [{"system": CONF, "code": "R"}]}
    assert http.put(f"/fhir/Observation/{rid}", json=obs).status_code == 200
    # back to what the earlier release stored: the row without pairs, its issue citing its own results alone
    flags = engine.recognition.flags
    flags.coll.replace({k: v for k, v in flags.get(row["id"]).items() if k not in ("pairs", "unpaired")})
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    own = {row["result"], row["prior_result"], row["order"]}
    old = {**{k: v for k, v in issue.items() if k != "meta"}, "evidence": issue["evidence"][:2],
           "implicated": [i for i in issue["implicated"] if i["reference"] in own],
           "extension": [{**e, "extension": [x for x in e["extension"] if x["url"] not in ("analytePair", "unpairedAnalyte")]}
                         for e in issue["extension"]]}
    assert http.put(f"/fhir/DetectedIssue/{row['id']}", json=old).status_code == 200
    assert "security" not in (http.get(f"/fhir/DetectedIssue/{row['id']}").json().get("meta") or {})
    ev = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine, "system/DetectedIssue.rus system/*.rs"))
    assert ev.status_code == 200, ev.text
    assert (ev.json()["pairsSource"], ev.json()["pairs"]) == ("before-pairs", [])
    assert alt["prior"] not in ev.text
