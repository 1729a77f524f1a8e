"""tidy29: a V document's text broken by a raw line break where the line after the break reads as a segment.

labelfix28 made the quarantine view fail closed for a V document (MDM^T02, TXA-18 V; privfix27's made-up
message) whose OBX-5 holds a raw carriage return when the line after the break is no segment. Left: text
after the break that begins with three capitals or digits followed by the rest of the OBX's fields
(``PID||||||F``: PID, pelvic inflammatory disease; ``HIV||||||F``) is a segment to the parser, so the
message "parses whole", the masking masked OBX-5 up to the break only and showed the continuation line --
the diagnosis -- to an operator from whom the V label withholds it. Each message below is refused: the
first by the converter (a second PID), the others by the unregistered sending facility.

Real path: over real HTTP (``POST /hl7v2``); an operator's page session reads the refused message and
the list; the site's own system client (every label shown to it) reads the whole text, the guard that
the continuation is stored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import ER7, NOTE, PLACEHOLDER, QUOTED, SECRET, mdm, refused
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

# control id -> (sending facility, the OBX-1 segment as sent, the line after the break, what the operator is
# shown of the OBX line before it, the words withheld: the continuation's and the text's before the break)
CASES = {
    # a discharge diagnosis whose last line is the abbreviation alone: the second PID is refused (AE)
    "TD29-A": ("FNXRMYY", "OBX|1|TX|18842-5^出院小结^LN||出院诊断：慢性盆腔炎\rPID||||||F", "PID||||||F",
                 f"OBX|1|TX|18842-5^出院小结^LN||{PLACEHOLDER}", ("慢性盆腔炎",)),
    "TD29-B": ("FNPF27HOSP", "OBX|1|TX|18842-5^出院小结^LN||抗体确证试验阳性\rHIV||||||F", "HIV||||||F",
                 f"OBX|1|TX|18842-5^出院小结^LN||{PLACEHOLDER}", ("HIV", "抗体确证试验阳性")),
    # the break in a field before OBX-5 (OBX-3's text): OBX-5 itself stands on the line after the break
    "TD29-C": ("FNPF27HOSP", "OBX|1|TX|18842-5^出院\rSUM||抗体确证试验阳性||||||F", "SUM||抗体确证试验阳性||||||F",
                  "OBX|1|TX|18842-5^出院", ("SUM", "抗体确证试验阳性")),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    bodies = []
    for control, (facility, obx, *_) in CASES.items():
        body = mdm(control, "V", facility).replace(f"OBX|1|TX|18842-5^出院小结^LN||{SECRET}||||||F".encode(), obx.encode())
        assert obx.encode() in body
        bodies.append(body)
    with refused(Settings(data_dir=tmp_path_factory.mktemp("tidy29q") / "var", http_port=0, mllp_port=0), bodies,
                 ("AE", "AR")) as world:
        yield world


@pytest.mark.parametrize("control", list(CASES))
def test_a_line_after_a_break_that_reads_as_a_segment_is_masked(world: Any, control: str) -> None:
    engine, http = world
    _, _, continued, before, secret = CASES[control]
    mid = _quarantined(engine, control)["_id"]
    # guard: the stored text holds the continuation, the site's own system client reads it
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    whole = http.get(f"/admin/quarantine/{mid}", headers=site).json()
    assert continued in whole["text"].split("\n") and whole["withheld"] == [], whole["text"]
    cookies, _ = _session(engine, "operator", name="it.td29")
    shown = http.get(f"/admin/quarantine/{mid}", cookies=cookies)
    assert shown.status_code == 200, shown.text[:300]
    body = shown.json()
    lines = body["text"].split("\n")
    assert continued not in lines, lines
    for word in secret:  # the diagnosis on either side of the break
        assert word not in shown.text, (word, body["text"])
    assert QUOTED not in shown.text and NOTE not in shown.text
    # every segment before the break and after the continuation kept; a message not read whole loses each
    # masked segment's line from its first masked field on (labelfix28)
    assert [line[:3] for line in lines[:5]] == ["MSH", "EVN", "PID", "PV1", "TXA"], lines
    assert lines[5:9] == [before, PLACEHOLDER, f"OBX|2|NM|5223-3^抗体^LN||{PLACEHOLDER}",
                          f"NTE|1||{PLACEHOLDER}"] and not any(lines[9:]), lines
    assert body["withheld"] == ["OBX-5", "NTE-3"] and body["raw_base64"] is None
    # the list gives the item as show does
    listed = http.get("/admin/quarantine", cookies=cookies, params={"_count": 500})
    (item,) = [i for i in listed.json()["items"] if i["control_id"] == control]
    assert not any(word in str(item) for word in secret), item


def test_an_accepted_document_whose_text_a_line_break_cut_is_not_stored_cut(world: Any) -> None:
    """The same break from a registered hospital, a normal document (TXA-18 U): the text the resident
    and the hospitals read must be the whole text, or the message refused (AE naming OBX-5)."""
    engine, http = world
    body = mdm("TD29-D", "U", "FNXRMYY").replace(SECRET.encode(), "抗体确证试验阳性\rHIV".encode())
    sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("feed", "system/MessageHeader.c"),
              "Content-Type": ER7}
    r = http.post("/hl7v2", content=body, headers=sender)
    assert r.status_code == 200, r.text[:300]
    if r.headers.get("x-hl7-ack-code") != "AA":
        return  # refused: no cut text stored
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    found = http.get("/fhir/DocumentReference", params={"identifier": "PF27-TD29-D"}, headers=site).json()
    texts = [base64.b64decode(c["attachment"]["data"]).decode("utf-8")
             for e in found.get("entry", []) for c in e["resource"]["content"] if "data" in c["attachment"]]
    assert texts, found  # guard: the document was written
    assert all("HIV" in t for t in texts), texts
