"""code37: a RIS changing its own test (OBR-4) under its filler number (gfix13's price, now at the report).

HL7 v2 says how a filler changes the service it performs: an order message, ORC-1 XX ("order/service
changed, unsolicited", table 0119) -- not a result message: OBR-25 C is a "correction to results" (table
0123), of the observations the filler number's test reported, not of the test. So a RIS's ORU naming
another procedure under its number is still refused (AE, ERR at OBR^1^4, nothing written), C or not; and
its XX, which recodes the order, is followed by the report: its corrected report naming the new
procedure is taken (it had been refused at the report, the order already recoded).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``. FNZYY's map: 3002 头颅CT平扫 (CT-HEAD), 3001 胸部CT平扫 (CT-CHEST). Each test uses order numbers
of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.module_store import module_eng
from tests.test_codefix36_order_code import _errs, _reports
from tests.test_probepay26_windows import msh, pid
from tests.test_srfix35_order_code import ORDERED, RESULTED, B, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]
HEAD, CHEST = "3002^头颅CT平扫^L", "3001^胸部CT平扫^L"


def _ris(message: str) -> str:
    return message.replace("|LIS|FNZYY|", "|RIS|FNZYY|").replace("^LIS|", "^RIS|")


def _ordered(placer: str) -> str:
    return orm(placer).replace("|5902-2^PT^LN|", f"|{HEAD}|")


def _changed(placer: str, item: str) -> str:
    """The RIS's own change of the procedure: ORC-1 XX under the placer's and its own numbers."""
    return _ris(msh(B, "RIS", "ORM^O01^ORM_O01", RESULTED) + pid(B)
                + f"ORC|XX|{placer}^HIS|F{placer}^RIS||IP\n"
                + f"OBR|1|{placer}^HIS|F{placer}^RIS|{item}|||{ORDERED}\n")


def _item_codes(concept: dict) -> set[str]:
    return {c["code"] for c in concept.get("coding") or ()}


def test_a_ris_correction_naming_another_procedure_is_still_refused(http: TestClient) -> None:
    """Head CT ordered and reported (F); the RIS's C naming chest CT under the same filler number: AE at
    OBR^1^4 (205), nothing written -- a C corrects results, not the test; then a P naming it: refused alike."""
    placer = "C37R-C"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    order = the_order(http, placer)
    (report,) = _reports(http, order)
    for status in ("C", "P"):
        ack = send(http, _ris(oru(placer, item=CHEST, status=status)))
        assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
        assert [e[3][:3] for e in _errs(ack) if e[4] == "E"] == ["205"], ack
    assert the_order(http, placer)["meta"]["versionId"] == order["meta"]["versionId"]
    (after,) = _reports(http, order)
    assert after["meta"]["versionId"] == report["meta"]["versionId"] and "3002" in _item_codes(after["code"])


def test_after_the_ris_changed_the_order_its_corrected_report_follows(http: TestClient) -> None:
    """Head CT ordered and reported; the RIS's XX to chest CT recodes the order; its C naming chest CT is
    then taken (AA, no E): the report is chest CT's, corrected; the order stays chest CT."""
    placer = "C37R-XX"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    assert "MSA|AA" in send(http, _changed(placer, CHEST))
    order = the_order(http, placer)
    assert "3001" in _item_codes(order["code"]) and "3002" not in _item_codes(order["code"]), order["code"]
    ack = send(http, _ris(oru(placer, item=CHEST, status="C")))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack
    (report,) = _reports(http, the_order(http, placer))
    assert "3001" in _item_codes(report["code"]) and "3002" not in _item_codes(report["code"]), report["code"]
    assert report["status"] == "corrected", report
    # another procedure again, not stated by the order: refused as before
    ack = send(http, _ris(oru(placer, item=HEAD, status="C")))
    assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
