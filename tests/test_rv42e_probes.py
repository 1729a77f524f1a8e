"""rv42e: probes of conv42 (unknown coding systems, the unit of a thinner restatement) and prior42 (a correction
keeps the exam's time), through the real path: ``POST /hl7v2`` (one message a request, or one BHS/BTS batch) into
the real store of each backend, read back over ``/fhir``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.module_store import module_eng
from tests.performer_site import ROOT, mllp, served
from tests.test_code37_ris_change import HEAD
from tests.test_conv42_codes import ER7, FIRST, engine, errs, hgb, http, oru, send, written
from tests.test_convleft28_performer import local_result
from tests.test_prior42_exam_time import DRAWN, FIXED, _cbc, _observation, _one, _time_warnings
from tests.test_probepay26_windows import CBC, order
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import T24, _ct
from tests.test_srfix35_order_code import B

__all__ = ["engine", "http", "module_eng"]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


# ---- codes: a known or local system spelled differently is not "unknown" ----------------------------------------


def _codings(engine: Engine, http: TestClient, control: str) -> dict[str, str]:
    (obs,) = written(engine, http, control, "Observation")
    return {c["system"]: c["code"] for c in obs["code"]["coding"]}


@pytest.mark.parametrize("name", ["LN", "ln", "Loinc", "http://loinc.org"])
def test_loinc_spelled_as_table_0396_or_its_uri_is_loinc(engine: Engine, http: TestClient, name: str) -> None:
    """Guard: LOINC under its table 0396 name in any case, or its FHIR URI, is LOINC (no W 103)."""
    control = "E42N" + str(abs(hash(name)) % 10000)
    (ack,) = send(http, oru(control, control, "XCG^血常规^L",
                            f"OBX|1|NM|718-7^Hemoglobin^{name}||130|g/L|||||F|||20261201090000\r"), batch=False)
    assert ack_code_of(ack) == "AA" and not any("is not known" in e for e in errs(ack)), ack
    assert _codings(engine, http, control) == {LOINC: "718-7"}


@pytest.mark.parametrize("name", ["2.16.840.1.113883.6.1", "urn:oid:2.16.840.1.113883.6.1"])
def test_loinc_named_by_its_oid_is_loinc(engine: Engine, http: TestClient, name: str) -> None:
    control = "E42O" + str(len(name))
    (ack,) = send(http, oru(control, control, "58410-2^CBC panel^" + name,
                            f"OBX|1|NM|718-7^Hemoglobin^{name}||130|g/L|||||F|||20261201090000\r"), batch=False)
    assert ack_code_of(ack) == "AA" and not any("is not known" in e for e in errs(ack)), ack
    assert _codings(engine, http, control) == {LOINC: "718-7"}
    (report,) = written(engine, http, control, "DiagnosticReport")
    assert item_for(report, engine.recognition.rules, "FNXRMYY") == "CBC"


def test_a_lower_case_local_l_is_still_the_senders_code_map(engine: Engine, http: TestClient) -> None:
    (ack,) = send(http, oru("E42L1", "E42L1", "XCG^血常规^l",
                            "OBX|1|NM|HGB^血红蛋白^l||130|g/L|||||F|||20261201090000\r"), batch=False)
    assert ack_code_of(ack) == "AA" and not any("is not known" in e for e in errs(ack)), ack
    assert _codings(engine, http, "E42L1") == {"urn:huren:code:FNXRMYY": "HGB", LOINC: "718-7"}
    (report,) = written(engine, http, "E42L1", "DiagnosticReport")
    assert item_for(report, engine.recognition.rules, "FNXRMYY") == "CBC"


def test_a_99zzz_in_lower_case_and_an_unknown_alternate_keep_the_local_map(engine: Engine, http: TestClient) -> None:
    """Guard: ``99lis`` (lower case) is the sender's list; an alternate triplet under an unknown system
    (CWE-4..6) warns at component 6 and does not take the local map away from the primary code."""
    (ack,) = send(http, oru("E42Z1", "E42Z1", "XCG^血常规^99lis",
                            "OBX|1|NM|HGB^血红蛋白^L^H9^Foreign Hb^ZZLAB||130|g/L|||||F|||20261201090000\r"),
                  batch=False)
    assert ack_code_of(ack) == "AA", ack
    assert any("|OBX^1^3^^6|" in e and "'ZZLAB' is not known" in e for e in errs(ack)), errs(ack)
    codings = _codings(engine, http, "E42Z1")
    assert codings["urn:huren:code:FNXRMYY"] == "HGB" and codings[LOINC] == "718-7", codings
    assert codings["urn:huren:unknown-code-system:FNXRMYY:ZZLAB"] == "H9", codings
    (report,) = written(engine, http, "E42Z1", "DiagnosticReport")
    assert item_for(report, engine.recognition.rules, "FNXRMYY") == "CBC"


# ---- the unit of a restatement ------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_restatement_in_another_precision_without_a_unit_keeps_the_unit(
        engine: Engine, http: TestClient, batch: bool) -> None:
    """130 g/L, then the LIS restates it as 130.0 (OBX-6 empty): the same quantity -- the unit stays."""
    later = oru("E42P2", "E42P1", "CBC^血常规^L", "OBX|1|NM|HGB^血红蛋白^L||130.0||||||F|||20261201090000\r",
                msh7="20261201101500+0800")
    acks = send(http, oru("E42P1", "E42P1", "CBC^血常规^L", FIRST), later, batch=batch)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    q = hgb(engine, http, "E42P2")["valueQuantity"]
    assert (q.get("unit"), q.get("code"), q.get("system")) == ("g/L", "g/L", UCUM), q
    assert isinstance(q["value"], float) and q["value"] == 130, q  # the value as restated (conv42b)


@pytest.mark.parametrize("status", ["F", "C"])
def test_a_restatement_with_another_unit_alone_takes_that_unit_whole(
        engine: Engine, http: TestClient, status: str) -> None:
    """Guard: 130 g/L, then 130 mg/dL (F re-send or C): mg/dL, no g/L part left beside it."""
    c1, c2 = f"E42U{status}1", f"E42U{status}2"
    later = oru(c2, c1, "CBC^血常规^L", f"OBX|1|NM|HGB^血红蛋白^L||130|mg/dL^^UCUM|||||{status}|||20261201090000\r",
                msh7="20261201101500+0800")
    acks = send(http, oru(c1, c1, "CBC^血常规^L", FIRST), later, batch=False)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    q = hgb(engine, http, c2)["valueQuantity"]
    assert q["value"] == 130 and q.get("unit") == "mg/dL" and q.get("code") in (None, "mg/dL"), q
    assert q.get("code") != "g/L", q


# ---- prior42: a correction keeps the exam's time --------------------------------------------------------------------



@pytest.fixture(scope="module")
def lis(module_eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv42e", "system/*.cruds")
        yield client


def _post(client: TestClient, message: str) -> str:
    r = client.post("/hl7v2", content=message.replace("\n", "\r").encode(), headers={"Content-Type": ER7})
    assert r.status_code == 200, r.text
    return r.text


def test_a_restamped_correction_in_one_batch_with_its_final_keeps_the_exam_day(module_eng: Engine,
                                                                               lis: TestClient) -> None:
    """Guard (batches as one by one): the F of 2024-03-01 and its C restamped 210 days later in one BHS batch:
    the report and its result stay dated 2024-03-01 08:00, the C's value stored."""
    assert "MSA|AA" in _post(lis, order(B, "E42-B", CBC, DRAWN))
    body = ("BHS|^~\\&|LIS|" + B + "|HUREN|C1|" + FIXED + "\n" + _cbc("E42-B", "E42-FB", DRAWN, "F", "6.1")
            + _cbc("E42-B", "E42-FB", FIXED, "C", "6.3") + "BTS|2\n")
    ack = _post(lis, body)
    assert ack.count("MSA|AA") == 2, ack
    report = _one(lis, "DiagnosticReport", "E42-FB")
    obs = _observation(lis, report)
    assert obs["valueQuantity"]["value"] == 6.3, obs
    assert report["effectiveDateTime"].startswith("2024-03-01T08:00:00"), report
    assert obs["effectiveDateTime"].startswith("2024-03-01T08:00:00"), obs


def test_a_result_first_stated_by_a_restamped_correction_takes_the_exam_day(module_eng: Engine,
                                                                              lis: TestClient) -> None:
    assert "MSA|AA" in _post(lis, order(B, "E42-N", CBC, DRAWN))
    assert "MSA|AA" in _post(lis, _cbc("E42-N", "E42-FN", DRAWN, "F", "6.1"))
    added = _cbc("E42-N", "E42-FN", FIXED, "C", "6.3") + f"OBX|2|NM|HGB^血红蛋白^L||130|g/L|||||C|||{FIXED}\n"
    ack = _post(lis, added)
    assert "MSA|AA" in ack, ack
    report = _one(lis, "DiagnosticReport", "E42-FN")
    assert report["effectiveDateTime"].startswith("2024-03-01T08:00:00"), report
    times = {}
    for ref in report["result"]:
        obs = lis.get(f"/fhir/{ref['reference']}").json()
        times[obs["code"]["coding"][0]["code"]] = obs["effectiveDateTime"][:19]
    assert times == {"WBC": "2024-03-01T08:00:00", "HGB": "2024-03-01T08:00:00"}, times


def test_a_genuine_collection_time_correction_is_refused_and_a_client_put_can_set_it(module_eng: Engine,
                                                                                     lis: TestClient) -> None:
    """What prior42's refusal costs: the F's OBX-14/OBR-7 mistyped 08:00, the C of the same tube stating the true
    07:00 -- not stored, W at OBR-7 and OBX-14 naming both. The operator's remedy prior42 names (a FHIR PUT of
    the whole resource) works for both the report and the result, and a re-send of the same C then says nothing."""
    true = "20240301070000+0800"
    assert "MSA|AA" in _post(lis, order(B, "E42-G", CBC, DRAWN))
    assert "MSA|AA" in _post(lis, _cbc("E42-G", "E42-FG", DRAWN, "F", "6.1", tube="E42-TG"))
    def fix() -> str:  # (MSH-7 the correction's own send time; a new control id each call)
        return _cbc("E42-G", "E42-FG", true, "C", "6.1", tube="E42-TG").replace(
            f"|{true}||ORU", "|20240301120000+0800||ORU")

    ack = _post(lis, fix())
    assert "MSA|AA" in ack and sorted(_time_warnings(ack)) == ["OBR^1^7", "OBX^1^14"], ack
    report = _one(lis, "DiagnosticReport", "E42-FG")
    obs = _observation(lis, report)
    assert report["effectiveDateTime"].startswith("2024-03-01T08:00:00")
    for resource in (report, obs):
        resource["effectiveDateTime"] = "2024-03-01T07:00:00+08:00"
        r = lis.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text
    report = _one(lis, "DiagnosticReport", "E42-FG")
    assert report["effectiveDateTime"].startswith("2024-03-01T07:00:00"), report
    assert _observation(lis, report)["effectiveDateTime"].startswith("2024-03-01T07:00:00")
    again = _post(lis, fix())
    assert "MSA|AA" in again and not _time_warnings(again), again
    report = _one(lis, "DiagnosticReport", "E42-FG")
    assert report["effectiveDateTime"].startswith("2024-03-01T07:00:00"), report


def test_a_correction_over_a_preliminary_moves_report_and_study_alike(module_eng: Engine, lis: TestClient) -> None:
    acc, exam = "E42-ACC", "20240312083000+0800"
    assert "MSA|AA" in _post(lis, _stated("HIS", "E42I1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000"))
    assert "MSA|AA" in _post(lis, _ct("E42I1", acc, sent=T24, obr7=T24, status="P", text="初步：未见异常"))
    ack = _post(lis, _ct("E42I1", acc, sent="20240312100000+0800", obr7=exam, status="C", text="未见异常"))
    assert "MSA|AA" in ack, ack
    (report,) = [e["resource"] for e in lis.get("/fhir/DiagnosticReport", params={"identifier": acc}).json()["entry"]]
    studies = [e["resource"]["started"][:19]
               for e in lis.get("/fhir/ImagingStudy", params={"identifier": acc}).json().get("entry") or ()]
    assert [report["effectiveDateTime"][:19]] == studies, (report["effectiveDateTime"], studies)


def test_an_operators_put_survives_the_lis_retransmitting_the_refused_correction(module_eng: Engine,
                                                                                lis: TestClient) -> None:
    """Guard of the remedy: after the operator's PUT of the true 07:00, the LIS retransmitting the very same C
    (same MSH-10: no ACK reached it) is answered as a duplicate and leaves the operator's time."""
    true = "20240301070000+0800"
    assert "MSA|AA" in _post(lis, order(B, "E42-H", CBC, DRAWN))
    assert "MSA|AA" in _post(lis, _cbc("E42-H", "E42-FH", DRAWN, "F", "6.1"))
    fix = _cbc("E42-H", "E42-FH", true, "C", "6.1")
    assert "MSA|AA" in _post(lis, fix)
    report = _one(lis, "DiagnosticReport", "E42-FH")
    for resource in (report, _observation(lis, report)):
        resource["effectiveDateTime"] = "2024-03-01T07:00:00+08:00"
        assert lis.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource).status_code == 200
    assert "MSA|AA" in _post(lis, fix)
    report = _one(lis, "DiagnosticReport", "E42-FH")
    assert report["effectiveDateTime"].startswith("2024-03-01T07:00:00"), report
    assert _observation(lis, report)["effectiveDateTime"].startswith("2024-03-01T07:00:00")


def test_a_site_can_declare_a_senders_non_99_local_list(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = (ROOT / "mappings" / "hl7v2" / "senders.yaml").read_text("utf-8")
    (site / "hl7v2" / "senders.yaml").write_text(
        shipped.replace("local_code_systems: {}", "local_code_systems: {FNXRMYY: [LIS]}"), "utf-8")
    with served(tmp_path / "var", site) as (eng, _client):
        mllp(eng, local_result("FNXRMYY", "E42S1", 1, "XCG^血常规^LIS"))
        [report] = eng.repository.search("DiagnosticReport", [("_count", "5")]).resources
        assert {c["system"]: c["code"] for c in report["code"]["coding"]}.get("urn:huren:code:FNXRMYY") == "XCG", report
        assert item_for(report, eng.recognition.rules, "FNXRMYY") == "CBC"


def test_a_restamped_correction_flagged_on_its_results_alone_keeps_the_exam_day(module_eng: Engine,
                                                                                lis: TestClient) -> None:
    """Many LISes mark a correction on OBX-11 (C) and leave OBR-25 F: restamped 210 days later, the report (the
    time recognition dates the blood count by) and its result still keep the exam's day."""
    assert "MSA|AA" in _post(lis, order(B, "E42-M", CBC, DRAWN))
    assert "MSA|AA" in _post(lis, _cbc("E42-M", "E42-FM", DRAWN, "F", "6.1"))
    mixed = _cbc("E42-M", "E42-FM", FIXED, "C", "6.3").replace(f"|{FIXED}|||C\n", f"|{FIXED}|||F\n")
    assert f"|{FIXED}|||F\n" in mixed
    ack = _post(lis, mixed)
    assert "MSA|AA" in ack, ack
    report = _one(lis, "DiagnosticReport", "E42-FM")
    obs = _observation(lis, report)
    assert obs["valueQuantity"]["value"] == 6.3, obs
    assert obs["effectiveDateTime"].startswith("2024-03-01T08:00:00"), obs
    assert report["effectiveDateTime"].startswith("2024-03-01T08:00:00"), (report["status"], report)
