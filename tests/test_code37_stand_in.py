"""code37: a report first filed under a stand-in code, then coded by the sender (codefix36's leftover).

A report whose groups name no test (OBR-4 empty) is filed with its first result's code as a stand-in
(``results.diagnostic_report``): huren's, not the sender's statement. codefix36's rule (the filler's
number names the stored report of another test: a coding system in common, no coding) then refused the
LIS's later message naming the test in that system. The stand-in is marked as such on the stored code
(``results.STAND_IN_EXT``), and a stored stand-in is not a test the sender stated: the later real code is
taken, with the W it would have had on its own (none here). A sender changing its own coded test is
still refused.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``. Each test uses order numbers and codes of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert.results import STAND_IN_EXT
from tests.module_store import module_eng
from tests.test_codefix36_order_code import _errs, _reports
from tests.test_srfix35_order_code import http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]


def _local_result(message: str, code: str) -> str:
    """The result coded by the LIS's own (unmapped) code, in its local system like the OBR-4 codes."""
    return message.replace("OBX|1|NM|5902-2^PT^LN|", f"OBX|1|NM|{code}^凝血酶原时间^L|")


def _codes(resource: dict) -> list[str]:
    return [c["code"] for c in resource["code"].get("coding") or ()]


def test_a_stand_in_is_marked_and_a_later_real_code_in_its_system_is_taken(http: TestClient) -> None:
    """PT ordered; the LIS's result with OBR-4 empty (the report filed under its result's code C37S, a
    stand-in, marked); then its final naming the test C37T^凝血 at OBR-4 in the same local system: AA with
    no ERR at OBR-4 (the LIS's routine priority is warned as ever), the report now coded C37T, its mark gone; its result listed once."""
    placer = "C37-STANDIN"
    send(http, orm(placer))
    ack = send(http, _local_result(oru(placer, item="", status="P"), "C37S"))
    assert "MSA|AA" in ack, ack
    order = the_order(http, placer)
    (report,) = _reports(http, order)
    assert _codes(report) == ["C37S"], report["code"]
    assert [e["url"] for e in report["code"].get("extension") or ()] == [STAND_IN_EXT], report["code"]
    ack = send(http, _local_result(oru(placer, item="C37T^凝血^L"), "C37S"))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[2] == "OBR^1^4" or e[4] == "E"], ack
    (after,) = _reports(http, order)
    assert _codes(after) == ["C37T"] and "extension" not in after["code"], after["code"]
    assert after["status"] == "final" and len(after["result"]) == 1, after


def test_a_sender_changing_its_own_coded_test_is_still_refused(http: TestClient) -> None:
    """The same, OBR-4 stated from the start (C37A, not a stand-in, no mark), then C37B under the same
    filler number: AE at OBR^1^4 (205) naming both, the report unchanged."""
    placer = "C37-OWN"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="C37A^凝血^L", status="P"), "C37S"))
    (report,) = _reports(http, the_order(http, placer))
    assert "extension" not in report["code"], report["code"]
    ack = send(http, _local_result(oru(placer, item="C37B^凝血酶时间^L"), "C37S"))
    (err,) = _errs(ack)
    assert "MSA|AE" in ack and err[2] == "OBR^1^4" and err[3].startswith("205^"), ack
    assert "C37A" in err[8] and "C37B" in err[8], err
    (after,) = _reports(http, the_order(http, placer))
    assert after["meta"]["versionId"] == report["meta"]["versionId"] and _codes(after) == ["C37A"], after


def test_after_the_real_code_a_change_of_test_is_refused_again(http: TestClient) -> None:
    """Stand-in, then the sender's C37U taken; then C37V under the same number: refused (the mark went
    with the stand-in)."""
    placer = "C37-AGAIN"
    send(http, orm(placer))
    send(http, _local_result(oru(placer, item="", status="P"), "C37S"))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="C37U^凝血^L"), "C37S"))
    ack = send(http, _local_result(oru(placer, item="C37V^凝血^L", status="C"), "C37S"))
    assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
    (report,) = _reports(http, the_order(http, placer))
    assert _codes(report) == ["C37U"], report["code"]


def test_a_later_stand_in_does_not_replace_the_senders_code(http: TestClient) -> None:
    """The sender's code first (C37W at OBR-4), then a message with OBR-4 empty: the stand-in is only
    assumed -- the report keeps C37W, unmarked (it had taken the result's code over the sender's)."""
    placer = "C37-THINNER"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="C37W^凝血^L", status="P"), "C37S"))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item=""), "C37S"))
    (report,) = _reports(http, the_order(http, placer))
    assert _codes(report) == ["C37W"] and "extension" not in report["code"], report["code"]
    assert report["status"] == "final", report
