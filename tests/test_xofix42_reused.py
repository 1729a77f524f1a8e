"""xofix42: a report under an accession reused for several exams -- the stored report whose exam a message naming
its order by the accession alone restates, among ALL the reports under the number, refused where two are told
(rv42a HIGH 1); another patient's report naming her own order filed apart (MED 1); a final over a stored
preliminary stating another exam time filed with a word (MED 3); exam times compared at the precision stated
(MED 4) and a thinner restatement never erasing a stated instant (MED 5).

Real HL7 v2 through ``POST /hl7v2`` on each backend (``module_eng``), one by one and in FHS/BHS batches, read back
over ``/fhir``; the refused message found kept in the message store."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id, raw_of
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_order35_as_later import _operator
from tests.test_rv40c_probes import _one
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import HIS, T24, T26, _ct, _old_exam, _reports, _w205
from tests.test_rv42a_probes import LI, T25, _by_order, _exam_2025
from tests.test_srfix35_order_code import B, http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["http", "module_eng"]

FIXED = "右侧硬膜下血肿，已吸收"  # the radiologist's correction of the 2025 exam
LATE = "20261101090000+0800"  # when she sends it


def _kept(module_eng: Engine, msg: str) -> dict[str, Any]:
    """The message store's document of ``msg`` (by its MSH-10): refused, its bytes kept for replay."""
    doc = module_eng.ingestor.messages.get(message_id(B, msg.split("\n", 1)[0].split("|")[9]))
    assert doc is not None and doc["status"] == "quarantined", doc
    return doc


def _filler_orders(http: TestClient, acc: str) -> list[dict[str, Any]]:
    """The orders holding the accession (FILL ``acc``)."""
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:RIS|{acc}", "_count": 50}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _three_exams(run: str, acc: str) -> list[str]:
    """The six messages of three head CTs under one accession: 2024 ordered and reported, 2025 ordered, numbered
    (SC) and reported by its placer number, 2026 ordered and numbered -- as ``_old_exam``, ``_exam_2025`` and
    ``_numbered`` send them one by one."""
    return [
        _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000"),
        _ct(f"{run}1", acc, sent=T24, obr7=T24, status="F", text="未见异常"),
        _stated("HIS", f"{run}3", "NW", HEAD, "", "").replace("20260312080000", "20250312080000"),
        _stated("RIS", f"{run}3", "SC", HEAD, f"{acc}^RIS", "").replace("20260312080000", "20250312080000"),
        _ct(f"{run}3", acc, sent=T25, obr7=T25, status="F", text="右侧硬膜下血肿"),
        _stated("HIS", f"{run}2", "NW", HEAD, "", ""),
        _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", ""),
    ]


# --- HIGH 1: the exam a correction by the accession alone restates, among all the reports under the number -------


@pytest.mark.parametrize("status", ["C", "F"])
def test_the_middle_exams_report_by_the_accession_alone_is_its_own_and_joins_no_other_order(
        http: TestClient, status: str) -> None:
    """Three exams under one accession, 2026 numbered and not reported: the 2025 exam's correction (C) by the
    accession alone, or its final re-sent from the RIS's queue (F, the same words), OBR-7 its own exam time, is the
    2025 report's -- corrected or as it was, the 2024 report as it was, nothing filed as the unread 2026 exam's
    (xofix41c filed the re-sent final as the 2026 order's report), the 2025 order the one joined (no order made
    under the accession alone beside the three: no 'names 2 orders')."""
    run = f"XOFIX42-MID{status}"
    acc = _old_exam(http, run)
    _exam_2025(http, run, acc)
    _numbered(http, run, acc)
    text = FIXED if status == "C" else "右侧硬膜下血肿"
    ack = send(http, _ct("", acc, sent=LATE, obr7=T25, status=status, text=text))
    assert "MSA|AA" in ack and "names 2 orders" not in ack, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}3": text}, ack
    orders = _filler_orders(http, acc)
    assert len(orders) == 3, [o.get("identifier") for o in orders]
    assert _one(http, HIS, f"{run}2")["status"] != "completed", ack


def test_the_middle_exams_correction_in_one_batch_as_one_by_one(http: TestClient) -> None:
    """Batch = one by one: the three exams' seven messages and the 2025 correction by the accession alone in one
    FHS/BHS -- eight AA, and the reports as one by one leaves them."""
    run = "XOFIX42-MB"
    acc = f"{run}-ACC"
    msgs = [*_three_exams(run, acc), _ct("", acc, sent=LATE, obr7=T25, status="C", text=FIXED)]
    ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n" + "".join(msgs) + f"BTS|{len(msgs)}\nFTS|1\n")
    assert ack.count("MSA|AA") == len(msgs), ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}3": FIXED}, ack


@pytest.mark.parametrize("way", ["one-by-one", "batch"])
def test_a_correction_whose_date_two_stored_exams_share_is_refused_and_kept(
        http: TestClient, module_eng: Engine, way: str) -> None:
    """Two exams of one day under one accession (08:00 and 15:00, the second reported by its placer number, filed
    apart): a correction by the accession alone stating the date alone states both exams' time -- which it
    corrects is not told: AE 205 at OBR-3 naming both, nothing changed, the raw message kept; sent with its
    placer number -- the operator's corrected copy replayed -- it corrects the 15:00 exam's report alone."""
    run = f"XOFIX42-DAY{way[0].upper()}"
    acc = _old_exam(http, run)
    at15 = "20240312150000+0800"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}3", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312140000"))
    assert "MSA|AA" in send(http, _stated("RIS", f"{run}3", "SC", HEAD, f"{acc}^RIS", ""))
    ack = send(http, _ct(f"{run}3", acc, sent=at15, obr7=at15, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    before = _by_order(http, acc, run)
    msg = _ct("", acc, sent=LATE, obr7="20240312", status="C", text=FIXED)
    ack = send(http, msg if way == "one-by-one" else f"BHS|^~\\&|RIS|FNZYY\n{msg}BTS|1\n")
    assert "MSA|AE" in ack and len(errs := _w205(ack)) == 1, ack
    assert "2 stored reports" in errs[0][-1] and f"{run}1" in errs[0][-1] and f"{run}3" in errs[0][-1], errs
    assert _by_order(http, acc, run) == before, ack
    assert FIXED in raw_of(_kept(module_eng, msg)).decode()
    mid = message_id(B, msg.split("\n", 1)[0].split("|")[9])
    r = http.post(f"/admin/quarantine/{mid}/replay", headers=_operator(module_eng))  # (as it was: refused again)
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text[:600]
    named = msg.replace("ORC|RE||", f"ORC|RE|{run}3^HIS|").replace("OBR|1||", f"OBR|1|{run}3^HIS|")
    r = http.post(f"/admin/quarantine/{mid}/replay", content=named.replace("\n", "\r").encode(),
                  headers=_operator(module_eng))  # (the operator's copy naming the placer number)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text[:600]
    assert _by_order(http, acc, run) == {**before, f"{run}3": FIXED}


def test_a_restamped_correction_with_two_stored_exams_and_the_newest_unreported_is_refused(
        http: TestClient, module_eng: Engine) -> None:
    """Three exams under one accession, 2024 and 2025 reported, 2026 numbered and not: a correction by the
    accession alone whose OBR-7 is its own send time states no stored exam, and the newest order has no report to
    correct -- the 2024 report or the 2025 one, which is not told (xofix41c had corrected the 2024 report, the
    only one it compared): AE 205, both reports as they were, the raw message kept."""
    run = "XOFIX42-RS"
    acc = _old_exam(http, run)
    _exam_2025(http, run, acc)
    _numbered(http, run, acc)
    before = _by_order(http, acc, run)
    msg = _ct("", acc, sent=LATE, obr7=LATE, status="C", text=FIXED)
    ack = send(http, msg)
    assert "MSA|AE" in ack and len(errs := _w205(ack)) == 1 and "not told" in errs[0][-1], ack
    assert _by_order(http, acc, run) == before, ack
    _kept(module_eng, msg)


def test_the_2025_exams_date_alone_restates_it_past_the_2026_order(http: TestClient) -> None:
    """A correction by the accession alone stating the 2025 exam's date alone (no time of day) is that exam's: a
    date is any time of that day, never its midnight UTC (xofix41c compared it as 2025-03-12T00:00Z, no stored
    exam's instant, and corrected the 2024 report as the newest order's had none)."""
    run = "XOFIX42-DT"
    acc = _old_exam(http, run)
    _exam_2025(http, run, acc)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent=LATE, obr7="20250312", status="C", text=FIXED))
    assert "MSA|AA" in ack, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}3": FIXED}, ack


# --- MED 1: another patient's report under the reused accession --------------------------------------------------


def _her_order(http: TestClient, run: str) -> None:
    order = _stated("HIS", f"{run}2", "NW", HEAD, "", "").split("\n")
    order[1] = LI
    assert "MSA|AA" in (ack := send(http, "\n".join(order))), ack


def _hers(msg: str) -> str:
    lines = msg.split("\n")
    lines[1] = LI
    return "\n".join(lines)


def test_another_patients_report_by_her_placer_number_is_hers_with_her_study(http: TestClient) -> None:
    """The RIS reuses patient A's 2024 accession for patient B, whose report names her order by its placer number:
    a report of her own on her order (W 205), her imaging study apart from A's, A's report and study as they
    were; her correction by the placer number corrects hers."""
    run = "XOFIX42-PT"
    acc = _old_exam(http, run)
    _her_order(http, run)
    ack = send(http, _hers(_ct(f"{run}2", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    ack = send(http, _hers(_ct(f"{run}2", acc, sent=LATE, obr7=T26, status="C", text=FIXED)))
    assert "MSA|AA" in ack, ack
    reports = _reports(http, acc)
    by_subject = {r["subject"]["reference"]: str(r.get("conclusion")) for r in reports}
    assert len(reports) == 2 and sorted(by_subject.values()) == sorted(["未见异常", FIXED]), reports
    studies = [e["resource"] for e in http.get("/fhir/ImagingStudy", params={"_count": 200}).json().get("entry") or ()
               if any(i.get("value") == acc for i in e["resource"].get("identifier") or ())]
    assert sorted(s["subject"]["reference"] for s in studies) == sorted(by_subject), studies


def test_another_patients_report_by_the_accession_alone_is_still_refused(http: TestClient) -> None:
    """Guard: her report by the accession alone tells no order of hers -- the subject rule refuses it (AE), A's
    report as it was."""
    run = "XOFIX42-PA"
    acc = _old_exam(http, run)
    _her_order(http, run)
    ack = send(http, _hers(_ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿")))
    assert "MSA|AE" in ack or "MSA|AR" in ack, ack
    assert [str(r.get("conclusion")) for r in _reports(http, acc)] == ["未见异常"], ack


# --- MED 3: a final over a stored preliminary by the accession alone -------------------------------------------


@pytest.mark.parametrize("obr7", ["another", "same", "none"])
def test_a_final_over_a_stored_preliminary(http: TestClient, obr7: str) -> None:
    """The 2024 exam reported P; its final by the accession alone, another conclusion: filed as that exam's final
    (the RIS's P -> F may restamp OBR-7 with its own time), with W 205 naming both times where it states another
    exam time; no word where it states the same one or none."""
    run = f"XOFIX42-FP{obr7[0].upper()}"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312080000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7=T24, status="P", text="未见异常"))
    when = {"another": T26, "same": T24, "none": ""}[obr7]
    ack = send(http, _ct("", acc, sent=T26, obr7=when, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack, ack
    errs = _w205(ack)
    if obr7 == "another":
        assert len(errs) == 1 and "preliminary" in errs[0][-1] and f"{run}1" in errs[0][-1], ack
    else:
        assert not errs, ack
    [report] = _reports(http, acc)
    assert (report["status"], report.get("conclusion")) == ("final", "右侧硬膜下血肿"), report


# --- MED 4 / 5: an exam time stated at the date alone -------------------------------------------------------------


@pytest.mark.parametrize("case", ["another-conclusion", "another-day"])
def test_a_date_only_final_over_a_stored_final_tells_by_its_day_and_conclusion(http: TestClient, case: str) -> None:
    """Guard: a final by the accession alone stating its exam date alone over the stored 10:00 final -- of that
    day but another conclusion (a date names no instant: the conclusion tells), or of another day -- is not told:
    refused AE 205, the stored report as it was."""
    run = f"XOFIX42-D{case[8].upper()}"
    acc = f"{run}-ACC"
    at10 = "20240312100000+0800"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312100000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=at10, obr7=at10, status="F", text="未见异常"))
    day, text = ("20240312", "右侧硬膜下血肿") if case == "another-conclusion" else ("20240313", "未见异常")
    ack = send(http, _ct("", acc, sent="20240314090000+0800", obr7=day, status="F", text=text))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    [report] = _reports(http, acc)
    assert (report.get("conclusion"), report.get("effectiveDateTime")) == ("未见异常", "2024-03-12T10:00:00+08:00")


def test_a_finer_or_other_exam_time_is_written(http: TestClient) -> None:
    """Guard of the precision rule (``merge_rules._not_thinner``): the 2024 final re-sent by its placer number at
    the date alone keeps the stored instant; a correction stating the instant to the second again keeps it; the
    report's stored date-only time is made precise by a later message stating the instant of that day."""
    run = "XOFIX42-PR"
    acc = _old_exam(http, run)
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent="20240313090000+0800", obr7="20240312", status="F",
                                      text="未见异常"))
    [report] = _reports(http, acc)
    assert report.get("effectiveDateTime") == "2024-03-12T08:00:00+08:00", report
    acc2 = f"{run}-ACC2"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}4", "NW", HEAD, "", ""))
    assert "MSA|AA" in send(http, _ct(f"{run}4", acc2, sent=T26, obr7="20260312", status="P", text="未见异常"))
    assert "MSA|AA" in send(http, _ct(f"{run}4", acc2, sent="20260313090000+0800", obr7=T26, status="F",
                                      text="未见异常"))
    [report] = _reports(http, acc2)
    assert report.get("effectiveDateTime") == "2026-03-12T10:00:00+08:00", report


def test_a_thinner_resend_keeps_its_results_exam_time(http: TestClient) -> None:
    run = "XOFIX42-OB"
    acc = _old_exam(http, run)
    [report] = _reports(http, acc)
    results = [str(r["reference"]) for r in report.get("result") or ()]
    assert results and all(http.get(f"/fhir/{ref}").json().get("effectiveDateTime") == "2024-03-12T08:00:00+08:00"
                           for ref in results), results
    ack = send(http, _ct("", acc, sent="20240313090000+0800", obr7="20240312", status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    assert [http.get(f"/fhir/{ref}").json().get("effectiveDateTime") for ref in results] == [
        "2024-03-12T08:00:00+08:00"] * len(results)
