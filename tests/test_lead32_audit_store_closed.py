"""The audit log's background thread when its store is closed under it (the lead, thirty-second round).

A suite's end printed "audit: periodic checkpoint failed ... Cannot operate on a closed database": an
Engine dropped without ``close`` (a test standing in for a crash closes its stores directly) left the
thread ticking on a closed connection, failing once a minute. It now stops as at a crash: the tail is
signed as found by the next start, and nothing fails in between."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings

AUDIT = {"type": {"code": "rest"}, "action": "R", "recorded": "2026-01-01T00:00:00Z", "outcome": "0",
         "agent": [], "source": {"observer": {"display": "test"}}}


def test_a_store_closed_under_the_audit_thread_stops_it_without_a_failure(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data", audit_checkpoint_seconds=0.05)  # a tick within the test
    engine = Engine(settings)
    thread = engine.audit._timer
    assert isinstance(thread, threading.Thread) and thread.is_alive()
    engine.audit.record(AUDIT)
    _stores_closed_under(engine, thread, caplog)
    assert "closed under the background thread" in caplog.text
    # the next start signs what the dropped one left and serves
    time.sleep(0.01)
    with Engine(Settings(data_dir=tmp_path / "data")) as again:
        again.audit.record(AUDIT)
        assert again.audit.size >= 1


def test_the_search_keys_tick_stops_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With the default checkpoint period (a minute) the first tick is the search keys' (each second)."""
    engine = Engine(Settings(data_dir=tmp_path / "data"))
    thread = engine.audit._timer
    assert isinstance(thread, threading.Thread)
    _stores_closed_under(engine, thread, caplog)


def _stores_closed_under(engine: Engine, thread: threading.Thread, caplog: pytest.LogCaptureFixture) -> None:
    """The crash stand-in: the stores closed, the Engine never closed; the thread stops on its own and
    nothing is logged as failing. Then what the test opened beside the stores is let go."""
    with caplog.at_level(logging.INFO, logger="engine.audit.log"):
        engine.ingestor.close()
        engine.audit_store.close()
        if engine.store is not engine.audit_store:
            engine.store.close()
        thread.join(timeout=10)
    assert not thread.is_alive()  # it stopped on its own
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    engine.audit._timer = None
    engine.audit.let_go_segment(blocking=True)
    engine.audit._close_files()
    engine.auth.close()
