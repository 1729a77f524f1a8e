"""rv41k: review probes of xofix41's ``settle_reused_filler`` (a report under a filler number whose stored report is
another exam's is keyed apart, W 205 at OBR-3).

Real HL7 v2 through ``POST /hl7v2``, the real store on each backend, read back over ``/fhir``. The RIS's reports
here are imaging reports (OBR-24 ``CT``, OBR-18 the accession: ``adapters.convert.pacs``) -- the path a radiology
accession takes -- unless named otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_codefix36_order_code import _errs
from tests.test_probepay26_windows import CBC, engine, flags, msh, order, pid, reminded
from tests.test_recognition_e2e import Sender
from tests.test_rv40c_probes import _one
from tests.test_rv40d_probes import _stated
from tests.test_srfix35_order_code import B, http, send

__all__ = ["engine", "http", "module_eng"]

HIS = "urn:huren:id:HIS"
T24 = "20240312080000+0800"  # the 2024 exam
T24_LATER = "20241008090000+0800"  # 210 days after it: the radiologist's addendum / corrected final
T26 = "20260312100000+0800"  # the 2026 exam under the reused accession


def _ct(placer: str, acc: str, *, sent: str, obr7: str, status: str, text: str, obr22: str = "") -> str:
    """The RIS's imaging report of head CT: MSH-7 ``sent``, ORC-2/OBR-2 ``<placer>^HIS`` (none when empty), OBR-3
    and OBR-18 the accession ``acc`` (``^RIS``), OBR-7 ``obr7`` (none when empty), OBR-22 ``obr22`` (``sent`` when
    empty), OBR-24 CT, OBR-25 ``status``, the impression ``text``."""
    number = f"{placer}^HIS" if placer else ""
    return (msh(B, "RIS", "ORU^R01^ORU_R01", sent) + pid(B)
            + f"ORC|RE|{number}|{acc}^RIS||CM\n"
            + f"OBR|1|{number}|{acc}^RIS|{HEAD}|||{obr7}|||||||||||{acc}||||{obr22 or sent}||CT|{status}\n"
            + f"OBX|1|TX|IMP^印象^L||{text}||||||{status}\n")


def _w205(ack: str) -> list[list[str]]:
    return [e for e in _errs(ack) if e[2] == "OBR^1^3" and e[3].split("^")[0] == "205"]


def _reports(http: TestClient, acc: str) -> list[dict[str, Any]]:
    """The patient's DiagnosticReports naming the accession ``acc`` (as OBR-3: their FILL identifier)."""
    found = http.get("/fhir/DiagnosticReport", params={"identifier": f"{acc}", "_count": 50}).json()
    out = [e["resource"] for e in found.get("entry") or ()]
    if not out:  # (searched by the value alone where the store keeps the system: read them all of the subject)
        subject = _one_subject(http)
        found = http.get("/fhir/DiagnosticReport", params={"subject": subject, "_count": 200}).json()
        out = [e["resource"] for e in found.get("entry") or ()
               if any(i.get("value") == acc for i in e["resource"].get("identifier") or ())]
    return out


def _one_subject(http: TestClient) -> str:
    found = http.get("/fhir/Patient", params={"identifier": "32092319850412001X"}).json()
    entries = found.get("entry") or ()
    return f"Patient/{entries[0]['resource']['id']}" if entries else ""


def _conclusions(reports: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((str(r.get("status")), str(r.get("conclusion"))) for r in reports)


def _old_exam(http: TestClient, run: str) -> str:
    """2024: the HIS orders head CT ``<run>1``, the RIS reports it under ``<run>-ACC``: 未见异常."""
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7=T24, status="F", text="未见异常"))
    assert _conclusions(_reports(http, acc)) == [("final", "未见异常")]
    return acc


# --- corrections of the old exam, sent 210 days later ---------------------------------------------------------


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_a_corrected_final_210_days_later_restating_the_exam_time_updates_the_old_report(
        http: TestClient, named: str) -> None:
    """Guard (the case xofix41 was built for): the radiologist corrects the 2024 report 210 days later (MSH-7 and
    OBR-22 October 2024, OBR-25 C), restating the exam's OBR-7: the one report, now corrected -- no W, no second."""
    run = f"RV41K-CORR-{named[:2].upper()}"
    acc = _old_exam(http, run)
    ack = send(http, _ct(f"{run}1" if named == "by-placer" else "", acc, sent=T24_LATER, obr7=T24, status="C",
                         text="左侧额叶小片状低密度影"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert _conclusions(_reports(http, acc)) == [("corrected", "左侧额叶小片状低密度影")]


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_an_addendum_without_obr7_210_days_later_updates_the_old_report(http: TestClient, named: str) -> None:
    """Guard: the addendum (OBR-25 C) sent 210 days later carrying no OBR-7: the one report."""
    run = f"RV41K-ADD-{named[:2].upper()}"
    acc = _old_exam(http, run)
    ack = send(http, _ct(f"{run}1" if named == "by-placer" else "", acc, sent=T24_LATER, obr7="", status="C",
                         text="补充：未见异常，建议随访"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert _conclusions(_reports(http, acc)) == [("corrected", "补充：未见异常，建议随访")]


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_a_corrected_final_whose_obr7_is_the_correction_time_updates_the_old_report(
        http: TestClient, named: str) -> None:
    """The RIS stamps OBR-7 with the time of the report it sends (common in county RIS: OBR-7 = 报告时间) and
    corrects the 2024 report 210 days later, OBR-25 C, under the same placer number and accession. A C is by table
    0123 "correction to results" -- a correction of a report already final, never a new exam's first report -- and
    by the placer number it is the very order the stored report is based on. It must update the 2024 report."""
    run = f"RV41K-C7-{named[:2].upper()}"
    acc = _old_exam(http, run)
    ack = send(http, _ct(f"{run}1" if named == "by-placer" else "", acc, sent=T24_LATER, obr7=T24_LATER,
                         status="C", text="左侧额叶小片状低密度影"))
    assert "MSA|AA" in ack, ack
    reports = _reports(http, acc)
    assert not _w205(ack) and _conclusions(reports) == [("corrected", "左侧额叶小片状低密度影")], (ack, reports)


# --- the 2026 exam under the reused accession: its own corrections, replays ---------------------------------------


def _new_exam(http: TestClient, run: str, acc: str, named: str, warned: int = 1) -> str:
    """2026: the HIS orders head CT ``<run>2``; the RIS reports it under the reused accession (``warned`` ERR 205):
    by the placer number, AA; by the accession alone, held by no order but the 2024 one, AE (xofix41c: not told,
    refused -- not filed over the 2024 report, rv41o HIGH 4)."""
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", ""))
    ack = send(http, _ct(f"{run}2" if named == "by-placer" else "", acc, sent=T26, obr7=T26, status="F",
                         text="右侧硬膜下血肿"))
    assert ("MSA|AA" if named == "by-placer" else "MSA|AE") in ack and len(_w205(ack)) == warned, ack
    return ack


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_the_2026_report_replayed_keys_the_same(http: TestClient, named: str) -> None:
    """Guard: the 2026 report re-sent (a replay) is the same report -- two reports under the accession, the
    2024 one untouched."""
    run = f"RV41K-RP-{named[:2].upper()}"
    acc = _old_exam(http, run)
    _new_exam(http, run, acc, named)
    first = sorted(r["id"] for r in _reports(http, acc))
    _new_exam(http, run, acc, named)
    assert sorted(r["id"] for r in _reports(http, acc)) == first
    # (xofix41c: by the accession alone, held by no order but the 2024 one, another order is not told -- refused
    # each time, the 2024 report as it was; the probe had asked for a split by time)
    assert _conclusions(_reports(http, acc)) == ([("final", "右侧硬膜下血肿"), ("final", "未见异常")]
                                                 if named == "by-placer" else [("final", "未见异常")])


@pytest.mark.parametrize(("first", "then"), [("by-placer", "accession-alone"), ("accession-alone", "by-placer")])
def test_the_2026_reports_own_correction_updates_the_2026_report(http: TestClient, first: str, then: str) -> None:
    """The 2026 report filed apart (W 205); a week later the radiologist corrects it (OBR-25 C, the 2026 exam's
    OBR-7 restated), naming the order once by the placer number and once by the accession alone, as RISes do. The
    correction must update the 2026 report: two reports under the accession (2024 final, 2026 corrected).

    xofix41c: where the 2026 report came first by the accession alone and no order but the 2024 one holds the
    accession, nothing told it was another order's (time is no evidence): it is refused (``_new_exam``), so the
    2024 report keeps its text -- the correction by the 2026 placer number is another order's report, filed apart
    (rv41o HIGH 4: filed as the stored report, the 2024 order had carried the 2026 finding)."""
    run = f"RV41K-NC-{first[:2].upper()}"
    acc = _old_exam(http, run)
    _new_exam(http, run, acc, first)
    ack = send(http, _ct(f"{run}2" if then == "by-placer" else "", acc, sent="20260319100000+0800", obr7=T26,
                         status="C", text="右侧硬膜下血肿，较前无变化"))
    assert "MSA|AA" in ack, ack
    got = _conclusions(_reports(http, acc))
    assert got == [("corrected", "右侧硬膜下血肿，较前无变化"), ("final", "未见异常")], (got, ack)


# --- OBR-7 as sent -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("obr7", [
    pytest.param("202403", id="month"),
    pytest.param("20240312", id="day"), pytest.param("20240312080000-0500", id="tz")])
def test_a_reused_accession_by_the_accession_alone_at_each_obr7_precision(http: TestClient, obr7: str) -> None:
    """The 2024 report's OBR-7 at month / day precision or another offset, the 2026 report's likewise, two years
    apart, naming the accession alone and no order ever holding it but by it.

    xofix41b: the probe asked for a split by time alone (xofix41's 180-day rule, dropped: a correction stamped with
    its own time split off, rv41k HIGH 1). Nothing tells another order: xofix41c, refused (AE, ERR 205 saying the
    message could not tell), at every precision -- the 2024 report as it was (rv41o HIGH 4)."""
    run = f"RV41K-P{len(obr7)}"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _ct("", acc, sent=T24, obr7=obr7, status="F", text="未见异常"))
    ack = send(http, _ct("", acc, sent=T26, obr7=obr7.replace("2024", "2026"), status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack, ack
    got = _conclusions(_reports(http, acc))
    assert got == [("final", "未见异常")] and len(_w205(ack)) == 1, (got, ack)
    assert "is not told" in _w205(ack)[0][8] and obr7.replace("2024", "2026")[:4] in _w205(ack)[0][8], ack


def test_an_ill_formed_obr7_on_the_reused_accession_is_no_500(http: TestClient) -> None:
    """Bad input: the 2026 report's OBR-7 ``2026-03-12`` (not a DTM) under the reused accession -- an ACK (never
    a 500, ``send`` asserts 200), the W 102 at OBR-7 once (rv41k LOW 7: told once, xofix41b).

    xofix41c: the message names no other order and states no readable exam time, with another conclusion than the
    stored final: not told, refused (AE, ERR 205 at OBR-3) -- the 2024 conclusion kept (rv41o MED 1)."""
    run = "RV41K-BAD7"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent=T26, obr7="2026-03-12", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    assert _conclusions(_reports(http, acc)) == [("final", "未见异常")], ack


def test_a_reused_accession_within_180_days_under_another_placer_is_another_exam(http: TestClient) -> None:
    """Guard: 60 days later the HIS orders head CT again (another placer number) and the RIS reports it under the
    same accession: another exam by the placer numbers -- a report of its own, W 205."""
    run = "RV41K-60D"
    acc = _old_exam(http, run)
    later = "20240511100000+0800"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", "").replace("20260312080000", later))
    ack = send(http, _ct(f"{run}2", acc, sent=later, obr7=later, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _conclusions(_reports(http, acc)) == [("final", "右侧硬膜下血肿"), ("final", "未见异常")]


@pytest.mark.parametrize("acc_reused", [False, True], ids=["new-accession", "both-reused"])
def test_a_reused_placer_number_leaves_the_2024_report(http: TestClient, acc_reused: bool) -> None:
    """Guard: in 2026 the HIS's counter wraps too and it orders head CT under the 2024 placer number; the RIS
    reports it under a new accession, or (both counters wrapped) the 2024 one. Under a new accession the 2024 report
    still says 未见异常 and the 2026 finding is a report of its own.

    xofix41b: both counters wrapped, the message names the very order (placer number) and report (accession) of
    2024 -- only the time says otherwise, and time is no evidence: the one report (the probe asked for a guess)."""
    run = f"RV41K-PL{int(acc_reused)}"
    acc = _old_exam(http, run)
    assert "MSA|A" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", ""))
    new_acc = acc if acc_reused else f"{run}-ACC2"
    ack = send(http, _ct(f"{run}1", new_acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert ("final", "未见异常") in _conclusions(_reports(http, acc)) or acc_reused
    assert ("final", "右侧硬膜下血肿") in _conclusions(_reports(http, new_acc))
    assert len(_reports(http, acc)) == 1


# --- the imaging study keyed by the accession ----------------------------------------------------------------


def test_the_2026_exams_imaging_study_is_not_the_2024_one(http: TestClient) -> None:
    """The 2026 report under the reused accession (no Study Instance UID sent: the study is keyed by the
    accession, ``pacs._imaging_study``): the 2024 study must still say it started in 2024 and be based on the 2024
    order, and the 2026 exam must have a study of its own (recognition reads ImagingStudy as a prior result)."""
    run = "RV41K-IS"
    acc = _old_exam(http, run)
    _new_exam(http, run, acc, "by-placer")
    found = http.get("/fhir/ImagingStudy", params={"subject": _one_subject(http), "_count": 200}).json()
    studies = [e["resource"] for e in found.get("entry") or ()
               if any(i.get("value") == acc for i in e["resource"].get("identifier") or ())]
    old, new = _one(http, HIS, f"{run}1"), _one(http, HIS, f"{run}2")
    got = sorted((str(s.get("started"))[:4], [b["reference"] for b in s.get("basedOn") or ()]) for s in studies)
    assert got == [("2024", [f"ServiceRequest/{old['id']}"]), ("2026", [f"ServiceRequest/{new['id']}"])], got


# --- money: which exam is the prior -------------------------------------------------------------------------


def _cbc(inst: str, placer: str, filler: str, when: str, status: str = "F", wbc: str = "6.1") -> str:
    """The LIS's CBC (OBR-25 ``status``) of ``<placer>^HIS`` under ``filler`` at ``when`` (OBR-7, OBR-22,
    OBX-14)."""
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when) + pid(inst)
            + f"ORC|RE|{placer}^HIS|{filler}||CM\n"
            + f"OBR|1|{placer}^HIS|{filler}|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|WBC^白细胞^L||{wbc}|10*9/L|||||{status}|||{when}\n")


def test_a_reused_lab_number_the_2026_result_is_the_prior_not_the_2024_one(engine: Engine, mllp: int) -> None:
    """Money (recognition site, CBC window 7 days): HOSPA's 2024 CBC under ``F-REUSE^LIS``; in 2026 HOSPA orders CBC
    again (no recognisable prior: 2024 is out of the window) and the LIS reports it under the same number (W 205, a
    report of its own); three days later HOSPB orders CBC -- reminded of HOSPA's 2026 result, and its repeat is
    flagged not payable against that result's day, 2026-03-01 (not the 2024 one, nor none)."""
    hl7 = Sender(mllp)
    t24, t26, b26 = "20240301080000+0800", "20260301080000+0800", "20260304080000+0800"
    assert "MSA|AA" in hl7.send(order("HOSPA", "RV41K-A1", CBC, t24))
    assert "MSA|AA" in hl7.send(_cbc("HOSPA", "RV41K-A1", "F-REUSE^LIS", t24))
    ack = hl7.send(order("HOSPA", "RV41K-A2", CBC, t26))
    assert "MSA|AA" in ack and not reminded(ack), ack
    ack = hl7.send(_cbc("HOSPA", "RV41K-A2", "F-REUSE^LIS", t26))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1 and not flags(engine), (ack, flags(engine))
    assert reminded(hl7.send(order("HOSPB", "RV41K-B1", CBC, b26)))
    ack = hl7.send(_cbc("HOSPB", "RV41K-B1", "F-B1^LIS", b26))
    [f] = flags(engine, "flagged")
    assert "not payable" in ack and (f["inst"], f["prior_inst"]) == ("HOSPB", "HOSPA"), (ack, f)
    assert f["prior_day"] == "2026-03-01", f


def test_a_late_correction_is_no_prior_of_its_own(engine: Engine, mllp: int) -> None:
    """Money: HOSPA's CBC of 2024-03-01 under ``F-CORR^LIS``; on 2024-09-27 (210 days later) the LIS corrects it
    (OBR-25 C, OBR-7 the correction's time: the sender's habit xofix41 names); on 2024-09-30 HOSPB orders CBC. The
    only exam was on 2024-03-01, out of the 7-day window: no reminder, no flag."""
    hl7 = Sender(mllp)
    t24, fixed, b24 = "20240301080000+0800", "20240927080000+0800", "20240930080000+0800"
    assert "MSA|AA" in hl7.send(order("HOSPA", "RV41K-C1", CBC, t24))
    assert "MSA|AA" in hl7.send(_cbc("HOSPA", "RV41K-C1", "F-CORR^LIS", t24))
    assert "MSA|AA" in hl7.send(_cbc("HOSPA", "RV41K-C1", "F-CORR^LIS", fixed, status="C", wbc="6.3"))
    ack = hl7.send(order("HOSPB", "RV41K-C2", CBC, b24))
    ack2 = hl7.send(_cbc("HOSPB", "RV41K-C2", "F-C2^LIS", b24))
    assert not reminded(ack) and "not payable" not in ack2 and not flags(engine, "flagged"), (ack, ack2)
