"""code37: a result's code the maps could not judge against its order is counted on ``/admin/fidelity``
(review rv36f LOW; codefix36's "gap not counted").

xotext36 and mixfix36 add a result's coding to its order only when the maps show it is the ordered test.
Two cases were neither added, warned nor counted -- a silent drop: an order coded by nothing whose text
names no recognition item (``^凝血四项``), and a result's local code its map knows with no item (and no
LOINC the order shares). Both are now counted with the unmapped codes (kind ``code``, at OBR-4: the
counter the unknown-code case uses), never answered to the sender (no ERR at OBR-4: the LIS erred in
nothing). A code no map knows is counted once a message as before.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir`` and ``/admin/fidelity`` with an operator's token. Each test uses order numbers and texts of
its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_codefix36_order_code import _errs
from tests.test_srfix35_order_code import B, http, orm, oru, send, the_order
from tests.test_xotext36_order_text import LFT_LOCAL, _by_text

__all__ = ["http", "module_eng"]


def _codes_counted(engine: Engine, http: TestClient) -> dict[str, list[tuple[str, int]]]:
    """``/admin/fidelity``'s unmapped-code rows of FNZYY: value -> [(where, count)]."""
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": B}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    rows: dict[str, list[tuple[str, int]]] = {}
    for i in (r.json()["institutions"].get(B) or {}).get("items") or ():
        if i["kind"] == "code":
            rows.setdefault(i["value"], []).append((i["where"], i["count"]))
    return rows


def _no_err_at_obr4(ack: str) -> bool:
    return "MSA|AA" in ack and not [e for e in _errs(ack) if e[2] == "OBR^1^4"]


def test_an_order_text_naming_no_item_is_counted_not_warned(module_eng: Engine, http: TestClient) -> None:
    """``^凝血检查三项`` ordered (no item has that name), the LIS's 1020 (LFT) reported under it twice (P, F):
    nothing added, no ERR at OBR-4, and the text counted at OBR-4 once per message (2)."""
    placer, text = "C37G-TEXT", "凝血检查三项"
    assert "MSA|AA" in send(http, _by_text(placer, text))
    assert text not in _codes_counted(module_eng, http)  # (the order alone: nothing dropped yet)
    for status in ("P", "F"):
        assert _no_err_at_obr4(send(http, oru(placer, item=LFT_LOCAL, status=status)))
    assert the_order(http, placer)["code"] == {"text": text}
    assert _codes_counted(module_eng, http)[text] == [("OBR-4", 2)]
    assert "1020" not in _codes_counted(module_eng, http)  # (its map names its item: not a gap)


def test_a_mapped_code_with_no_item_is_counted(module_eng: Engine, http: TestClient) -> None:
    """``^血常规`` (CBC by name) ordered, the LIS's OBR-4 100101 (白细胞: FNZYY's map knows it, LOINC
    6690-2, no item) under it: not added, no ERR at OBR-4, 100101 counted at OBR-4; the order's text names
    an item, so it is not counted."""
    placer = "C37G-NOITEM"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    assert _no_err_at_obr4(send(http, oru(placer, item="100101^白细胞^L")))
    assert the_order(http, placer)["code"] == {"text": "血常规"}
    counted = _codes_counted(module_eng, http)
    assert counted["100101"] == [("OBR-4", 1)] and "血常规" not in counted, counted


def test_a_code_no_map_knows_is_counted_once_a_message(module_eng: Engine, http: TestClient) -> None:
    """PT ordered (LOINC), the LIS's C37N (no map) reported: counted by the conversion and found again by the
    merge -- one count for the message, as before."""
    placer = "C37G-UNMAPPED"
    send(http, orm(placer))
    assert _no_err_at_obr4(send(http, oru(placer, item="C37N^凝血^L")))
    assert _codes_counted(module_eng, http)["C37N"] == [("OBR-4", 1)]


def test_a_result_joined_to_its_order_counts_nothing(module_eng: Engine, http: TestClient) -> None:
    """The text's item's own coding (1001 under ``^血常规``) is added: nothing counted for it."""
    placer = "C37G-JOINED"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    assert _no_err_at_obr4(send(http, oru(placer, item="1001^血常规五分类^L")))
    assert "1001" in {c["code"] for c in the_order(http, placer)["code"]["coding"]}
    assert "1001" not in _codes_counted(module_eng, http)
