"""An open/close cycle of the audit log leaves no file descriptor behind.

Before: ``close`` never closed the segment file (one ``audit.segment`` descriptor per cycle), and
an open whose writers' lock failed at ``share`` left that lock file's descriptor open. Counted in
``/proc/self/fd`` around real opens of a real store.
"""

from __future__ import annotations

import contextlib
import gc
import os
from pathlib import Path

import pytest

from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.audit.writers import Writers
from engine.settings import Settings
from tests.test_audit_log import event, quiet

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")


def _fds() -> dict[str, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[name] = os.readlink(f"/proc/self/fd/{name}")
    return out


def _audit_fds() -> list[str]:
    """The log's own files (the store's database connections are the store's to close)."""
    return sorted(t for t in _fds().values() if t.endswith((".segment", ".writers")))


def _settings(settings: Settings) -> Settings:
    s = quiet(settings)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    AuditKeys.load(s, create=True)
    return s


def test_open_close_cycles_leave_no_descriptor(settings: Settings) -> None:
    s = _settings(settings)
    held = []  # the logs stay referenced: a descriptor must be closed by ``close``, not by the collector
    before = _audit_fds()
    for i in range(5):
        store = open_audit_store(s)
        log = AuditLog(store, s, AuditKeys.load(s))
        log.record(event(i))
        log.close()
        store.close()
        held.append(log)
    assert _audit_fds() == before
    reopened = AuditLog(open_audit_store(s), s, AuditKeys.load(s))
    try:
        assert reopened.size == 5
    finally:
        reopened.close()
        reopened.store.close()


def test_an_open_that_fails_at_the_writers_lock_closes_its_files(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    s = _settings(settings)
    store = open_audit_store(s)
    try:
        gc.collect()
        before = _audit_fds()

        def refuse(self: Writers) -> None:
            raise OSError("flock refused")

        monkeypatch.setattr(Writers, "share", refuse)  # (the lock call, not the log, fails)
        held = []  # the errors kept (their frames hold the half-made log): closed by the error path itself
        for _ in range(3):
            with pytest.raises(OSError, match="flock refused") as info:
                AuditLog(store, s, AuditKeys.load(s))
            held.append(info)
        gc.disable()  # (a descriptor must be closed by the open's own error path)
        try:
            assert _audit_fds() == before
        finally:
            gc.enable()
    finally:
        store.close()
