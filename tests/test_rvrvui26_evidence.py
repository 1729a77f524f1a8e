"""rvui26: 复核提示 through the real path -- an R98 order contradicted by a result huren already held
(HL7 over a real MLLP socket), its evidence read by an auditor over HTTP (GET /reports/duplicates/{id})."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_money19_review_upgrade import R98
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, community_engine, order, result, ts


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from community_engine(tmp_path)


def _evidence(engine: Engine, mllp: int) -> dict:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(3)))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    assert "contradicted by records" in hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    [flag] = [f for f in engine.recognition.flags.find({}) if f["status"] == "flagged"]
    token = engine.auth.issue_system_token("auditor", "system/DetectedIssue.rus", kind="auditor")
    res = TestClient(create_app(engine)).get(f"/reports/duplicates/{flag['_id']}",
                                             headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    return res.json()


def test_rvrvui26_evidence_note_is_in_local_time_and_keeps_the_recorded_sentence(engine: Engine, mllp: int) -> None:
    """GUARD: ``contradicted`` stays the engine's English sentence; ``contradicted_note`` is Chinese
    with no ISO/UTC instant left in it."""
    flag = _evidence(engine, mllp)["flag"]
    assert flag["contradicted"].startswith("reason contradicted by records: huren held"), flag
    note = flag["contradicted_note"]
    assert note.startswith("理由与记录不符") and not re.search(r"\d{4}-\d{2}-\d{2}T", note), note
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}:\d{2}", note), note


def test_rvrvui26_evidence_note_names_the_held_result(engine: Engine, mllp: int) -> None:
    """FINDING (MED): the recorded sentence names the DiagnosticReport huren held; the note the page
    shows in its place (app.js ``f.contradicted_note || f.contradicted``) drops it."""
    flag = _evidence(engine, mllp)["flag"]
    held = re.search(r"huren held (\S+) since", flag["contradicted"]).group(1)
    assert held.split("/")[-1] in flag["contradicted_note"], (held, flag["contradicted_note"])
