"""xofix41: review rv41d's order findings.

(1) HIGH 3: the filler's first statement assigns only a number that names *this* application -- HD-1 agreeing with
MSH-3's, or a form of the site's alias group; a universal id alone (the hospital's OID in every HD, or a lab's own)
names no application, so the lab whose numbers are ``F<n>^LAB^<OID>^ISO`` from ``LIS^<OID>^ISO`` is named by the
site (``senders.yaml`` ``application_aliases``). (3) MED 5: a batch message settled on an earlier one whose claim the
merge held is settled again on the store (``engine.ingest._leans_on_held``): one batch decides as one by one.

Real HL7 v2 through ``POST /hl7v2`` and the ingestor's batch, the real store on each backend, read over ``/fhir``."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_codefix36_order_code import _errs
from tests.test_probepay26_windows import msh, pid
from tests.test_rv40c_probes import _fillers, _held_at_obr4, _one, _order
from tests.test_rv40d_probes import _lab_report, _stated
from tests.test_rv41d_probes import _ack_lines, _cancel_and_report, _report_at, _texts
from tests.test_srfix35_order_code import ORDERED, B, http, send
from tests.test_xo41_orders import LAB_OID, aliased

__all__ = ["aliased", "http", "module_eng"]

HIS = "urn:huren:id:HIS"
OIDS = pytest.mark.parametrize("oid", [OID, LAB_OID], ids=["hospital-oid", "lab-oid"])


@OIDS
def test_a_lab_the_site_names_numbers_and_changes_its_order_before_its_report(aliased: TestClient, oid: str) -> None:
    """(rv40d MED 2, moved here: the alias is what names the lab now.) The HIS orders head CT; the LIS
    ``LIS^<OID>^ISO``, whose numbers ``F<n>^LAB^<OID>^ISO`` the site's alias names its own, says so first in an SC,
    then changes the test (XX, chest CT) before its report, then reports chest CT: the order is chest CT, numbered
    by the lab, and the report is filed -- for the hospital's OID in every HD and for a lab with an OID of its own."""
    placer = f"XOFIX41-LAB-{oid[-2:]}"
    filler, lis = f"F{placer}^LAB^{oid}^ISO", f"LIS^{oid}^ISO"
    assert "MSA|AA" in send(aliased, _order("HIS", placer, "HIS"))
    sc = send(aliased, _order(lis, placer, "HIS", "SC", HEAD, filler))
    xx = send(aliased, _order(lis, placer, "HIS", "XX", CHEST, filler))
    report = send(aliased, _lab_report(lis, placer, filler, CHEST))
    order = _one(aliased, HIS, placer)
    assert "MSA|AA" in report and not _held_at_obr4(sc) and not _held_at_obr4(xx), (sc, xx, report)
    assert "3001" in _codes(order) and _fillers(order) == [f"urn:oid:{oid}|F{placer}"], order


@OIDS
def test_an_oid_alone_names_no_application(http: TestClient, oid: str) -> None:
    """No alias: the LIS ``LIS^<OID>^ISO`` accepting the HIS's head CT (SC) under ``F<n>^LAB^<OID>^ISO`` and changing
    it (XX, chest CT) assigns nothing -- nothing in the message tells the lab's own OID from the hospital's that
    every application of the site carries (the EMR's SC under the lab's number was its "assignment": rv41d HIGH 3).
    Both held (W 204 at OBR-4), the number not stored, the order head CT; the lab's report of head CT then stores
    its number (its own by the history after it). Fails on xo41's code (the SC took the number, the XX recoded)."""
    placer = f"XOFIX41-NOALIAS-{oid[-2:]}"
    filler, lis = f"F{placer}^LAB^{oid}^ISO", f"LIS^{oid}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    sc = send(http, _order(lis, placer, "HIS", "SC", HEAD, filler))
    xx = send(http, _order(lis, placer, "HIS", "XX", CHEST, filler))
    assert _held_at_obr4(sc) and _held_at_obr4(xx), (sc, xx)
    order = _one(http, HIS, placer)
    assert _fillers(order) == [] and "3002" in _codes(order), order
    assert "MSA|AA" in send(http, _lab_report(lis, placer, filler, HEAD))
    order = _one(http, HIS, placer)
    assert _fillers(order) == [f"urn:oid:{oid}|F{placer}"] and order["status"] == "completed", order


def test_the_placers_own_cancel_in_the_batch_decides_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """Guard beside rv41d's MED 5 probe (a held CA): the placer ``HISAPP`` (its numbers ``<n>^HIS``: judged by the
    order's history, ``Owned``) cancels P1, taken -- P1 revoked, and the RIS's report by the accession alone
    completes P2 (no W); as one batch the same, the claim the merge judged taken both ways."""
    outcomes = {batch: _cancel_and_report(module_eng, http, "HISAPP", "HISAPP", run, batch)
                for run, batch in (("XOFIX41-CA1", False), ("XOFIX41-CA2", True))}
    assert outcomes[False][1] == ["revoked", "completed"], outcomes
    assert outcomes[True] == outcomes[False], outcomes


# --- (2) HIGH 4: an accession the RIS reused for the same patient ----------------------------------------------

T24, T26 = "20240312080000+0800", "20260312100000+0800"


def _w205_at_obr3(ack: str) -> list[list[str]]:
    return [e for e in _errs(ack) if e[2] == "OBR^1^3" and e[4] == "W" and e[3].split("^")[0] == "205"]


def _old_exam(http: TestClient, run: str) -> tuple[str, dict]:
    """2024: the HIS orders head CT ``<run>1``, the RIS reports it under ``<run>-ACC^RIS`` 未见异常."""
    acc = f"{run}-ACC^RIS"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000"))
    assert "MSA|AA" in send(http, _report_at("RIS", f"{run}1", acc, HEAD, T24, "未见异常"))
    old = _one(http, HIS, f"{run}1")
    assert _texts(http, old) == ["未见异常"], old
    return acc, old


@pytest.mark.parametrize("named", ["by-placer", "accession-alone"])
def test_a_reused_accession_files_a_report_of_its_own(http: TestClient, named: str) -> None:
    """2026: the HIS orders head CT again; the RIS (its counter wrapped) reports 右侧硬膜下血肿 under the 2024 exam's
    accession, naming the new order's placer number or the accession alone. The 2024 report still says 未见异常 (its
    DiagnosticReport and Observation unchanged), the 2026 finding is a report of its own (W 205 at OBR-3 naming the
    stored report) -- by the placer number, on the new order, which it completes. Fails before xofix41 (the 2024
    report rewritten, AA with no word)."""
    run = f"XOFIX41-RE-{named[:2].upper()}"
    acc, old = _old_exam(http, run)
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", ""))
    ack = send(http, _report_at("RIS", f"{run}2" if named == "by-placer" else "", acc, HEAD, T26, "右侧硬膜下血肿"))
    if named == "accession-alone":  # (no order but the 2024 one holds it -- time is no evidence: refused, xofix41c)
        (said,) = [e for e in _errs(ack) if e[2] == "OBR^1^3" and e[4] == "E" and e[3].split("^")[0] == "205"]
        assert "MSA|AE" in ack and "is not told" in said[8] and f"{run}1" in said[8], said
        assert _texts(http, _one(http, HIS, f"{run}1")) == ["未见异常"]
        return
    assert "MSA|AA" in ack and len(_w205_at_obr3(ack)) == 1, ack
    (said,) = _w205_at_obr3(ack)
    assert "keys the stored report of another exam" in said[8] and f"{run}1" in said[8] and f"{run}2" in said[8], said
    assert "DiagnosticReport/" not in said[8], said  # (rv41k LOW 9: the placer numbers, never an internal id)
    old = _one(http, HIS, f"{run}1")
    assert old["status"] == "completed" and _texts(http, old) == ["未见异常"], old
    found = http.get("/fhir/DiagnosticReport", params={"subject": old["subject"]["reference"]}).json()
    texts = sorted(t for e in found.get("entry") or () for ref in e["resource"].get("result") or ()
                   for t in [str(http.get(f"/fhir/{ref['reference']}").json().get("valueString"))])
    assert "右侧硬膜下血肿" in texts and "未见异常" in texts, texts
    if named == "by-placer":
        new = _one(http, HIS, f"{run}2")
        assert new["status"] == "completed" and _texts(http, new) == ["右侧硬膜下血肿"], new


def test_the_same_exams_correction_is_its_report(http: TestClient) -> None:
    """Guard: the RIS corrects the 2024 report (OBR-25 C, the same placer number and exam time) in 2026: the one
    report, now saying the corrected finding -- no W, no second report."""
    run = "XOFIX41-CORR"
    acc, old = _old_exam(http, run)
    ack = send(http, _report_at("RIS", f"{run}1", acc, HEAD, T24, "左侧额叶小片状低密度影").replace("|||F\n", "|||C\n"))
    assert "MSA|AA" in ack and not _w205_at_obr3(ack), ack
    assert _texts(http, _one(http, HIS, f"{run}1")) == ["左侧额叶小片状低密度影"]


def test_the_replacements_report_is_the_exams_report(http: TestClient) -> None:
    """Guard: the RIS's preliminary under P1, the HIS's RP + RO (P1R) under the accession the RIS keeps, then the
    RIS's final naming P1R: the replacement's order is the same exam -- one report, no W."""
    run = "XOFIX41-REPL"
    acc = f"{run}-ACC^RIS"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", ""))
    prelim = _report_at("RIS", f"{run}1", acc, HEAD, T26, "初步：未见异常").replace("|||F\n", "|||P\n")
    assert "MSA|AA" in send(http, prelim)
    replace = (msh(B, "HIS", "ORM^O01^ORM_O01", ORDERED) + pid(B)
               + f"ORC|RP|{run}1^HIS|{acc}||CA\n" + f"OBR|1|{run}1^HIS|{acc}|{HEAD}|||{ORDERED}\n"
               + f"ORC|RO|{run}1R^HIS|{acc}||IP\n" + f"OBR|2|{run}1R^HIS|{acc}|{HEAD}|||{ORDERED}\n")
    assert "MSA|AA" in send(http, replace)
    ack = send(http, _report_at("RIS", f"{run}1R", acc, HEAD, T26, "未见异常"))
    assert "MSA|AA" in ack and not _w205_at_obr3(ack), ack
    assert _texts(http, _one(http, HIS, f"{run}1R")) == ["未见异常"]


def test_a_reused_accession_in_one_batch_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """The 2026 order and its report under the reused accession as one batch, and one by one: the same ACKs and the
    2024 report unchanged both ways."""
    seen = {}
    for run, batch in (("XOFIX41-RB1", False), ("XOFIX41-RB2", True)):
        acc, _ = _old_exam(http, run)
        messages = [_stated("HIS", f"{run}2", "NW", HEAD, "", ""),
                    _report_at("RIS", f"{run}2", acc, HEAD, T26, "右侧硬膜下血肿")]
        if batch:
            acks = [o.ack.decode() for o in module_eng.ingestor.process(
                [(m.replace("\n", "\r").encode(), "mllp", "t") for m in messages])]
        else:
            acks = [send(http, m) for m in messages]
        seen[batch] = ([[re.sub(r"DiagnosticReport/[\w-]+", "<report>", x) for x in _ack_lines(a, run)] for a in acks], _texts(http, _one(http, HIS, f"{run}1")),
                       _texts(http, _one(http, HIS, f"{run}2")))
    assert seen[True] == seen[False] and seen[False][1:] == (["未见异常"], ["右侧硬膜下血肿"]), seen
