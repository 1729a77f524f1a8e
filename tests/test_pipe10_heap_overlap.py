"""The collector's pause around an ingest batch is counted process-wide: a batch of one ingestor
that ends while another ingestor's batch still runs leaves the collector paused for it, and the
survivors are retired (frozen) only when the last of them ends (``engine.heap.paused``)."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine import heap
from engine.engine import Engine
from engine.settings import Settings


def _engine(tmp: Any, name: str) -> Engine:
    return Engine(Settings(data_dir=tmp / name, http_port=0, mllp_port=0))


def test_a_batch_ending_under_another_ingestors_batch_leaves_the_collector_paused(tmp_path: Any) -> None:
    """Two engines in one process: engine B's batch begins while engine A's runs (from A's
    converter, on another thread) and ends after it. The collector stays off until B's batch has
    ended too, and is on again after it."""
    assert gc.isenabled()
    b_started, a_done, b_done = threading.Event(), threading.Event(), threading.Event()
    states: dict[str, bool] = {}
    failures: list[BaseException] = []
    with _engine(tmp_path, "a") as a, _engine(tmp_path, "b") as b:
        convert_b = b.ingestor.convert
        assert convert_b is not None

        def b_convert(*args: Any, **kwargs: Any) -> Any:  # B's batch waits, paused, for A's to end
            b_started.set()
            assert a_done.wait(30)
            states["during B, after A ended"] = gc.isenabled()
            return convert_b(*args, **kwargs)

        b.ingestor.convert = b_convert

        def run_b() -> None:
            try:
                outcomes = b.ingestor.process([(oru_lab(7002), "mllp", "p")])
                states["B acked"] = outcomes[0].code == "AA"
            except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
                failures.append(exc)
            finally:
                b_done.set()

        convert_a = a.ingestor.convert
        assert convert_a is not None
        thread = threading.Thread(target=run_b)

        def a_convert(*args: Any, **kwargs: Any) -> Any:  # B's batch begins inside A's
            if not thread.is_alive():
                thread.start()
                assert b_started.wait(30)
            return convert_a(*args, **kwargs)

        a.ingestor.convert = a_convert
        outcomes = a.ingestor.process([(oru_lab(7001), "mllp", "p")])
        assert outcomes[0].code == "AA"
        states["after A, B running"] = gc.isenabled()
        a_done.set()
        assert b_done.wait(60)
        thread.join(30)
    assert not failures, failures
    assert states == {"after A, B running": False, "during B, after A ended": False, "B acked": True}
    assert gc.isenabled()


def test_survivors_are_retired_once_when_the_last_overlapping_pause_ends(
        settled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    retired: list[bool] = []
    real = heap.retire
    monkeypatch.setattr(heap, "retire", lambda: retired.append(gc.isenabled()) or real())
    with heap.paused():
        with heap.paused():
            assert not gc.isenabled()
        assert not gc.isenabled() and retired == []  # the outer block still runs
    assert retired == [False] and gc.isenabled()  # once, before the collector resumed


def test_whoever_turned_the_collector_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with heap.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
