"""xotext36: an order's code named by text alone (OBR-4 ``^血常规``), judged by what the maps show
(thirty-sixth round; review rv36c MED 2 and MED 5).

An order message naming the stored test by its own words (its text, or a coding's display) restates
the same test: the stored codings stay. An order coded by nothing is for the recognition item its text
names (items.yaml ``name``: 血常规 = CBC): a result's coding the maps put under that item is added, one
of another item is not (W at OBR-4), one under no item the text names is not either (no W: nothing
shows another test). Arrival order does not matter.

Real HL7 v2 over ``POST /hl7v2`` into the real store, on every backend (``tests.module_store``), the
stored order read back over ``/fhir``; srfix35's FNZYY order and result messages. Each test uses order
numbers of its own.
"""

from __future__ import annotations

from tests.module_store import module_eng
from tests.test_srfix35_order_code import B, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]

CBC_LOCAL = "1001^血常规五分类^L"  # FNZYY's map: item CBC
LFT_LOCAL = "1020^肝功能八项^L"  # FNZYY's map: item LFT


def _by_text(placer: str, text: str, control: str = "ORC|NW|") -> str:
    return orm(placer).replace("ORC|NW|", control).replace("|5902-2^PT^LN|", f"|^{text}|")


def _codes(order: dict) -> set[str]:
    return {str(c.get("code")) for c in order["code"].get("coding") or ()}


def _err_at(ack: str, where: str) -> list[str]:
    return [s for s in ack.replace("\n", "\r").split("\r") if s.startswith("ERR") and where in s]


def test_a_result_coding_under_the_item_the_text_names_is_added(http) -> None:
    """``^血常规`` ordered, the LIS's 1001 (血常规五分类, CBC by FNZYY's map) reported under it: the maps
    put 1001 under the item 血常规 names, so the order takes the coding; its text stays, no W."""
    placer = "XOT36-CBC"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    ack = send(http, oru(placer, item=CBC_LOCAL))
    assert "MSA|AA" in ack and not _err_at(ack, "OBR^1^4"), ack
    order = the_order(http, placer)
    # the LIS's coding and the converter's for it (LOINC 58410-2, the item CBC), all one test
    assert _codes(order) == {"1001", "58410-2", "CBC"}, order["code"]
    assert order["code"]["coding"][0]["system"] == f"urn:huren:code:{B}", order["code"]
    assert order["code"]["text"] == "血常规", order["code"]


def test_a_result_coding_of_another_item_is_not_added_and_warned(http) -> None:
    """``^血常规`` (CBC) ordered, the LIS's 1020 (LFT) under it: the maps show another test -- not added,
    the ACK's W at OBR^1^4 names 1020; the result's own report keeps its code."""
    placer = "XOT36-LFT"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    ack = send(http, oru(placer, item=LFT_LOCAL))
    assert "MSA|AA" in ack, ack
    warned = _err_at(ack, "OBR^1^4")
    assert warned and "1020" in warned[0], ack
    order = the_order(http, placer)
    assert "coding" not in order["code"] and order["code"]["text"] == "血常规", order["code"]
    reports = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    assert "1020" in [c["code"] for e in reports["entry"] for c in e["resource"]["code"]["coding"]], reports


def test_a_text_naming_no_item_takes_no_coding_and_no_warning(http) -> None:
    """``^凝血四项`` names no recognition item: nothing shows the LIS's 1020 is that test, nor another --
    not added, and no W (the sender erred in nothing)."""
    placer = "XOT36-NONE"
    assert "MSA|AA" in send(http, _by_text(placer, "凝血四项"))
    ack = send(http, oru(placer, item=LFT_LOCAL))
    assert "MSA|AA" in ack and not _err_at(ack, "OBR^1^4"), ack
    assert the_order(http, placer)["code"] == {"text": "凝血四项"}


def test_the_order_by_text_after_its_result_keeps_the_coding_of_its_item(http) -> None:
    """Arrival order does not matter: the LIS's 1001 result first, then the HIS's NW ``^血常规``: the
    same item, so 1001 stays under the order's text; after 1020 (LFT) the NW states its code whole."""
    same, other = "XOT36-CBC-LATE", "XOT36-LFT-LATE"
    assert "MSA|AA" in send(http, oru(same, item=CBC_LOCAL))
    assert "MSA|AA" in send(http, _by_text(same, "血常规"))
    order = the_order(http, same)
    assert _codes(order) == {"1001", "58410-2", "CBC"} and order["code"]["text"] == "血常规", order["code"]
    assert "MSA|AA" in send(http, oru(other, item=LFT_LOCAL))
    assert "MSA|AA" in send(http, _by_text(other, "血常规"))
    assert the_order(http, other)["code"] == {"text": "血常规"}


def test_an_xo_by_the_same_text_of_an_order_by_text_keeps_it_and_another_text_changes_it(http) -> None:
    """An order by text alone restated by the same text: its code is the text (no empty ``coding``);
    then an XO by another text alone: a change of test, stated whole."""
    placer = "XOT36-XO"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    assert "MSA|AA" in send(http, _by_text(placer, "血常规", "ORC|XO|"))
    assert the_order(http, placer)["code"] == {"text": "血常规"}
    assert "MSA|AA" in send(http, _by_text(placer, "尿常规", "ORC|XO|"))
    assert the_order(http, placer)["code"] == {"text": "尿常规"}


def test_an_xo_by_the_stored_text_keeps_codings_and_another_text_is_a_change(http) -> None:
    """PT by LOINC, then XO ``^PT`` (the stored text): LOINC stays; then XO ``^血常规``: another test named
    by text (CBC, where 5902-2 is COAG), stated whole."""
    placer = "XOT36-PT"
    assert "MSA|AA" in send(http, orm(placer))
    assert "MSA|AA" in send(http, orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|^PT|"))
    assert _codes(the_order(http, placer)) == {"5902-2"}
    assert "MSA|AA" in send(http, _by_text(placer, "血常规", "ORC|XO|"))
    assert the_order(http, placer)["code"] == {"text": "血常规"}
