"""codedoc38: ``/admin/fidelity``'s mapping-gap rows say what the gap is, Chinese first.

code37 counted two mapping gaps the merge finds under the unmapped codes (kind ``code`` at OBR-4): an order's
text naming no recognition item, and a local code its map knows with no item. Both rows read "unmapped code
'...' at OBR-4", which neither is (review rv37c LOW). Now each row says what it is, Chinese first as the page's
advice rows, and carries ``gap``; a code no map knows keeps its row as the conversion counts it.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), the rows read
back over ``/admin/fidelity`` with an operator's token. Each test uses order numbers and texts of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_srfix35_order_code import B, http, orm, oru, send
from tests.test_xotext36_order_text import LFT_LOCAL, _by_text

__all__ = ["http", "module_eng"]


def _rows(engine: Engine, http: TestClient) -> dict[str, list[dict[str, Any]]]:
    """``/admin/fidelity``'s rows of FNZYY of kind ``code``: value -> rows."""
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": B}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    rows: dict[str, list[dict[str, Any]]] = {}
    for i in (r.json()["institutions"].get(B) or {}).get("items") or ():
        if i["kind"] == "code":
            rows.setdefault(i["value"], []).append(i)
    return rows


def _chinese_first(text: str) -> bool:
    return bool(text) and "\u4e00" <= text[0] <= "\u9fff" and "(" in text


def test_an_order_texts_row_says_it_names_no_item(module_eng: Engine, http: TestClient) -> None:
    """``^凝血检查八项`` ordered (no item of that name), the LIS's 1020 under it: the row for the text says it is
    an order's text naming no item (Chinese first, then English), not an unmapped code, counted at OBR-4."""
    placer, text = "D38F-TEXT", "凝血检查八项"
    assert "MSA|AA" in send(http, _by_text(placer, text))
    assert "MSA|AA" in send(http, oru(placer, item=LFT_LOCAL))
    (row,) = _rows(module_eng, http)[text]
    assert row["gap"] == "order_text" and row["where"] == "OBR-4" and row["count"] == 1, row
    assert _chinese_first(row["message"]) and row["message"].startswith("医嘱文字"), row["message"]
    assert text in row["message"] and "names no recognition item" in row["message"], row["message"]
    assert "unmapped code" not in row["message"], row["message"]


def test_a_mapped_code_with_no_items_row_says_so(module_eng: Engine, http: TestClient) -> None:
    """``^血常规`` (an item's name) ordered, the LIS's 100101 (mapped, no item) under it: its row says the code
    is mapped with no item, Chinese first; the text names an item, so no row for it."""
    placer = "D38F-NOITEM"
    assert "MSA|AA" in send(http, _by_text(placer, "血常规"))
    assert "MSA|AA" in send(http, oru(placer, item="100101^白细胞^L"))
    rows = _rows(module_eng, http)
    (row,) = rows["100101"]
    assert row["gap"] == "no_item" and _chinese_first(row["message"]), row
    assert row["message"].startswith("本地编码") and "mapped with no recognition item" in row["message"], row
    assert "血常规" not in rows, rows["血常规"]


def test_a_code_no_map_knows_keeps_its_unmapped_row(module_eng: Engine, http: TestClient) -> None:
    """PT ordered by LOINC, the LIS's D38N (no map) reported: the conversion's row (unmapped code), no ``gap`` --
    the merge's finding of it is the same row, counted once."""
    placer = "D38F-UNMAPPED"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="D38N^凝血^L"))
    (row,) = _rows(module_eng, http)["D38N"]
    assert "gap" not in row and row["message"] == "unmapped code 'D38N' at OBR-4" and row["count"] == 1, row


def test_a_row_counted_before_says_what_it_is_on_its_next_count(module_eng: Engine, http: TestClient) -> None:
    """A text's row an earlier release wrote ("unmapped code ...", no ``gap``) takes the wording on its next
    count: the count goes on (2), the row says it is an order's text."""
    placer, text = "D38F-OLD", "凝血检查九项"
    assert "MSA|AA" in send(http, _by_text(placer, text))
    assert "MSA|AA" in send(http, oru(placer, item=LFT_LOCAL, status="P"))
    fidelity = module_eng.ingestor.messages.fidelity
    (doc,) = [d for d in fidelity.find({"value": text})]
    fidelity.update(doc["_id"], {"message": f"unmapped code {text!r} at OBR-4", "gap": None})
    assert _rows(module_eng, http)[text][0]["message"].startswith("unmapped code")
    assert "MSA|AA" in send(http, oru(placer, item=LFT_LOCAL, status="F"))
    (row,) = _rows(module_eng, http)[text]
    assert row["count"] == 2 and row["gap"] == "order_text" and row["message"].startswith("医嘱文字"), row
