"""rvfixmix35: review probes of srfix35 (an order's code beside a result's), wardfix35 (a new bed named from
its ward; the reports' one current ward name) and fund35 (the settlement's year-end per fund).

Real HL7 v2 over ``POST /hl7v2`` into the real store on both backends (``tests.module_store``), read back
over ``/fhir``. A probe that shows a defect is a strict xfail naming its severity."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.module_store import module_eng
from tests.test_srfix35_order_code import LOINC, history, http, orm, oru, send, the_order
from tests.test_wardfix35_wards import _accepted, _adt, _place

__all__ = ["http", "module_eng"]

APTT = {"system": "http://loinc.org", "code": "3173-2", "display": "APTT"}


def _xo(placer: str, item: str = "5902-2^PT^LN") -> str:
    """The HIS's order change (ORC-1 XO) of ``placer``: the order re-stated, OBR-4 ``item``."""
    return orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", f"|{item}|")


# --- srfix35: the order's code after an order change and after a result --------------------------------


def test_rvfixmix35_order_change_after_a_result_keeps_the_results_coding(http: TestClient) -> None:
    placer = "RV-XO-SAME"
    send(http, orm(placer))
    send(http, oru(placer))
    assert the_order(http, placer)["code"]["coding"] == [LOINC]  # (PTX, in no map, not added: mixfix36)
    assert "MSA|AA" in send(http, _xo(placer))
    assert the_order(http, placer)["code"]["coding"] == [LOINC]


def test_rvfixmix35_order_change_to_another_test_states_it(module_eng: Engine, http: TestClient) -> None:
    """An XO changing the ordered test (PT -> APTT) before any result: the order is the new test, and
    recognition's item of it is the new one's (the order message states its code)."""
    placer = "RV-XO-OTHER"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _xo(placer, "3173-2^APTT^LN"))
    order = the_order(http, placer)
    assert order["code"]["coding"] == [APTT]
    assert [v["code"]["coding"] for v in history(http, order)] == [[LOINC], [APTT]]


def test_rvfixmix35_order_after_its_result_keeps_both_codings(http: TestClient) -> None:
    placer = "RV-LATE-ORDER"
    send(http, oru(placer))
    send(http, orm(placer))
    coding = the_order(http, placer)["code"]["coding"]
    assert coding == [LOINC], coding  # (PTX, in no map, is not the same test: the order states it whole, mixfix36)


def test_rvfixmix35_order_item_stays_the_ordered_one_after_a_result_coded_otherwise(
        module_eng: Engine, http: TestClient) -> None:
    placer = "RV-ITEM"
    send(http, orm(placer))
    assert item_for(the_order(http, placer), module_eng.recognition.rules) == "COAG"
    send(http, oru(placer, item="1020^肝功能八项^L"))
    assert item_for(the_order(http, placer), module_eng.recognition.rules) == "COAG"


def test_rvfixmix35_order_item_after_order_change_and_result(module_eng: Engine, http: TestClient) -> None:
    """ORM, ORU (PTX beside LOINC), then the same result again: one coding each, the item COAG throughout."""
    placer = "RV-ITEM-2"
    send(http, orm(placer))
    send(http, oru(placer))
    send(http, oru(placer))
    order = the_order(http, placer)
    assert order["code"] == {"coding": [LOINC], "text": "PT"}  # (PTX, in no map, not added: mixfix36)
    assert item_for(order, module_eng.recognition.rules) == "COAG"


# --- wardfix35: a renamed ward, then a code-only bed; two sites' same ward code ------------------------


def test_rvfixmix35_renamed_ward_then_code_only_bed_in_another_room(http: TestClient) -> None:
    """A01 names XYK 血液科病区, an A08 renames it 血液内科, an A02 moves by code alone to a bed of a room never
    sent: the new room and bed carry the ward's current name, not its first one nor its code."""
    _accepted(http, _adt("RVW1", "A01", "R1", "XYR^301^01^^^^^^血液科病区"))
    _accepted(http, _adt("RVW2", "A08", "R1", "XYR^301^01^^^^^^血液内科"))
    _accepted(http, _adt("RVW3", "A02", "R1", "XYR^309^07", prior="XYR^301^01"))
    display, chain = _place(http, "R1")
    assert [loc["name"] for loc in chain] == ["血液内科 309房 07床", "血液内科 309房", "血液内科"]
    assert display == "血液内科 309房 07床"


def test_rvfixmix35_two_sites_same_ward_code_keep_their_own_names(http: TestClient) -> None:
    """FNXRMYY names ward SRW 血液科病区; FNZYY names its own SRW 骨科病区: a code-only bed at each site takes
    its own site's ward name, never the other's."""
    _accepted(http, _adt("RVS1", "A01", "S1", "SRW^301^01^^^^^^血液科病区"))
    _accepted(http, _adt("RVS2", "A01", "S2", "SRW^301^01^^^^^^骨科病区", inst="FNZYY"))
    _accepted(http, _adt("RVS3", "A02", "S1", "SRW^302^05", prior="SRW^301^01"))
    _accepted(http, _adt("RVS4", "A02", "S2", "SRW^302^05", prior="SRW^301^01", inst="FNZYY"))
    assert _place(http, "S1")[0] == "血液科病区 302房 05床"
    assert _place(http, "S2")[0] == "骨科病区 302房 05床"


def test_rvfixmix35_a_site_without_a_name_does_not_borrow_anothers(http: TestClient) -> None:
    """FNXRMYY names TWW 血液科病区; FNZYY sends its TWW by code alone: FNZYY's new bed keeps its codes."""
    _accepted(http, _adt("RVT1", "A01", "T1", "TWW^301^01^^^^^^血液科病区"))
    _accepted(http, _adt("RVT2", "A01", "T2", "TWW^302^05", inst="FNZYY"))
    display, chain = _place(http, "T2")
    assert "血液科病区" not in display and all("血液科病区" not in loc["name"] for loc in chain), (display, chain)


def test_rvfixmix35_renamed_ward_then_code_only_transfer_to_an_older_bed(http: TestClient) -> None:
    _accepted(http, _adt("RVO1", "A01", "O1", "XYO^301^02^^^^^^血液科病区"))  # bed 301-02 stored, named
    _accepted(http, _adt("RVO2", "A01", "O2", "XYO^301^01^^^^^^血液科病区"))
    _accepted(http, _adt("RVO3", "A08", "O2", "XYO^301^01^^^^^^血液内科"))  # the ward renamed
    _accepted(http, _adt("RVO4", "A02", "O2", "XYO^301^02", prior="XYO^301^01"))
    display, chain = _place(http, "O2")
    assert chain[-1]["name"] == "血液内科"
    assert display == "血液内科 301房 02床", (display, [loc["name"] for loc in chain])


# --- srfix35: the ordered priority and doctor ---------------------------------------------------------


def test_rvfixmix35_order_change_states_a_new_priority_a_result_does_not(http: TestClient) -> None:
    """The order owns its priority: an XO from stat to routine states it; a later result's OBR-27 S does
    not make it stat again (the ACK names the value not stored)."""
    placer = "RV-PRIO"
    send(http, orm(placer))
    send(http, _xo(placer).replace("^^^20260312080000+0800^^S|", "^^^20260312080000+0800^^R|"))
    assert the_order(http, placer)["priority"] == "routine"
    ack = send(http, oru(placer).replace("||^^^^^R\n", "||^^^^^S\n"))
    assert "MSA|AA" in ack and "ServiceRequest.priority" in ack, ack
    assert the_order(http, placer)["priority"] == "routine"


def test_rvfixmix35_result_naming_another_doctor_by_id_alone_keeps_no_other_name(http: TestClient) -> None:
    """``keeps`` holds the display only for the same reference: a result naming D9 by id alone must not carry
    Dr Zhang's name onto D9 (a name filed under the wrong person)."""
    placer = "RV-DOC"
    send(http, orm(placer))
    send(http, oru(placer).replace("|||D7\n", "|||D9\n").replace("|||D7|||", "|||D9|||"))
    requester = the_order(http, placer)["requester"]
    assert requester.get("display") != "张医生", requester
