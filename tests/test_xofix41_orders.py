"""xofix41: review rv41d's order findings.

(1) HIGH 3: the filler's first statement assigns only a number that names *this* application -- HD-1 agreeing with
MSH-3's, or a form of the site's alias group; a universal id alone (the hospital's OID in every HD, or a lab's own)
names no application, so the lab whose numbers are ``F<n>^LAB^<OID>^ISO`` from ``LIS^<OID>^ISO`` is named by the
site (``senders.yaml`` ``application_aliases``). (3) MED 5: a batch message settled on an earlier one whose claim the
merge held is settled again on the store (``engine.ingest._leans_on_held``): one batch decides as one by one.

Real HL7 v2 through ``POST /hl7v2`` and the ingestor's batch, the real store on each backend, read over ``/fhir``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_rv40c_probes import _fillers, _held_at_obr4, _one, _order
from tests.test_rv40d_probes import _lab_report, _stated
from tests.test_rv41d_probes import _ack_lines, _report_at
from tests.test_srfix35_order_code import http, send
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
    outcomes = {}
    for run, batch in (("XOFIX41-CA1", False), ("XOFIX41-CA2", True)):
        acc = f"{run}-ACC^RIS"
        for n in (1, 2):
            assert "MSA|AA" in send(http, _stated("HISAPP", f"{run}{n}", "NW", HEAD, "", ""))
            assert "MSA|AA" in send(http, _stated("RIS", f"{run}{n}", "SC", HEAD, acc, ""))
        cancel = _stated("HISAPP", f"{run}1", "CA", HEAD, acc, "").replace("||IP||", "||CA||")
        report = _report_at("RIS", "", acc, HEAD, "20260312100000+0800", "未见异常")
        if batch:
            acks = [o.ack.decode() for o in module_eng.ingestor.process(
                [(m.replace("\n", "\r").encode(), "mllp", "t") for m in (cancel, report)])]
        else:
            acks = [send(http, m) for m in (cancel, report)]
        outcomes[batch] = ([_ack_lines(a, run) for a in acks],
                           [_one(http, HIS, f"{run}{n}")["status"] for n in (1, 2)])
    assert outcomes[False][1] == ["revoked", "completed"], outcomes
    assert outcomes[True] == outcomes[False], outcomes
