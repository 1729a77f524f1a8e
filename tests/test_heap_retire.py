"""What outlives an ingest batch in a settled server is frozen, not walked by the next young
collection; cyclic garbage among it is still collected, by the timed full collection; a process
that was not settled keeps the collector as it was."""

from __future__ import annotations

import gc
import weakref

import pytest

from bench.ingest import oru_lab
from engine import heap
from engine.engine import Engine
from engine.messages import PROCESSED
from engine.settings import Settings


class _Node:
    """A container that can be part of a reference cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_an_unsettled_process_keeps_its_collector() -> None:
    assert not heap._settled
    gc.collect()
    before = gc.get_freeze_count()
    survivor = [{"kept": i} for i in range(100)]
    assert heap.retire() is False
    assert gc.get_freeze_count() == before  # nothing frozen
    garbage = _cycle()
    gc.collect()
    assert garbage() is None and survivor


def test_survivors_are_frozen_and_cycles_wait_for_the_full_collection(settled: None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = gc.get_freeze_count()
    survivors = [[i] for i in range(1_000)]  # lists: always tracked by the collector
    garbage = _cycle()
    gc.disable()
    try:
        assert heap.retire() is True
    finally:
        gc.enable()
    assert gc.get_freeze_count() >= before + len(survivors)  # out of every generation the collector walks
    assert gc.get_count()[0] < 100
    gc.collect()
    assert garbage() is not None  # frozen: no collection reaches it ...
    del survivors[:500]  # ... while reference counting still frees what is let go
    monkeypatch.setattr(heap, "_next_full", 0.0)  # FULL_COLLECTION_SECONDS have passed
    gc.disable()
    try:
        heap.retire()
    finally:
        gc.enable()
    assert garbage() is None  # the full collection found the cycle
    assert heap._next_full > 0.0


def test_a_batch_through_the_pipeline_leaves_the_young_generation_empty(settled: None, settings: Settings) -> None:
    with Engine(settings) as engine:
        outcomes = engine.ingestor.process([(oru_lab(i), "test", "127.0.0.1:1") for i in range(5)])
        assert [o.status for o in outcomes] == [PROCESSED] * 5 and all(o.code == "AA" for o in outcomes)
        # the collector resumed right after the batch with nothing young left to walk
        assert gc.get_count()[0] < 1_000
        stored = engine.ingestor.messages.get(outcomes[0].message_id)
        assert stored is not None and stored["status"] == PROCESSED


def test_garbage_frozen_beyond_the_growth_bound_is_collected_before_the_time_bound(
        settled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cyclic garbage frozen at batch ends (another thread's, made while the collector was paused)
    waits at most for FULL_COLLECTION_GROWTH more frozen objects, not for the time bound."""
    monkeypatch.setattr(heap, "FULL_COLLECTION_GROWTH", 2_000)
    monkeypatch.setattr(heap, "_next_full", float("inf"))  # the time bound never comes
    garbage = _cycle()
    gc.disable()
    try:
        heap.retire()
        assert garbage() is not None  # frozen: under the bound
        grown = [[i] for i in range(3_000)]  # survivors past the bound
        heap.retire()
    finally:
        gc.enable()
    assert garbage() is None and grown  # the full collection came for the growth
    assert heap._frozen_since_full == 0  # counted afresh from there
