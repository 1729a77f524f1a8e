"""The instructions-by-stage tool (``bench/stage_instructions.py``): its trampolines route each
wrapped call by (calling stage, stage) pair, and its split turns callgrind's inclusive counts into
each stage's own, through the real compiler and the real ``callgrind_annotate``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from bench.stage_instructions import OUTSIDE, SQL, StageCalls, _Statements, build, callers, split

# a callgrind output written by hand: outer_call (100 of its own) calls stage 000 (A, 900 in all);
# A (200 own) calls 001 (B under A, 500, of it 100 in a recursive entry callgrind names 001'2) and 002 (C under A, 200); C (50 own) calls 003 (B under C, 150)
_CALLGRIND = """# callgrind format
version: 1
creator: test
events: Ir
summary: 1000

fl=???
fn=outer_call
1 100
cfn=huren_stage_000
calls=1 1
1 900
fn=huren_stage_000
1 200
cfn=huren_stage_001
calls=2 1
1 500
cfn=huren_stage_002
calls=1 1
1 200
fn=huren_stage_001
1 400
cfn=huren_stage_001'2
calls=1 1
1 100
fn=huren_stage_001'2
1 100
fn=huren_stage_002
1 50
cfn=huren_stage_003
calls=1 1
1 150
fn=huren_stage_003
1 150
"""


@pytest.mark.skipif(shutil.which("callgrind_annotate") is None, reason="valgrind's callgrind_annotate not installed")
def test_split_takes_the_called_stages_out_of_each_stage(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text(_CALLGRIND)
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([[OUTSIDE, "A", 0], ["A", "B", 1], ["A", "C", 2], ["C", "B", 3]]))
    got = dict(split(out, pairs, messages=2))
    # own = the stage's pairs less the pairs it calls; B is counted under both its callers
    assert got == {"A": (900 - 500 - 200) / 2, "B": (500 + 150) / 2, "C": (200 - 150) / 2, OUTSIDE: (1000 - 900) / 2}
    assert sum(got.values()) == 1000 / 2
    # a stage's calls by the stage making them (how the SQL statements are told apart by caller)
    assert callers(out, pairs, 2, "B") == [("A", 500 / 2), ("C", 150 / 2)]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_trampolines_route_each_call_by_its_pair(tmp_path: Path) -> None:
    calls = StageCalls(build(tmp_path))
    seen: list[str] = []

    def b(x: int, *, plus: int = 0) -> int:
        seen.append("b")
        return x + plus

    b_wrapped = calls.wrap(b, "B")

    def a(n: int) -> int:
        seen.append("a")
        if n:
            return a_wrapped(n - 1)  # the stage inside itself: no pair of its own
        return b_wrapped(1, plus=2) + b_wrapped(10)

    a_wrapped = calls.wrap(a, "A")

    def fails() -> None:
        raise KeyError("x")

    fails_wrapped = calls.wrap(fails, "C")

    assert a_wrapped(2) == 13
    assert seen == ["a", "a", "a", "b", "b"]
    assert calls.pairs == {(OUTSIDE, "A"): 0, ("A", "B"): 1}
    with pytest.raises(KeyError):
        fails_wrapped()
    assert b_wrapped(5) == 5  # the failed call left its stage: B is called from outside again
    assert calls.pairs[(OUTSIDE, "C")] == 2 and calls.pairs[(OUTSIDE, "B")] == 3
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(a_wrapped(0)))
    thread.start()
    thread.join()
    assert other == [13] and len(calls.pairs) == 4  # another thread's calls pass uncounted
    # the writer connection's statements: a stage of their own under the stage running them
    conn = sqlite3.connect(":memory:")
    statements = _Statements(conn, calls.wrap)
    put = calls.wrap(lambda: statements.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)]), "put")
    statements.execute("CREATE TABLE t (x)")
    put()
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    assert calls.pairs[(OUTSIDE, SQL)] == 4 and calls.pairs[("put", SQL)] == 6
    saved = tmp_path / "pairs.json"
    calls.save(saved)
    assert sorted(tuple(row[:3]) for row in json.loads(saved.read_text())) == sorted(
        (parent, stage, n) for (parent, stage), n in calls.pairs.items())
