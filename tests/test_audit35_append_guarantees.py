"""The append's guarantees on the real SQLite log with its segment file, pinned while its state was
redesigned into one object and measured (thirty-fifth round, audit35: not taken; the guarantees hold on
either form): a group whose ``write()`` fails leaves the right edge, the records waiting for the table and
the noted search keys as they were (the next record takes the same number, no gap); a group that passes
a checkpoint goes through the database with it; an append signs by the clock only as the backstop while
the background thread signs. Each log is verified afterwards (``huren audit verify``'s own check)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.audit import segment as segment_module
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import seal
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit_log import event, quiet


def _sealed(patient: str) -> object:
    """A request's record as the middleware seals it (its bytes but the number, its search keys)."""
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
           None, None, None, None], "node": "test", "out": "0", "pat": [patient], "res": ["Observation/o1"]}
    return seal(doc, (f"p:{patient}",), "2026-01-01T00:00:00.000Z")


def _open(settings: Settings) -> AuditLog:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True))


def test_a_failed_write_changes_nothing_and_the_next_record_takes_its_number(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    s = quiet(settings)
    log = _open(s)
    assert [r.seq for r in log.try_record_many([_sealed("p1"), _sealed("p2")], keep=True)] == [0, 1]
    root, waiting, noted = log.root(), list(log._unmoved), dict(log._appended_keys)
    real = os.pwrite
    fail = [True]

    def full_disk(fd: int, data: bytes, offset: int) -> int:
        if fail[0]:
            fail[0] = False
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(segment_module.os, "pwrite", full_disk)
    with pytest.raises(OSError, match="No space left"):
        log.try_record_many([_sealed("p3")], keep=True)
    assert not fail[0]  # the write was tried, and failed
    assert log.size == 2 and log.root() == root  # the right edge did not move
    assert log._unmoved == waiting and log._appended_keys == noted  # nothing waits or is noted for it
    third = log.try_record_many([_sealed("p4")], keep=True)[0]
    assert third.seq == 2 and log._appended_keys[2] == (("p:p4",), "2026-01-01T00:00:00.000Z")
    log.close()
    again = _open(s)  # from the files: exactly the three records written, in order
    docs = again.leaves.find(sort=[("seq", 1)])
    assert [(d["seq"], orjson.loads(d["data"])["pat"]) for d in docs] == [(0, ["p1"]), (1, ["p2"]), (2, ["p4"])]
    report = verify_online(again)
    assert report.ok and report.records == 3, report.text()
    again.close()


def test_a_group_passing_a_checkpoint_goes_through_the_database_with_it(settings: Settings) -> None:
    s = quiet(settings).with_(audit_checkpoint_every=4)
    log = _open(s)
    first = log.try_record_many([_sealed("p1"), _sealed("p2"), _sealed("p3")], keep=True)
    assert [r.seq for r in first] == [0, 1, 2] and len(log._unmoved) == 3  # in the segment, not yet the table
    assert log.latest_checkpoint() is None
    log.let_go_segment(blocking=True)
    second = log.record_many([_sealed("p4"), event(5), _sealed("p6")])  # passes 4: a checkpoint is due
    assert [r.seq for r in second] == [3, 4, 5]
    cp = log.latest_checkpoint()
    assert cp is not None and cp.size == 6 and cp.root == log.root()  # signed over the group, with it
    assert not log._unmoved  # the segment's records moved into the table in the same transaction
    assert sorted(log._appended_keys) == [0, 1, 2, 3, 5]  # the request records' keys (event 4 is read back)
    third = log.try_record_many([_sealed("p7")], keep=True)
    assert [r.seq for r in third] == [6] and len(log._unmoved) == 1  # back to the segment
    report = verify_online(log)
    assert report.ok and report.records == 7 and report.signed_size == 6, report.text()
    log.close()


def test_an_append_signs_by_the_clock_only_as_the_backstop_while_the_background_thread_signs(
        settings: Settings) -> None:
    s = quiet(settings).with_(audit_checkpoint_seconds=0.05, audit_seal_seconds=0)
    log = _open(s)
    log.record(event(0))
    assert log.checkpoint().size == 1  # (its transaction also takes the database's version: no reload below)
    time.sleep(0.08)
    log.record(event(1))  # no background thread: the append itself signs each period
    cp = log.latest_checkpoint()
    assert cp is not None and cp.size == 2
    log.start()
    try:
        with log._lock:  # (the thread waits meanwhile: what is signed here is the append's own)
            signed = log.latest_checkpoint()
            log._last_cp_time = time.monotonic()  # (as the thread's own signing sets it)
            time.sleep(0.08)  # a period is up, but not ten (the backstop): the append leaves it to the thread
            log.record(event(2))
            assert log.latest_checkpoint() == signed
            log._last_cp_time = time.monotonic() - 10 * 0.05  # ten periods without a signature
            log.record(event(3))
            cp = log.latest_checkpoint()
            assert cp is not None and cp.size == 4  # the thread fell behind: the append signed
    finally:
        log.close()
    report = verify_online(_open(s))
    assert report.ok and report.records == 4, report.text()


def test_the_append_bench_appends_every_record_through_the_segment(tmp_path: Path) -> None:
    """``bench/audit35_append.py`` (the per-append count) appends each record alone, none declined."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "audit35_append.py"), "40"], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, check=True).stdout
    assert "40 lone appends" in out and out.rstrip().endswith("log size 90")  # (50 to warm, then 40)
