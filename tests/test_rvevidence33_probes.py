"""rvevidence33: probes of evidence33's analyte pairs (real HL7 v2 through ``POST /hl7v2``, the
real store, everything read back over HTTP). Reuses evidence33's own set-up (tests/test_evidence33_pairs.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_evidence33_pairs import (
    ALT,
    AST,
    LFT,
    LOCAL_LFT,
    A,
    B,
    evidence,
    loinc,
    obx,
    send,
    the_flag,
    value,
)
from tests.test_labels19_flag_label import CONF
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer

PRIOR_AT = "20260310090000+0800"
REPEAT_AT = "20260312100000+0800"


@pytest.fixture
def http(http: TestClient, engine: Any) -> TestClient:  # noqa: F811 (conftest's, with a LIS's token, as evidence33's)
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
    return http


def lines(*rows: tuple[str, str, str], when: str) -> str:
    """OBX segments (code, value, OBX-11 status) each observed ``when``; the builder adds the last one's OBX-14."""
    return "\n".join(f"OBX|{n}|NM|{code}||{v}|U/L|||||{st}" + (f"|||{when}" if n < len(rows) else "")
                     for n, (code, v, st) in enumerate(rows, 1))


def pair_ext(issue: dict[str, Any]) -> dict[str, tuple[str, str]]:
    ext = issue["extension"][0]["extension"]
    return {next(x["valueCode"] for x in e["extension"] if x["url"] == "analyte"):
            (next(x["valueReference"]["reference"] for x in e["extension"] if x["url"] == "repeatResult"),
             next(x["valueReference"]["reference"] for x in e["extension"] if x["url"] == "priorResult"))
            for e in ext if e["url"] == "analytePair"}


def base(http: TestClient, prior_code: str = LOCAL_LFT, code: str = LOCAL_LFT) -> None:
    send(http, result(A, "A1", prior_code, PRIOR_AT, obx=lines((ALT, "30", "F"), (AST, "28", "F"), when=PRIOR_AT)))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", code, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))


# --- FHIR R4 validity -------------------------------------------------------------------------------

@pytest.mark.parametrize("prior_code", [LOCAL_LFT, LFT], ids=["observations", "report"])
def test_the_flags_detectedissue_with_pairs_parses_as_r4(engine: Any, http: TestClient, prior_code: str) -> None:
    """The DetectedIssue with analytePair / unpairedAnalyte / wholePanel evidence is R4 (fhir.resources'
    R4B model, R4's DetectedIssue unchanged there) and the engine's own validator accepts it."""
    from fhir.resources.R4B.detectedissue import DetectedIssue

    send(http, result(A, "A1", prior_code, PRIOR_AT, obx=lines(("GPT^谷丙转氨酶^L", "30", "F"), when=PRIOR_AT)
                      if prior_code == LFT else lines((AST, "28", "F"), when=PRIOR_AT)))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    row = the_flag(engine, http)
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    assert pair_ext(issue), issue
    DetectedIssue.model_validate(issue)
    engine.validator.validate(issue)
    # every reference a pair names is a stored result of the flagged person
    for rep, pri in pair_ext(issue).values():
        for ref in (rep, pri):
            assert http.get(f"/fhir/{ref}").json()["resourceType"] == ref.split("/")[0]
            [doc] = [d for d in engine.recognition.index.coll.find({}) if d["_id"] == ref]
            assert doc["person"] == engine.recognition.flags.get(row["id"])["person"], doc


# --- a prior withdrawn or corrected after the flag --------------------------------------------------

def test_a_prior_analyte_withdrawn_after_the_flag_leaves_the_pairs(engine: Any, http: TestClient) -> None:
    """The prior's AST withdrawn (OBX-11 W) after the flag: the flag is decided again and its pairs
    (row, evidence, DetectedIssue) no longer pair the repeat's AST with a result entered in error."""
    base(http)
    row = the_flag(engine, http)
    before = {p["analyte"]: p for p in row["pairs"]}
    assert set(before) == {"ALT", "AST"}
    withdrawn = before["AST"]["prior"]
    send(http, result(A, "A1", LOCAL_LFT, "20260310090000+0800",
                      obx=lines((ALT, "30", "C"), (AST, "28", "W"), when=PRIOR_AT)))
    assert http.get(f"/fhir/{withdrawn}").json()["status"] == "entered-in-error"
    row = the_flag(engine, http)
    assert [p["analyte"] for p in row["pairs"]] == ["ALT"], row["pairs"]
    assert row["unpaired"] == ["AST"]
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    assert withdrawn not in {r for pair in pair_ext(issue).values() for r in pair}
    ev = evidence(engine, http, row["id"])
    assert withdrawn not in [p["prior"] for p in ev["pairs"]]


def test_a_prior_corrected_after_the_flag_shows_its_corrected_value(engine: Any, http: TestClient) -> None:
    base(http)
    row = the_flag(engine, http)
    send(http, result(A, "A1", LOCAL_LFT, PRIOR_AT, obx=lines((ALT, "32", "C"), (AST, "28", "C"), when=PRIOR_AT)))
    again = the_flag(engine, http)
    assert again["pairs"] == row["pairs"]  # the same resources, corrected in place
    ev = evidence(engine, http, row["id"])
    alt = next(p for p in ev["pairs"] if p["analyte"] == "ALT")
    assert (loinc(alt["priorResource"]), value(alt["priorResource"])) == ("1742-6", "32")
    assert alt["priorResource"]["status"] == "corrected"


def test_the_repeats_analyte_withdrawn_leaves_the_pairs(engine: Any, http: TestClient) -> None:
    """The repeat's own AST withdrawn: the flag is decided again on ALT alone."""
    base(http)
    row = the_flag(engine, http)
    ast_repeat = next(p["result"] for p in row["pairs"] if p["analyte"] == "AST")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=lines((ALT, "88", "C"), (AST, "35", "W"), when=REPEAT_AT)))
    row = the_flag(engine, http)
    assert [p["analyte"] for p in row["pairs"]] == ["ALT"] and row["unpaired"] == []
    assert ast_repeat not in {r for p in row["pairs"] for r in (p["result"], p["prior"])}


# --- one analyte measured twice in a report ---------------------------------------------------------

def test_an_analyte_measured_twice_in_the_repeat_names_both_results(engine: Any, http: TestClient) -> None:
    """The repeat report carries ALT twice (88 then a re-run 90): the evidence pair of ALT shows one of
    them; the other is named nowhere in the flag, its row or its DetectedIssue -- an auditor judging the
    repeat cannot see that the analyte was run twice."""
    send(http, result(A, "A1", LOCAL_LFT, PRIOR_AT, obx=lines((ALT, "30", "F"), when=PRIOR_AT)))
    send(http, order(B, "B1", LFT, "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (ALT, "90"))))
    row = the_flag(engine, http)
    entries = sorted(d["_id"] for d in engine.recognition.index.coll.find({"inst": B})
                     if "ALT" in (d.get("analytes") or ()))
    assert len(entries) == 2
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    cited = {i["reference"] for i in issue["implicated"]}
    assert set(entries) <= cited, (entries, cited)


# --- privacy ----------------------------------------------------------------------------------------

def test_a_label_set_later_on_a_result_only_a_pair_cites_withholds_the_flag(engine: Any, http: TestClient) -> None:
    """No decision again: the prior's ALT (cited by its pair alone; the flag's own prior is the AST
    entry... or the other way round) labelled R by a PUT. The flag is withheld from an auditor not
    shown R at once -- the list, the drill-down and the CSV -- because the DetectedIssue cites it."""
    base(http, prior_code=LFT, code=LFT)
    row = the_flag(engine, http)
    only = [p["prior"] for p in row["pairs"] if p["prior"] not in (row["result"], row["prior_result"])]
    assert only, row
    rid = only[0].split("/", 1)[1]
    obs = {k: v for k, v in http.get(f"/fhir/Observation/{rid}").json().items() if k != "meta"}
    obs["meta"] = {"security": [{"system": CONF, "code": "R"}]}
    assert http.put(f"/fhir/Observation/{rid}", json=obs).status_code == 200
    report = http.get("/reports/duplicates", headers=bearer(engine)).json()
    assert report["rows"] == [] and report["totals"]["restricted"]["count"] == 1
    assert http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).status_code == 404
    csv_text = http.get("/reports/duplicates?_format=csv", headers=bearer(engine)).text
    assert rid not in csv_text and row["id"] not in csv_text


def test_an_old_flags_derived_pair_is_read_as_the_caller(engine: Any, http: TestClient) -> None:
    """An old flag (no pairs stored), an auditor whose scopes do not read Observations: the derived
    pairs name the results but their resources are null (not available), as the flag's own are."""
    base(http)
    row = the_flag(engine, http)
    flags = engine.recognition.flags
    flags.coll.replace({k: v for k, v in flags.get(row["id"]).items() if k not in ("pairs", "unpaired")})
    ev = http.get(f"/reports/duplicates/{row['id']}", headers=bearer(engine)).json()
    assert ev["pairsSource"] == "derived" and ev["pairs"]
    assert all(p["resultResource"] is None and p["priorResource"] is None for p in ev["pairs"])
    assert ev["resultResource"] is None and ev["priorResource"] is None


def test_another_persons_result_is_never_paired(engine: Any, http: TestClient) -> None:
    """Two people at A the same day (different PID): only the flagged person's prior entries are paired."""
    send(http, result(A, "A9", LOCAL_LFT, PRIOR_AT, obx=lines((ALT, "31", "F"), (AST, "29", "F"), when=PRIOR_AT),
                      person="110101198504120019", mrn="A-OTHER"))
    base(http)
    row = the_flag(engine, http)
    person = engine.recognition.flags.get(row["id"])["person"]
    other = {d["_id"] for d in engine.recognition.index.coll.find({"inst": A}) if d.get("person") != person}
    assert other
    named = {r for p in row["pairs"] for r in (p["result"], p["prior"])}
    assert named.isdisjoint(other)
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    assert {i["reference"] for i in issue["implicated"]}.isdisjoint(other)


# --- an analyte with two LOINC codes (PT: seconds 5902-2 and INR 6301-6) ------------------------------

PT_S, PT_INR = "5902-2^PT^LN", "6301-6^INR^LN"


def coag(http: TestClient, placer: str) -> None:
    """FNXRMYY's PT of 2026-03-10 as seconds and INR, FNZYY's PT order and result of 2026-03-12 the same."""
    send(http, result(A, "A" + placer, "PTX^凝血^L", PRIOR_AT,
                      obx=lines((PT_S, "12.1", "F"), (PT_INR, "1.02", "F"), when=PRIOR_AT)))
    send(http, order(B, "B" + placer, PT_S, "20260312080000+0800"))
    send(http, result(B, "B" + placer, "PTX^凝血^L", REPEAT_AT, obx=obx((PT_S, "12.5"), (PT_INR, "1.05"))))


# the placers fix the resources' ids (uuid5 of the messages): with these two the id order of the two
# sides differs, so the pair crosses seconds and INR (C1/C2 happen to pair like with like)
@pytest.mark.parametrize("placer", ["C3", "C4"])
def test_pt_seconds_are_paired_with_pt_seconds_not_the_inr(engine: Any, http: TestClient, placer: str) -> None:
    """The coagulation panel's PT is one analyte reported twice, as seconds (5902-2) and as INR
    (6301-6), both sides (items.yaml lists both LOINC codes under PT). The PT pair takes one entry of
    each side by its id, not by what it measures: the repeat's PT 12.5 s is shown (page, evidence API,
    the DetectedIssue's analytePair "the prior result of the same analyte", the CSV) beside the
    prior's INR 1.02 -- the defect evidence33 fixed for ALT beside AST, within one analyte."""
    coag(http, placer)
    row = the_flag(engine, http)
    ev = evidence(engine, http, row["id"])
    pts = [p for p in ev["pairs"] if p["analyte"] == "PT"]
    assert pts, ev["pairs"]
    for p in pts:
        assert loinc(p["resultResource"]) == loinc(p["priorResource"]), \
            (value(p["resultResource"]), value(p["priorResource"]))


def test_both_measurements_of_an_analyte_are_in_the_evidence(engine: Any, http: TestClient) -> None:
    coag(http, "C1")
    row = the_flag(engine, http)
    issue = http.get(f"/fhir/DetectedIssue/{row['id']}").json()
    pt = {d["_id"] for d in engine.recognition.index.coll.find({}) if "PT" in (d.get("analytes") or ())}
    assert len(pt) == 4
    assert pt <= {i["reference"] for i in issue["implicated"]}


# --- an old flag whose test was performed elsewhere (a township's order run by the central lab) -----

def _obs(w: Any, inst: str, patient: str, loinc_code: str, v: str, effective: str, key: str, order: Any = None) -> str:
    from engine.repository.ids import deterministic_id

    oid = deterministic_id(inst, "Observation", key)
    o: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": loinc_code}]},
                         "subject": {"reference": patient}, "effectiveDateTime": effective, "issued": effective,
                         "performer": [{"reference": w.organization(inst)}],
                         "valueQuantity": {"value": float(v), "unit": "U/L"}}
    if order is not None:
        o["basedOn"] = [{"reference": f"ServiceRequest/{order.resource['id']}"}]
    w.repo.update(o)
    return f"Observation/{oid}"


def test_an_old_flag_performed_elsewhere_is_derived_as_it_was_recorded(engine: Any, http: TestClient) -> None:
    from datetime import date, timedelta

    from tests.test_recognition_world import ALICE, World, lft
    from tests.test_recognition_world import A as WA
    from tests.test_recognition_world import B as WB
    from tests.test_recognition_world import C as WC

    day = lambda n: (date.today() - timedelta(days=n)).isoformat()  # noqa: E731
    w = World(engine)
    at_a, at_c = w.patient(WA, ALICE), w.patient(WC, ALICE)
    _obs(w, WA, at_a, "1742-6", "30", day(5) + "T10:00:00+08:00", "pa-alt")
    _obs(w, WA, at_a, "1920-8", "28", day(5) + "T10:00:00+08:00", "pa-ast")
    order_ = w.order(WC, at_c, lft(WC), day(2) + "T08:00:00+08:00")
    _obs(w, WB, at_c, "1742-6", "88", day(2) + "T10:00:00+08:00", "rb-alt", order=order_)
    [flag] = engine.recognition.flags.find({})
    assert flag["inst"] == WC and flag["status"] == "flagged", flag
    recorded = [(p["analyte"], p["result"], p["prior"]) for p in flag["pairs"]]
    assert [a for a, _, _ in recorded] == ["ALT"]
    engine.recognition.flags.coll.replace({k: v for k, v in flag.items() if k not in ("pairs", "unpaired")})
    ev = evidence(engine, http, flag["_id"])
    assert ev["pairsSource"] == "derived", ev["pairsSource"]
    assert [(p["analyte"], p["result"], p["prior"]) for p in ev["pairs"]] == recorded
    assert ev["unpaired"] == []


# --- money: the deduction's billed columns are what the code before the pairs signed ----------------

def test_the_deductions_older_columns_equal_the_list_signed_before_the_pairs(tmp_path: Any) -> None:
    """The store behind tests/data/evidence33/old-deductions.json (its README), rebuilt through HL7 on
    today's code: every column the old list had -- amount, billed result, prior result, policy -- is
    the same, byte for byte, except the list's own id and the order (医嘱), which the old code left blank
    and evid35 links by the order numbers; the pairs are only added after them."""
    import base64
    import csv
    import io
    from pathlib import Path

    from engine import fhirjson
    from engine.api.app import create_app
    from tests.test_probepay26_windows import make_site, open_engine

    old = fhirjson.loads((Path(__file__).parent / "data" / "evidence33" / "old-deductions.json").read_bytes())

    def table(bundle: dict[str, Any]) -> list[list[str]]:
        text = base64.b64decode(bundle["entry"][-1]["resource"]["data"]).decode("utf-8")
        return [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if r]

    for eng in open_engine(tmp_path, make_site(tmp_path)):
        with TestClient(create_app(eng)) as client:
            client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("lis", "system/*.cruds")
            send(client, result("HOSPA", "A1", LOCAL_LFT, PRIOR_AT, obx=obx((ALT, "30"), when=PRIOR_AT)))
            send(client, order("HOSPB", "B1", LFT, "20260312080000+0800"))
            send(client, result("HOSPB", "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
            [flag] = client.get("/reports/duplicates", headers=bearer(eng)).json()["rows"]
            assert client.post(f"/reports/duplicates/{flag['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                               headers=bearer(eng)).status_code == 200
            res = client.get("/reports/deductions", params={"institution": "HOSPB", "month": "2026-03"},
                             headers=bearer(eng, "system/DetectedIssue.rs"))
            assert res.status_code == 200, res.text
            new, before = table(fhirjson.loads(res.content)), table(old)
            # evid35: the repeat's results (a local OBR-4 code: Observations alone) are now linked to the
            # order their report's numbers name -- B1, which the old list left blank (医嘱 "")
            ordered = new[1][before[0].index("医嘱")]
            placed = client.get(f"/fhir/{ordered}").json()
            assert ordered.startswith("ServiceRequest/") and {"B1"} <= {i.get("value") for i in placed["identifier"]}
    assert new[0][:len(before[0])] == before[0]
    width = len(before[0])
    column = before[0].index("医嘱")
    assert before[1][column] == ""
    assert [r[1:column] + r[column + 1:width] for r in new[1:2]] == [r[1:column] + r[column + 1:] for r in before[1:2]]
    assert new[-1] == before[-1]  # the total: 合计 ... 5.00


def test_a_resident_sees_no_other_persons_result_through_a_pair(engine: Any, http: TestClient) -> None:
    """Another resident (her own result at A the same day) reads nothing of the flag or of the
    results its pairs name; the flagged resident does not get the auditor's evidence page."""
    other_id = "110101198504120019"
    send(http, result(A, "A9", LOCAL_LFT, PRIOR_AT, obx=lines((ALT, "31", "F"), (AST, "29", "F"), when=PRIOR_AT),
                      person=other_id, mrn="A-OTHER"))
    base(http)
    row = the_flag(engine, http)
    named = sorted({r for p in row["pairs"] for r in (p["result"], p["prior"])})
    auth = engine.auth

    def resident(number: str) -> dict[str, str]:
        pid = engine.identity.patients_for_number(number)[0]
        token, _ = auth.issue_token(subject="person-" + number[-4:], kind="patient", client_id="phr",
                                    scopes=["patient/*.rs"], patient=pid)
        return {"Authorization": f"Bearer {token}"}

    from tests.test_probepay26_windows import WANG

    other, own = resident(other_id), resident(WANG)
    for ref in [f"DetectedIssue/{row['id']}", *named]:
        got = http.get(f"/fhir/{ref}", headers=other)
        assert got.status_code in (403, 404), (ref, got.status_code)
    listed = http.get("/fhir/DetectedIssue", headers=other)
    assert row["id"] not in listed.text and not any(ref.split("/")[1] in listed.text for ref in named)
    assert http.get(f"/reports/duplicates/{row['id']}", headers=own).status_code == 403
