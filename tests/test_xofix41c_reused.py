"""xofix41c: a report naming its order by the accession alone under a reused accession -- the stored report whose
exam it states (OBR-7 the same instant, or a correction where the newest order holding the number has no report
yet), else the newest order's; a final nothing tells is refused AE (rv41o HIGH 1-4, MED 1, LOW 2).

Real HL7 v2 through ``POST /hl7v2`` on each backend (``module_eng``), read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.module_store import module_eng
from tests.test_rv40c_probes import _one
from tests.test_rv41k_probes import HIS, T24, T26, _conclusions, _ct, _old_exam, _reports, _w205
from tests.test_rv41o_probes import _by_order
from tests.test_srfix35_order_code import http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["http", "module_eng"]

T24_UTC = "20240312000000+0000"  # the 2024 exam's instant written in UTC


def test_a_reissued_final_of_the_same_instant_in_another_offset_is_the_stored_report(http: TestClient) -> None:
    """By the accession alone, no order but the 2024 one holding it: the 2024 final re-issued with its OBR-7 in
    UTC -- the same instant, so the same exam: AA, the one report updated, no ERR 205 (the times compared as
    instants, rv41o LOW 2; as text they differed, and a W said 'not told')."""
    run = "XOFIX41C-TZ"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent="20240313090000+0800", obr7=T24_UTC, status="F", text="未见明显异常"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert _conclusions(_reports(http, acc)) == [("final", "未见明显异常")], ack


def test_a_restamped_correction_by_the_accession_alone_before_the_2026_report_corrects_the_2024_one(
        http: TestClient) -> None:
    """The RIS numbered the 2026 order with the reused accession (SC), not yet reported; a correction (C) of the
    2024 exam by the accession alone, OBR-7 stamped with the correction's own time: the newest order holding the
    number has no report to correct, so it corrects the stored 2024 report -- not filed as the unread 2026 exam's
    report, which stays not completed (rv41o item 7)."""
    run = "XOFIX41C-RC"
    acc = _old_exam(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent="20260320090000+0800", obr7="20260320090000+0800", status="C",
                         text="左侧额叶小片状低密度影"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert _by_order(http, acc, run) == {f"{run}1": "左侧额叶小片状低密度影"}, ack
    assert _one(http, HIS, f"{run}2")["status"] != "completed", ack


def test_in_one_batch_as_one_by_one(http: TestClient) -> None:
    """Batch = one by one: the HIS's 2026 order, the RIS's SC with the reused accession, the 2024 report re-sent
    from the RIS's queue (new MSH-10, OBR-7 the 2024 instant) and the 2026 final by the accession alone, in one
    FHS/BHS: four AA; the 2024 report stays the 2024 order's, the 2026 final a report of its own (one W 205)."""
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    run = "XOFIX41C-BT"
    acc = _old_exam(http, run)
    ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n"
               + _stated("HIS", f"{run}2", "NW", HEAD, "", "")
               + _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", "")
               + _ct("", acc, sent="20260312090000+0800", obr7=T24, status="F", text="未见异常")
               + _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿") + "BTS|4\nFTS|1\n")
    assert ack.count("MSA|AA") == 4 and len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}, ack
    assert _one(http, HIS, f"{run}2")["status"] == "completed", ack


def test_a_not_told_final_in_a_batch_is_refused_as_one_by_one(http: TestClient) -> None:
    """Batch = one by one: the 2026 final by the accession alone, no order but the 2024 one holding it, after
    another message in the same batch -- refused AE naming OBR-3 as alone; the 2024 report as it was."""
    from tests.test_code37_ris_change import HEAD
    from tests.test_rv40d_probes import _stated
    run = "XOFIX41C-NB"
    acc = _old_exam(http, run)
    ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n"
               + _stated("HIS", f"{run}2", "NW", HEAD, "", "")
               + _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿") + "BTS|2\nFTS|1\n")
    assert ack.count("MSA|AA") == 1 and ack.count("MSA|AE") == 1 and len(_w205(ack)) == 1, ack
    assert "OBR-2" in _w205(ack)[0][8], ack
    assert _conclusions(_reports(http, acc)) == [("final", "未见异常")], ack

