"""xofix41b: a report under a reused filler number is split off only on evidence of another ORDER (rv41k's findings
on xofix41's ``settle_reused_filler``).

Real HL7 v2 through ``POST /hl7v2`` on each backend (``module_eng``), read back over ``/fhir``. The RIS's reports are
imaging reports (OBR-24 CT, OBR-18 the accession: ``adapters.convert.pacs``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_codefix36_order_code import _errs
from tests.test_rv40c_probes import _one
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import HIS, T24, T26, _conclusions, _ct, _old_exam, _reports, _w205
from tests.test_srfix35_order_code import http, send

__all__ = ["http", "module_eng"]


def _numbered(http: TestClient, run: str, acc: str) -> None:
    """2026: the HIS orders head CT ``<run>2``; the RIS numbers it (SC) with the 2024 exam's accession."""
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", ""))
    ack = send(http, _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", ""))
    assert "MSA|AA" in ack, ack
    assert any(i.get("value") == acc for i in _one(http, HIS, f"{run}2").get("identifier") or ())


@pytest.mark.parametrize("then", ["accession-alone", "by-placer"])
def test_the_accession_alone_names_the_order_holding_it_and_its_correction_updates_it(
        http: TestClient, then: str) -> None:
    """The RIS numbered the 2026 order with the reused accession (SC), then reports it by the accession alone: the
    newest order holding the accession is the 2026 one, another order than the 2024 report's -- a report of its own
    on the 2026 order (W 205 naming both placer numbers, no internal id). Its correction a week later, naming the
    order either way, updates that report: the 2024 report untouched, no third. Fails with xofix41's code (the
    correction by the placer number keyed by another suffix than the time one, rv41k HIGH 2)."""
    run = f"XOFIX41B-SC-{then[:2].upper()}"
    acc = _old_exam(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    said = _w205(ack)[0][8]
    assert "another exam" in said and f"{run}1" in said and f"{run}2" in said, said
    assert "DiagnosticReport/" not in said and "ServiceRequest/" not in said, said
    assert _one(http, HIS, f"{run}2")["status"] == "completed"
    assert _conclusions(_reports(http, acc)) == [("final", "右侧硬膜下血肿"), ("final", "未见异常")]
    ack = send(http, _ct(f"{run}2" if then == "by-placer" else "", acc, sent="20260319100000+0800", obr7=T26,
                         status="C", text="右侧硬膜下血肿，较前无变化"))
    assert "MSA|AA" in ack, ack
    got = _conclusions(_reports(http, acc))
    assert got == [("corrected", "右侧硬膜下血肿，较前无变化"), ("final", "未见异常")], (got, ack)
    old = _one(http, HIS, f"{run}1")
    based = {b["reference"] for r in _reports(http, acc) if r.get("conclusion") == "未见异常" for b in r["basedOn"]}
    assert based == {f"ServiceRequest/{old['id']}"}, based


def test_a_final_by_the_accession_alone_held_by_no_other_order_is_not_told(http: TestClient) -> None:
    """The 2026 report by the accession alone where no order but the 2024 one holds the accession: nothing tells
    another order (the time is no evidence) -- refused AE, ERR 205 at OBR-3 naming the 2024 order's placer number
    and both times (xofix41c, rv41o HIGH 4: filed over the stored report, the 2024 order carried the 2026
    finding); the 2024 report as it was."""
    run = "XOFIX41B-NT"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent=T26, obr7=T26, status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    said = _w205(ack)[0][8]
    assert "is not told" in said and f"{run}1" in said and "2024-03-12" in said and "2026-03-12" in said, said
    assert "OBR-2" in said and "DiagnosticReport/" not in said, said
    assert _conclusions(_reports(http, acc)) == [("final", "未见异常")]


@pytest.mark.parametrize("obr7", [T24, "20241008090000+0800"], ids=["restated", "correction-time"])
def test_the_2024_correction_by_the_accession_alone_after_another_order_holds_none(http: TestClient,
                                                                                    obr7: str) -> None:
    """Guard: a correction (C) of the 2024 exam by the accession alone, whatever its OBR-7: the one report, no W."""
    run = f"XOFIX41B-C{len(obr7)}{obr7[5]}"
    acc = _old_exam(http, run)
    ack = send(http, _ct("", acc, sent="20241008090000+0800", obr7=obr7, status="C", text="左侧额叶小片状低密度影"))
    assert "MSA|AA" in ack and not _w205(ack), ack
    assert _conclusions(_reports(http, acc)) == [("corrected", "左侧额叶小片状低密度影")]


def test_an_ill_formed_obr7_is_told_once(http: TestClient) -> None:
    """rv41k LOW 7: an ill-formed OBR-7 on an imaging report is read by the report, the study and the order -- the
    ACK says it once (one ERR W 102 at OBR-7), not once per resource. Fails before xofix41b (3 or more)."""
    ack = send(http, _ct("", "XOFIX41B-BAD-ACC", sent=T26, obr7="2026-03-12", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack, ack
    assert len([e for e in _errs(ack) if e[2] == "OBR^1^7" and e[3].split("^")[0] == "102"]) == 1, ack
