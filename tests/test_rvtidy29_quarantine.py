"""Review of tidy29 (twenty-ninth round): the quarantine view of a refused V document (TXA-18 V) after
tidy29's continuation rule (``engine.api.admin._read_lines``: after a masked segment whose line ends at or
before its last masked field, every line up to the next OBX/NTE is taken for the rest of a text cut by a
raw line break, and the message fails closed).

1. (MED, privacy) The rule covers a continuation that reads as an ordinary segment (``HIV||||||F``) but
   not one whose first three letters are a header's (``BHS``, ``FHS``, ``MSH``): ``_read_lines`` calls
   any line beginning with them a header whatever follows, and ``_masked`` passes a header through as
   written -- the diagnosis after the break is shown to the operator the label withholds it from. (BHS:
   beta-haemolytic streptococcus, 乙型溶血性链球菌, how a report line may begin.)
2. (MED, regression) A V document sent whole, nothing broken, now fails closed: an NTE ends at NTE-3 (its
   last field as most senders write it) and an OBX may end at OBX-5, so the next segment that is no
   OBX/NTE -- the second PID the reason names, a Z-segment, the TXA after an order's note (MDM_T02 since
   v2.6: ``[{ORC OBR [{NTE}]}] TXA {OBX [{NTE}]}``, which the converter reads) -- is replaced by the
   placeholder, every OBX loses its fields after OBX-5, and the reason's quoted values (the sending
   facility the operator must register) are replaced. The author's "a message sent whole loses
   nothing" does not hold. Before tidy29 (bd6a96da) each of these was shown.

Real path: each message over real HTTP (``POST /hl7v2``), refused, read by an operator's page session
on ``GET /admin/quarantine/{id}``. Each test FAILS on 708955cc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import PLACEHOLDER, SECRET, mdm, refused
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

OBX1 = f"OBX|1|TX|18842-5^出院小结^LN||{SECRET}||||||F"
DIAGNOSIS = "感染，HIV抗体确证试验阳性"
SECOND_PID = "PID|2||RVT29-X9^^^FNXRMYY^MR||赵^四||19900101|M"
ZDS = "ZDS|1.2.840.113619.2.55^PACS^Application^DICOM"
ORDER = "ORC|RE|RVT29-PO^EMR|RVT29-FO^EMR\rOBR|1|RVT29-PO^EMR|RVT29-FO^EMR|18842-5^出院小结^LN\rNTE|1||医嘱备注\r"


def _header_break(control: str, name: str) -> bytes:
    """The V text broken by a raw CR whose second line begins with ``name`` (a header's segment id)."""
    obx = f"OBX|1|TX|18842-5^出院小结^LN||出院诊断：\r{name}{DIAGNOSIS}||||||F"
    body = mdm(control, "V").replace(OBX1.encode(), obx.encode())
    assert obx.encode() in body
    return body


BODIES = {
    **{f"RVT29-{name}": _header_break(f"RVT29-{name}", name) for name in ("BHS", "FHS", "MSH")},
    # sent whole: registered sender, a second patient after the note (AE, the reason names PID 2)
    "RVT29-PID2": mdm("RVT29-PID2", "V", "FNXRMYY") + f"{SECOND_PID}\r".encode(),
    # sent whole: unregistered sender (AR, the reason quotes MSH-4), a Z-segment after the note
    "RVT29-Z": mdm("RVT29-Z", "V") + f"{ZDS}\r".encode(),
    # sent whole: the document's order and its note before the TXA (MDM_T02 v2.6+)
    "RVT29-ORD": mdm("RVT29-ORD", "V").replace(b"TXA|1|", ORDER.encode() + b"TXA|1|"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient, dict[str, str]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("rvtidy29q") / "var", http_port=0, mllp_port=0)
    with refused(settings, BODIES.values(), ("AE", "AR")) as (engine, http):
        cookies, _ = _session(engine, "operator", name="it.rvt29")
        yield engine, http, cookies


def _shown(world: Any, control: str) -> dict[str, Any]:
    engine, http, cookies = world
    r = http.get(f"/admin/quarantine/{_quarantined(engine, control)['_id']}", cookies=cookies)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["withheld"] == ["OBX-5", "NTE-3"], body  # guard: the V label is withheld from the operator
    return body


# 1 (MED, privacy) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["BHS", "FHS", "MSH"])
def test_a_continuation_beginning_with_a_header_segment_id_is_masked(world: Any, name: str) -> None:
    body = _shown(world, f"RVT29-{name}")
    assert "HIV" not in body["text"] and DIAGNOSIS not in body["text"], body["text"]


# 2 (MED, regression: a message sent whole fails closed) ---------------------------------------------

def test_a_v_document_sent_whole_shows_the_second_patient_its_reason_names(world: Any) -> None:
    body = _shown(world, "RVT29-PID2")
    assert "PID 2" in body["reason"], body["reason"]  # guard: refused for the second PID
    lines = body["text"].split("\n")
    assert SECOND_PID in lines, lines
    # read whole: each OBX keeps its fields after OBX-5 (OBX-11, the result status)
    assert f"OBX|1|TX|18842-5^出院小结^LN||{PLACEHOLDER}||||||F" in lines, lines


def test_a_v_document_sent_whole_keeps_a_z_segment_and_the_facility_its_reason_quotes(world: Any) -> None:
    body = _shown(world, "RVT29-Z")
    assert ZDS in body["text"].split("\n"), body["text"]
    assert "'FNPF27HOSP'" in body["reason"], body["reason"]


def test_an_order_note_before_the_txa_does_not_mask_the_txa(world: Any) -> None:
    body = _shown(world, "RVT29-ORD")
    lines = body["text"].split("\n")
    txa = [line for line in lines if line.startswith("TXA|")]
    assert txa and txa[0].endswith("|PF27-RVT29-ORD||||pf27.rtf|AU|V"), lines
    assert "'FNPF27HOSP'" in body["reason"], body["reason"]
