"""The ingest bench's measuring aids of the twenty-fourth round (write24): the pipeline's line of
``--stages`` split into the pieces that make it, and ``--instructions`` (the timed messages
inside one ``operator.call``, for callgrind's ``--toggle-collect``).

Real messages through the real pipeline into a real store: the stage clock wraps the engine's
own objects, so a renamed method would silently drop a line from the figures (``attach`` skips
what it cannot find, so that the same bench measures older trees): these tests say so instead.
"""

from __future__ import annotations

import operator
from pathlib import Path

from bench import ingest as bench
from engine.engine import Engine
from engine.settings import Settings

PIPELINE = (
    "· pipeline: freeing the batch (_release)",
    "· pipeline: in-flight journal",
    "· pipeline: MSH read",
    "· pipeline: prepare (lists, target check)",
    "· pipeline: batch write (lists, keys, scopes)",
    "· pipeline: envelope, idempotency (phase 1)",
    "· pipeline: per-message write bookkeeping",
    "· repository write_many (rest)",
)


def test_stage_clock_times_each_piece_of_the_pipeline(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as engine:
        clock = bench.StageClock()
        clock.attach(engine)
        outcomes = engine.ingestor.process([(bench.oru_lab(7_000 + i), "bench", "127.0.0.1:1") for i in range(3)])
        assert [o.code for o in outcomes] == ["AA"] * 3
        stored = engine.repository.search("Observation", [("_summary", "count")]).total
    assert stored == 36  # the messages went all the way through, the clock around them
    missing = [stage for stage in PIPELINE if clock.own_calls.get(stage, 0) == 0]
    assert missing == []
    assert clock.own_calls["· pipeline: freeing the batch (_release)"] == 1  # once a batch
    assert clock.own_calls["· pipeline: per-message write bookkeeping"] == 3  # once a message


def test_instructions_runs_the_timed_messages_inside_one_operator_call(monkeypatch, capsys, settled) -> None:
    # ``settled``: the bench settles the heap as huren serve does; the fixture undoes it after the test
    calls: list[int] = []
    real = operator.call

    def counted(fn, *args, **kwargs):
        calls.append(1)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(operator, "call", counted)
    bench.instructions(4, batch=2)
    assert calls == [1]  # the messages once, nothing else: what callgrind's toggle counts
    assert "4 lab messages in batches of 2" in capsys.readouterr().out
