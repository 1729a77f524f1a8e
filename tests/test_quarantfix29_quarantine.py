"""quarantfix29: the quarantine view of a refused V document (TXA-18 V) whose note's text (NTE-3) a raw
line break cut, after "cut" came to be decided by evidence (``engine.api.admin._read_lines``).

rvtidy29 found that tidy29's rule masked segments of messages sent whole (the second PID, a Z-segment,
the TXA after an order's note) because an NTE ends at NTE-3; an NTE ending there is no longer taken
for cut by itself. These guard what that must not open: the text after a break in NTE-3 is still
masked when it could be nothing but that note's rest -- a standard segment id with no more fields
than the NTE has left (``PID|RE``: NTE-4 after it; PID, pelvic inflammatory disease), a Z id with no
field (``ZDV``, zidovudine, an HIV drug) -- or when its id is no segment of the message's version
(``HIV||||||F``). They pass on main (tidy29 masked every line after an NTE) and fail on a rule that
drops NTE-3's doubt (checked: ``_evidence`` answering "no cut" for NTE).

Real path: over real HTTP (``POST /hl7v2``), refused (unregistered sending facility, AR); the site's
system client (every label shown) reads the continuation stored, an operator's page session reads
the masked text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import NOTE, PLACEHOLDER, mdm, refused
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

# control id -> (the note's text before the break, the line after it)
CASES = {
    "QF29-A": ("复诊提示：", "PID|RE"),
    "QF29-B": ("出院带药：", "ZDV"),
    "QF29-C": ("确证结果：", "HIV||||||F"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    bodies = []
    for control, (before, after) in CASES.items():
        body = mdm(control, "V").replace(f"NTE|1||{NOTE}".encode(), f"NTE|1||{before}\r{after}".encode())
        assert after.encode() in body
        bodies.append(body)
    with refused(Settings(data_dir=tmp_path_factory.mktemp("qf29q") / "var", http_port=0, mllp_port=0), bodies,
                 ("AR",)) as world:
        yield world


@pytest.mark.parametrize("control", list(CASES))
def test_the_rest_of_a_note_cut_by_a_line_break_is_masked(world: Any, control: str) -> None:
    engine, http = world
    before, after = CASES[control]
    mid = _quarantined(engine, control)["_id"]
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    whole = http.get(f"/admin/quarantine/{mid}", headers=site).json()
    assert after in whole["text"].split("\n") and whole["withheld"] == [], whole["text"]  # guard: stored
    cookies, _ = _session(engine, "operator", name="it.qf29")
    r = http.get(f"/admin/quarantine/{mid}", cookies=cookies)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert body["withheld"] == ["OBX-5", "NTE-3"], body
    lines = body["text"].split("\n")
    # the note and the line after its break both masked, nothing else of the message lost but the
    # masked fields' lines from their first masked field on (fail closed: the message not read whole)
    assert lines[-3:] == [f"NTE|1||{PLACEHOLDER}", PLACEHOLDER, ""], lines
    assert after not in r.text and before not in r.text, body["text"]
    assert lines[4].startswith("TXA|1|") and lines[4].endswith("|AU|V"), lines
