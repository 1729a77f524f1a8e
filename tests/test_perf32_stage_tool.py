"""The one stage-split tool (``bench/stage_instructions.py``) as both benches use it: each pair's calls
counted from ``reset`` on, the calibrated wrapper taken off the calling stage by those counts, and
the read bench's stages wrapped where the read path looks them up -- through the real compiler, the
real ``callgrind_annotate`` and the real app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.stage_instructions import OUTSIDE, WRAPPING, StageCalls, build, calibration, split

# outer_call (100 own) calls stage 000 (A, 900 inclusive); A calls 001 (B under A, 500)
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
1 400
cfn=huren_stage_001
calls=2 1
1 500
fn=huren_stage_001
1 500
"""

needs_callgrind = pytest.mark.skipif(shutil.which("callgrind_annotate") is None, reason="no callgrind_annotate")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")


@needs_callgrind
def test_the_wrapper_comes_off_the_calling_stage_once_a_counted_call(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text(_CALLGRIND)
    pairs = tmp_path / "pairs.json"
    # A called once from outside, B 4 times from A (counted since reset), wrapper 20 a call
    pairs.write_text(json.dumps([[OUTSIDE, "A", 0, 1], ["A", "B", 1, 4]]))
    got = dict(split(out, pairs, messages=1, wrapper=20))
    assert got == {"A": 900 - 500 - 4 * 20, "B": 500, OUTSIDE: 100 - 20, WRAPPING: 5 * 20}
    assert sum(got.values()) == 1000  # the collected total, shared out
    # a pairs file of the ingest bench before calls were counted: no correction, as before
    pairs.write_text(json.dumps([[OUTSIDE, "A", 0], ["A", "B", 1]]))
    assert dict(split(out, pairs, messages=1, wrapper=20)) == {"A": 400, "B": 500, OUTSIDE: 100}


@needs_gcc
def test_calls_are_counted_per_pair_from_reset_on(tmp_path: Path) -> None:
    calls = StageCalls(build(tmp_path))
    inner = calls.wrap(lambda x: x * 2, "inner")
    outer = calls.wrap(lambda: inner(1) + inner(2), "outer")
    assert outer() == 6
    calls.reset()
    assert outer() == 6 and inner(5) == 10
    saved = tmp_path / "pairs.json"
    calls.save(saved)
    rows = {(p, s): made for p, s, _n, made in json.loads(saved.read_text())}
    assert rows == {(OUTSIDE, "outer"): 1, ("outer", "inner"): 2, (OUTSIDE, "inner"): 1}


@needs_callgrind
def test_calibration_is_through_less_direct_a_call(tmp_path: Path) -> None:
    out = tmp_path / "cal.out"
    out.write_text("""# callgrind format
version: 1
creator: test
events: Ir
summary: 30000

fl=???
fn=huren_stage_000
1 12000
fn=huren_stage_001
1 8000
cfn=huren_stage_002
calls=1 1
1 10000
fn=huren_stage_002
1 10000
""")
    pairs = tmp_path / "cal.json"
    pairs.write_text(json.dumps([[OUTSIDE, "direct", 0, 1], [OUTSIDE, "through", 1, 1], ["through", "callee", 2, 2000]]))
    assert calibration(out, pairs, n=2000) == (18000 - 12000) / 2000


@needs_gcc
def test_the_read_bench_wraps_each_stage_where_the_read_looks_it_up(tmp_path: Path, monkeypatch, settled) -> None:
    """Real audited reads over ASGI with the read stages wrapped: every stage of the list is called,
    the append's steps under the append, and the answers stay 200 (``asgi_reads`` exits otherwise)."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "bench"))
    import read_stages

    from engine.api import fast_read
    from engine.audit import appends, segment
    from engine.auth.service import AuthService
    from engine.engine import Engine

    for owner, name in ((AuthService, "authenticate"), (AuthService, "_client_holds"), (fast_read, "read_response"),
                        (appends.Appends, "try_record_many"), (appends.Appends, "_prepare"),
                        (appends.Appends, "_record_many"), (segment.Segment, "append"), (segment, "encode")):
        monkeypatch.setattr(owner, name, getattr(owner, name))  # undone after the test
    monkeypatch.setattr(Engine, "__init__", Engine.__init__)
    calls = StageCalls(build(tmp_path))
    only = ["authenticate", "revocation get", "_client_holds", "read_response", "try_record_many", "_prepare",
            "_record_many", "Segment.append", "encode"]
    read_stages.install(calls, only)
    read_stages._wrap_engine(calls, only)
    monkeypatch.setattr(sys, "argv", ["asgi_reads.py", "audited", "20", "1"])
    import asgi_reads

    calls.reset()
    asgi_reads.main()
    made = {pair: calls.made[n] for pair, n in calls.pairs.items()}
    # warm-up (300 + 200) and 20 timed reads, one record each
    assert made[(OUTSIDE, "authenticate")] == 520
    assert made[("authenticate", "revocation get")] == 520 and made[("authenticate", "_client_holds")] == 520
    assert made[(OUTSIDE, "read_response")] == 520
    appended = sum(v for (p, s), v in made.items() if s == "try_record_many")
    # one caller: every append is one request's record, a group of one through the one path of every append
    # (forty-first round, perfa41): prepared there, framed by the segment's append unless a checkpoint fell due
    # with it (then written through the database: ``_prepare`` once more, no frame)
    assert appended > 0 and made[("try_record_many", "_record_many")] == appended
    assert made[("_record_many", "_prepare")] > 0 and 0 < made[("Segment.append", "encode")] \
        == made[("_record_many", "Segment.append")] <= appended
