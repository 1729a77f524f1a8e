"""evpage34: the duplicate flag's evidence finished (thirty-fourth round).

- An old flag (its row stored without ``pairs``, as releases before the thirty-third round stored it)
  is paired when shown by ``pairs.derive``. It had read the order without its time, so a result of
  the prior's day taken AFTER the order was placed was offered as the prior -- which the live
  decision never does (``decision.assess``: after-order). It now reads the test as the decision does
  (``Repeats.repeat_reading``).
- An analyte whose two sides share no measurement (PT: the repeat in seconds, the prior as an INR)
  was one pair, seconds beside INR; it is now marked ``unlike`` (DetectedIssue ``unlikeAnalyte``), its
  two sides shown, not compared.
- The evidence API gives every other result of a paired analyte (``resultAlso`` / ``priorAlso``) read
  as the caller, with the institution that performed each side, for the page to draw.

Real HL7 v2 over ``POST /hl7v2`` into the real store (the demo site: FNXRMYY and FNZYY pass QC for
every item), everything read back over HTTP. Set-ups are evidence33's (tests/test_evidence33_pairs.py).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.recognition.pairs import cited
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, TBIL, A, B, evidence, http, send  # noqa: F401 (``http``: the fixture)
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer

PT_S, PT_INR = "5902-2^PT^LN", "6301-6^INR^LN"
COAG_LOCAL = "PTX^凝血^L"  # a local OBR-4 code: the results are the Observations alone


def timed(*rows: tuple[str, ...]) -> str:
    """OBX segments of (code, value, observed at[, unit: U/L]); the result builder appends the LAST one's
    OBX-14 (its ``when``)."""
    def unit(row: tuple[str, ...]) -> str:  # braces doubled: the builder fills ``{s}`` by str.format
        return (row[3] if len(row) > 3 else "U/L").replace("{", "{{").replace("}", "}}")
    return "\n".join(f"OBX|{n}|NM|{row[0]}||{row[1]}|{unit(row)}|||||{{s}}"
                     + (f"|||{row[2]}" if n < len(rows) else "") for n, row in enumerate(rows, 1))


def flag_of(engine: Any, http: TestClient, item: str = "LFT") -> dict[str, Any]:  # noqa: F811
    rows = [r for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"] if r["item"] == item]
    assert len(rows) == 1, rows
    return rows[0]


def index_ref(engine: Any, inst: str, analyte: str, value: str, http: TestClient) -> str:  # noqa: F811
    """The index entry of ``inst``'s ``analyte`` result whose value is ``value`` (read back over HTTP)."""
    for d in engine.recognition.index.coll.find({"inst": inst}):
        if analyte in (d.get("analytes") or ()) and d["_id"].startswith("Observation/"):
            obs = http.get(f"/fhir/{d['_id']}").json()
            if str(obs["valueQuantity"]["value"]) == value:
                return d["_id"]
    raise AssertionError(f"no {analyte} {value} at {inst}")


# --- an old flag's prior is what the decision could have used: taken before the order ----------------

DATA = Path(__file__).parent / "data" / "evpage34"
# the flag rows the release before the pairs (commit fbe2e7c4) stored for feed.hl7 (tests/data/evpage34/README.md)
OLD_ROWS = {r["item"]: r for r in json.loads((DATA / "old-flags.json").read_text("utf-8"))}


def feed(http: TestClient) -> None:  # noqa: F811
    """tests/data/evpage34/feed.hl7, the bytes the old release was sent: FNXRMYY's liver panel of 08:00
    (ALT 30, AST 28, results as Observations alone) and its ALT 31 + TBIL 12 of 09:30; FNZYY's order of
    09:00 and its report of 10:00 (ALT 88, AST 35, TBIL 14); a PT measured as an INR at FNXRMYY, in
    seconds at FNZYY."""
    for message in (DATA / "feed.hl7").read_text("utf-8").strip().split("\n\n"):
        send(http, message)


def test_an_old_flag_is_never_paired_with_a_prior_taken_after_the_order(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The flag row as the release before the pairs stored it (old-flags.json, made by that release from
    the same bytes). The decision pairs the repeat with the 08:00 results only -- 09:30 is after the
    order of 09:00, though before the repeat's own result at 10:00, so it is no prior -- and TBIL is new.
    Shown, the old row is paired exactly so; before the fix ``derive`` read the order without its time
    and offered the 09:30 results as the prior (a TBIL "pair" and the ALT 31)."""
    feed(http)
    today = flag_of(engine, http)
    assert today["item"] == "LFT"
    late = {index_ref(engine, A, "ALT", "31", http), index_ref(engine, A, "TBIL", "12", http)}
    recorded = evidence(engine, http, today["id"])
    assert recorded["pairsSource"] == "recorded"
    assert [p["analyte"] for p in recorded["pairs"]] == ["ALT", "AST"]
    assert [u["analyte"] for u in recorded["unpaired"]] == ["TBIL"]
    assert not late & {r for p in recorded["pairs"] for r in cited(p)}

    old = OLD_ROWS["LFT"]
    assert old["_id"] == today["id"] and "pairs" not in old
    # what the old release decided and billed is what today's decision stores (money unchanged)
    stored = engine.recognition.flags.get(today["id"])
    for key in ("status", "price", "price_source", "result", "prior", "order", "analytes", "partial", "prior_day"):
        assert stored[key] == old[key], key
    engine.recognition.flags.coll.replace(old)
    ev = evidence(engine, http, today["id"])
    assert ev["pairsSource"] == "derived"
    assert [u["analyte"] for u in ev["unpaired"]] == ["TBIL"]
    assert [{k: p.get(k) for k in ("analyte", "result", "prior", "result_also", "prior_also")} for p in ev["pairs"]] == \
        [{k: p.get(k) for k in ("analyte", "result", "prior", "result_also", "prior_also")} for p in recorded["pairs"]]
    assert not late & {r for p in ev["pairs"] for r in cited(p)}, "a result taken after the order was offered as the prior"
    assert {p["priorResource"]["valueQuantity"]["value"] for p in ev["pairs"]} == {30, 28}


# --- like with like: an analyte measured differently on each side is not a pair ----------------------

def coag_unlike(http: TestClient) -> None:  # noqa: F811
    """FNXRMYY's PT of 2026-03-10 as an INR alone; FNZYY's PT order and result of 2026-03-12 in seconds alone."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800", obx=timed((PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800", obx=timed((PT_S, "12.5", "", "s"))))


def test_an_analyte_measured_differently_on_each_side_is_marked_unlike(engine: Any, http: TestClient) -> None:  # noqa: F811
    from fhir.resources.R4B.detectedissue import DetectedIssue

    coag_unlike(http)
    row = flag_of(engine, http, "COAG")
    seconds, inr = index_ref(engine, B, "PT", "12.5", http), index_ref(engine, A, "PT", "1.02", http)
    assert row["analytes"] == "PT"  # what was repeated, and so what is priced, is decided apart (unchanged)
    [pt] = row["pairs"]
    assert pt == {"analyte": "PT", "result": seconds, "prior": inr, "unlike": True,
                  "result_measure": "5902-2", "prior_measure": "6301-6"}
    # the DetectedIssue: an unlikeAnalyte, no analytePair saying "the prior result of the same analyte"
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    ext = issue["extension"][0]["extension"]
    assert [e["url"] for e in ext if e["url"] in ("analytePair", "unlikeAnalyte")] == ["unlikeAnalyte"]
    [unlike] = [e for e in ext if e["url"] == "unlikeAnalyte"]
    parts = {x["url"]: x for x in unlike["extension"]}
    assert parts["repeatResult"]["valueReference"]["reference"] == seconds
    assert parts["priorResult"]["valueReference"]["reference"] == inr
    assert (parts["repeatMeasure"]["valueCoding"]["code"], parts["priorMeasure"]["valueCoding"]["code"]) == ("5902-2", "6301-6")
    said = [e["code"][0]["text"] for e in issue["evidence"] if e["code"][0]["text"].startswith("PT")]
    assert said == ["PT: the repeat (5902-2) and the prior (6301-6) share no measurement: not compared"]
    assert {seconds, inr} <= {i["reference"] for i in issue["implicated"]}
    DetectedIssue.model_validate(issue)
    engine.validator.validate(issue)
    # the CSV says it, and does not write the arrow of a comparison
    table = list(csv.reader(io.StringIO(http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text.lstrip("\ufeff"))))
    cell = table[1][table[0].index("分项对照（复查 ↔ 前次，同一分析项目）")]
    assert "两次测量指标不同，未作对照" in cell and "↔" not in cell and seconds in cell and inr in cell
    # the evidence API: both sides with what each measured, and where each was performed
    ev = evidence(engine, http, row["id"])
    [p] = ev["pairs"]
    assert p["unlike"] and p["resultResource"]["valueQuantity"]["value"] == 12.5
    assert p["priorResource"]["valueQuantity"]["value"] == 1.02
    assert (p["resultInstitution"], p["priorInstitution"]) == (B, A)


def test_an_old_flag_measured_differently_is_derived_unlike(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The PT flag as the release before the pairs stored it (old-flags.json): shown, it is marked
    unlike, as today's decision records it, and its money and billed result are the old release's."""
    feed(http)
    today = flag_of(engine, http, "COAG")
    [pt] = today["pairs"]
    assert pt["unlike"] is True
    old = OLD_ROWS["COAG"]
    stored = engine.recognition.flags.get(today["id"])
    for key in ("status", "price", "price_source", "result", "prior", "analytes", "partial"):
        assert stored[key] == old[key], key
    engine.recognition.flags.coll.replace(old)
    ev = evidence(engine, http, today["id"])
    assert ev["pairsSource"] == "derived"
    assert [{k: q.get(k) for k in pt} for q in ev["pairs"]] == [pt]


def test_a_shared_measurement_is_still_paired_and_the_other_cited(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The prior has seconds and INR, the repeat seconds alone: one pair, seconds beside seconds, the
    prior's INR named beside it (not marked unlike: something was alike)."""
    send(http, result(A, "AP", COAG_LOCAL, "20260310090000+0800",
                      obx=timed((PT_S, "12.1", "20260310090000+0800", "s"), (PT_INR, "1.02", "", "{INR}"))))
    send(http, order(B, "BP", PT_S, "20260312080000+0800"))
    send(http, result(B, "BP", COAG_LOCAL, "20260312100000+0800", obx=timed((PT_S, "12.5", "", "s"))))
    row = flag_of(engine, http, "COAG")
    [pt] = row["pairs"]
    assert "unlike" not in pt and pt["measure"] == "5902-2"
    assert pt["prior"] == index_ref(engine, A, "PT", "12.1", http)
    assert pt["prior_also"] == [index_ref(engine, A, "PT", "1.02", http)]


# --- every result of the analyte, with time and institution, read as the caller -----------------------

def test_the_evidence_gives_every_other_result_with_its_time_and_institution(engine: Any, http: TestClient) -> None:  # noqa: F811
    """The repeat ran ALT twice (88 at 10:00, 90 at 11:00); the prior had ALT 30 and AST 28. The ALT pair
    shows one of the repeat's, and ``resultAlso`` the other -- its resource, and where it was performed.
    A reader not allowed the Observations gets neither (null resource, no institution)."""
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=timed((ALT, "30", "20260310090000+0800"), (AST, "28", "20260310090000+0800"))))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, "20260312100000+0800",
                      obx=timed((ALT, "90", "20260312110000+0800"), (AST, "35", "20260312100000+0800"), (ALT, "88", ""))))
    row = flag_of(engine, http)
    ev = evidence(engine, http, row["id"])
    [alt] = [p for p in ev["pairs"] if p["analyte"] == "ALT"]
    shown = [alt["resultResource"], *(o["resource"] for o in alt["resultAlso"])]
    assert sorted(r["valueQuantity"]["value"] for r in shown) == [88, 90]
    assert {r["effectiveDateTime"][:19] for r in shown} == {"2026-03-12T10:00:00", "2026-03-12T11:00:00"}
    assert [o["institution"] for o in alt["resultAlso"]] == [B] and alt["resultInstitution"] == B
    assert (alt["priorInstitution"], alt["priorAlso"]) == (A, [])
    assert [o["reference"] for o in alt["resultAlso"]] == alt["result_also"]
    # the billed result is one of the repeat's entries (Observations alone): named by the flag, unchanged
    assert row["result"] in {r for p in ev["pairs"] for r in cited(p)}
    # read as the caller: the report's own token reads no Observation, and learns no institution of one
    blind = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).json()
    [alt] = [p for p in blind["pairs"] if p["analyte"] == "ALT"]
    assert alt["resultResource"] is None and alt["resultInstitution"] is None
    assert [(o["resource"], o["institution"]) for o in alt["resultAlso"]] == [(None, None)]
