"""An Engine whose start raises midway closes what it had opened: the audit log's background thread,
started before the site's measures are read, ran on with both stores and the writers' lock held in
a process that never got an Engine to close (thirty-second round, perf32)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from mappings.sitefiles import SiteError


def _audit_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "audit-background" and t.is_alive()}


def test_a_start_that_raises_leaves_no_audit_thread_and_the_data_dir_opens_again(tmp_path: Path) -> None:
    before = _audit_threads()
    site = tmp_path / "site"
    (site / "recognition").mkdir(parents=True)
    # a site copy of the recognition measures that does not parse: read after the audit log started
    (site / "recognition" / "measures.yaml").write_text("measures: [1, 2\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    with pytest.raises(SiteError) as raised:
        Engine(Settings(data_dir=data_dir, site=site))
    assert "measures.yaml" in str(raised.value)  # the start's own error, not one of the cleanup
    assert _audit_threads() == before  # the failed start's thread was stopped and joined
    # the same data directory, the site mended: the next start is a lone writer that starts and serves
    (site / "recognition" / "measures.yaml").unlink()
    with Engine(Settings(data_dir=data_dir, site=site)) as engine:
        engine.audit.record({"type": {"code": "rest"}, "action": "R", "recorded": "2026-01-01T00:00:00Z",
                             "outcome": "0", "agent": [], "source": {"observer": {"display": "test"}}})
        assert engine.audit.size >= 1
    assert _audit_threads() == before
