"""rvprivfix28: the quarantine scrubber and a V document's text broken by a raw line break.

A V discharge summary (MDM^T02, TXA-18 V; privfix27's made-up message) whose OBX-5 holds a raw
carriage return -- the commonest way a text report breaks ER7 -- is refused: the line after the break
is no segment, and the reason quotes it (``invalid segment id '已告知本人，请勿告知家属'``, the
parser's ERR naming the segment before it). The message does not parse, so ``_read_values`` gives
nothing, and ``_masked`` masks OBX-5 only up to the break: the rest of the confidential text is shown
to an operator from whom the V label withholds it, in the reason and in the text.

Real path: over real HTTP (``POST /hl7v2``), an operator's page session reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import SECRET, refused
from tests.refused_documents import mdm as _mdm
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

REST = "已告知本人请勿告知家属"  # the part of the V text after the raw line break


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    body = _mdm("RVPF28-BR", "V", "FNXRMYY").replace(SECRET.encode(), f"HIV抗体确证试验阳性\r{REST}".encode())
    with refused(Settings(data_dir=tmp_path_factory.mktemp("rvprivfix28q") / "var", http_port=0, mllp_port=0), [body],
                 ("AE", "AR")) as world:
        yield world


def test_a_v_text_broken_by_a_line_break_is_not_shown_to_an_operator(world: Any) -> None:
    engine, http = world
    stored = _quarantined(engine, "RVPF28-BR")
    assert REST in str(stored)  # guard: the stored reason quotes the line after the break
    cookies, _ = _session(engine, "operator", name="it.rvpf28")
    shown = http.get(f"/admin/quarantine/{stored['_id']}", cookies=cookies)
    assert shown.status_code == 200, shown.text[:300]
    assert "HIV抗体确证试验阳性" not in shown.text  # guard: the masked part before the break
    listed = http.get("/admin/quarantine", cookies=cookies)
    (item,) = [i for i in listed.json()["items"] if i["control_id"] == "RVPF28-BR"]
    assert REST not in str(item), item.get("reason")
    assert REST not in shown.json()["text"], shown.json()["text"][:600]
    assert REST not in str({k: v for k, v in shown.json().items() if k != "text"})
