"""``huren audit verify --export`` on records found out of place: the words must be true.

A record deleted from its place and an altered, re-hashed copy appended at the end was reported only
as "out of place: records reordered", as if its content were the signed one; a block of records
moved later was reported both "missing (deleted)" and "reordered". The tree cannot be recomputed
over records out of order, so a record found late is named out of place with its content unchecked,
and a gap's "deleted" names only the records not found later. Exit code 1 either way.
"""

from __future__ import annotations

import orjson
import pytest
import rfc8785

from engine.audit import merkle
from tests.test_aud19_signed_header import _export, _lines, _write, made

__all__ = ["made"]


def _alter(rec: dict) -> None:
    data = orjson.loads(rec["data"])
    data["entity"] = []
    raw = rfc8785.dumps(data)
    rec.update(data=raw.decode(), hash=merkle.leaf_hash(raw).hex())


def _said(rc: int, report: dict) -> list[tuple[str, int, str]]:
    assert rc == 1, report
    return [(p["kind"], p.get("record"), p["message"]) for p in report["problems"]]


def test_a_forged_copy_appended_is_not_called_merely_reordered(made: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    at = [i for i, x in enumerate(lines) if x["type"] == "record"]
    copy = lines.pop(at[3])
    _alter(copy)
    lines.append(copy)
    _write(path, lines)
    said = _said(*_export(path, pub, capsys))
    about3 = [(k, m) for k, r, m in said if r == 3]
    assert [k for k, _ in about3] == ["reordered"], said
    assert "content is not checked" in about3[0][1] and "altered" in about3[0][1]


def test_a_moved_block_is_not_also_deleted(made: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    at = [i for i, x in enumerate(lines) if x["type"] == "record"]
    recs = [lines[i] for i in at]
    _write(path, lines[:at[0]] + recs[:3] + recs[6:7] + recs[3:6] + recs[7:])
    said = _said(*_export(path, pub, capsys))
    assert not [s for s in said if s[0] == "deleted"], said
    assert sorted(r for k, r, m in said if k == "reordered" and "found out of place" in m) == [3, 4, 5], said


def test_a_partly_found_gap_names_only_what_is_missing(made: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    at = [i for i, x in enumerate(lines) if x["type"] == "record"]
    recs = [lines[i] for i in at]
    _write(path, lines[:at[0]] + recs[:3] + recs[6:7] + recs[4:5] + recs[7:])  # 3 and 5 gone, 4 moved
    said = _said(*_export(path, pub, capsys))
    deleted = sorted((r, m) for k, r, m in said if k == "deleted")
    assert [r for r, _ in deleted] == [3, 5] and "3..3" in deleted[0][1] and "5..5" in deleted[1][1], said
    assert [r for k, r, _ in said if k == "reordered"] == [4], said

