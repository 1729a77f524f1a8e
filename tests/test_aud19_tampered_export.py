"""A real export tampered as a forger or a careless copy would, checked by ``huren audit verify
--export`` (the real CLI entry point, in process): each is refused (exit 1) and says what was done.
Two answers were unclear: two record lines swapped were "record 3 missing (deleted)" and "record 3
appears again (inserted)", neither true; now "record 3 is out of place: records reordered", one
problem. A header whose signature fails printed "export made  by ;" as if signed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.test_aud19_signed_header import _export, _lines, _write, made

__all__ = ["made"]


def test_two_records_swapped_are_named_reordered(made: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    at = [i for i, x in enumerate(lines) if x["type"] == "record"]
    lines[at[3]], lines[at[4]] = lines[at[4]], lines[at[3]]
    _write(path, lines)
    rc, said = _export(path, pub, capsys)
    assert rc == 1 and [(p["kind"], p["record"]) for p in said["problems"]] == [("reordered", 3)]
    assert "out of place" in said["problems"][0]["message"]


def test_a_record_moved_far_and_one_duplicated(made: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    at = [i for i, x in enumerate(lines) if x["type"] == "record"]
    moved = lines.pop(at[2])
    lines.append(moved)  # record 2 at the end
    lines.insert(at[5], copy.deepcopy(lines[at[5]]))  # and record 6 twice
    _write(path, lines)
    rc, said = _export(path, pub, capsys)
    assert rc == 1
    assert {(p["kind"], p["record"]) for p in said["problems"] if p["kind"] in ("reordered", "inserted", "deleted")} \
        == {("reordered", 2), ("inserted", 6)}


def test_a_header_whose_signature_fails_is_not_shown_as_signed(made: tuple, capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    from engine.cli import main

    _, path, pub = made
    lines = _lines(path)
    lines[0]["note"] = lines[0]["note"].replace("records 10", "records 9")
    _write(path, lines)
    rc, said = _export(path, pub, capsys)
    assert rc == 1 and said["header"] == "refused" and said["problems"][0]["kind"] == "signature"
    assert main(["audit", "verify", "--export", str(path), "--public-key", str(pub)]) == 1
    out = capsys.readouterr().out
    assert "export made" not in out and "the export's header: bad signature" in out
