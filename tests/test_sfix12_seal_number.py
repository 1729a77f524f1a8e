"""The seal carries no checkpoint number: one number is never signed over two roots.

Before: the seal was numbered as the next checkpoint would be (``_last_cp_seq + 1``), and that next
checkpoint, signed later over more records, carried the same number with another root. An outside
monitor polling ``GET /audit/checkpoints`` saw ``latest`` number 1 (the seal) and later checkpoint
1 with another root: a split view. Now the seal has a ``seal`` extension line in place of ``seq``;
the API names it (``"seal": true``, and a ``seal`` field of its own). Through the real path: the
app over HTTP (FastAPI's client), the log's own seal, an export verified offline.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from engine.audit.checkpoint import CheckpointError, parse_checkpoint, verify_checkpoint
from engine.audit.export import verify_export, write_export
from engine.audit.keys import AuditKeys
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_afix12_checkpoint_format import _note
from tests.test_audit_log import event, quiet_log


def _statements(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = list(body["checkpoints"])
    out += [s for s in (body.get("latest"), body.get("seal")) if s is not None]
    return out


def test_no_number_is_signed_over_two_roots(http, engine, client_token) -> None:
    auditor = {"Authorization": f"Bearer {client_token(engine, 'system/AuditEvent.rs', 'auditor-1')}"}
    engine.audit.record(event(0))
    assert http.post("/audit/checkpoints", headers=auditor).status_code == 201
    for _ in range(3):
        assert http.get("/audit/public-key").status_code == 200
        engine.audit.record(event(0))
    engine.audit.seal()  # (or the background thread's, a second later: the same either way)
    first = http.get("/audit/checkpoints", headers=auditor).json()
    for _ in range(3):
        engine.audit.record(event(1))
    assert http.post("/audit/checkpoints", headers=auditor).status_code == 201
    second = http.get("/audit/checkpoints", headers=auditor).json()
    roots: dict[int, set[str]] = {}
    for st in _statements(first) + _statements(second):
        if "seq" in st:
            roots.setdefault(st["seq"], set()).add(st["root"])
    assert roots and all(len(r) == 1 for r in roots.values()), roots
    seal = first.get("seal")
    assert seal is not None and seal.get("seal") is True and "seq" not in seal, first
    assert first["latest"] == seal  # the newest signed statement, named as the seal
    note = parse_checkpoint(seal["note"])
    assert note.seal and "\nseq " not in note.body() and "\nseal\n" in note.body()
    assert verify_checkpoint(note, engine.audit.keys)
    numbered = [c["seq"] for c in second["checkpoints"]]
    assert numbered == list(range(len(numbered)))
    assert verify_online(engine.audit, engine.audit.keys).ok


def test_the_parser_takes_seq_or_seal_not_both(settings: Settings) -> None:
    keys = AuditKeys.load(settings, create=True)
    root = base64.b64encode(bytes(range(32))).decode()
    head = f"example.org/audit\n12\n{root}\ntime 2026-12-01T00:00:00.000000Z\n"
    cp = parse_checkpoint(_note(keys, head + "seal\n"))
    assert cp.seal and cp.seq == -1 and "seq" not in cp.as_json() and cp.as_json()["seal"] is True
    assert not parse_checkpoint(_note(keys, head + "seq 2\n")).seal
    for bad in (head + "seal\nseq 2\n", head + "seal 2\n", head + "seal\nseal\n", head):
        with pytest.raises(CheckpointError):
            parse_checkpoint(_note(keys, bad))


def test_a_seal_stored_as_a_numbered_checkpoint_is_a_problem_and_exports_verify(
        settings: Settings, tmp_path: Path) -> None:
    s, log = quiet_log(settings)
    try:
        for i in range(9):
            log.record(event(i))
            if i == 2:
                assert log.checkpoint().seq == 0
        seal = log.seal()
        assert seal is not None and seal.seal and seal.size == 9
        assert [c.seq for c in log.list_checkpoints()] == [0]
        out = tmp_path / "export.jsonl"
        with out.open("wb") as fh:
            write_export(log, fh, checkpoint_first=False)
        report = verify_export(out)
        assert report.ok and report.sealed == 9 and report.unsigned == 0
        cp = log.checkpoint()
        assert cp is not None and cp.seq == 1 and not cp.seal  # the next number: the seal took none
        log.checkpoints.insert({"_id": "999999999999", "seq": 999, "size": seal.size, "note": seal.text})
        bad = verify_online(log, log.keys)
        assert not bad.ok and any("a seal" in p.message for p in bad.problems)
    finally:
        log.close()
        log.store.close()
