"""Every audit append, a request's lone record or a group, takes one path of steps (forty-first round, perfa41).

rv40j (LOW 3) found the lone record's path (``Appends._append_sealed``, perf40r) a hand-made copy of the
group's: a later change to the order of the steps (a damage check, a lease rule, a hook) had to be made twice,
and only tests held the two equal. Now ``Appends._record_many`` is the one path: the segment's lock, the other
workers' records, ``_prepare`` (the damage check, numbers, bytes, leaves, nodes), the checkpoint's due rule,
``Segment.append`` (the frames in one ``write()``, the lock kept), else the database with the checkpoint
(``_to_table``); then the right edge, the keys and the hooks. Here, through a real log on SQLite with its
segment file: each append, lone or grouped, at once (``try_record_many``) or waiting (``record_many``), is
prepared by that one ``_prepare``; and every branch of the path -- written, busy, due by count, due by the
clock, a damaged log, a failed write -- does the same for a lone record as for a group of three.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.audit import merkle
from engine.audit.appends import Appends
from engine.audit.keys import AuditKeys
from engine.audit.loading import AuditLogDamaged
from engine.audit.log import AuditLog
from engine.audit.record import Sealed, seal
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit_log import quiet


def _sealed(i: int) -> Sealed:
    doc = {"f": 2, "act": "read", "at": "2026-12-05T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
           None, None, None, None], "node": "perfa41", "out": "0", "pat": [f"张{i}"], "res": [f"Observation/o{i}"],
           "salt": f"{i:032x}"}
    return seal(doc, (f"p:张{i}",), "2026-12-05T00:00:00.000Z")


def _open(settings: Settings) -> AuditLog:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True))


def test_every_append_lone_or_grouped_at_once_or_waiting_is_prepared_by_the_one_path(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails on the fortieth round's code: a lone record tried at once was numbered, hashed and framed by a
    copy of its own, never by ``_prepare``."""
    prepared: list[int] = []
    real = Appends._prepare

    def counted(self: Appends, events: Any) -> Any:
        prepared.append(len(events))
        return real(self, events)

    monkeypatch.setattr(Appends, "_prepare", counted)
    log = _open(quiet(settings))
    try:
        got = [log.try_record_many([_sealed(0)], keep=True), log.try_record_many([_sealed(1), _sealed(2)]),
               log.record_many([_sealed(3)]), log.record_many([_sealed(4), _sealed(5), _sealed(6)])]
        assert [[a.seq for a in g] for g in got] == [[0], [1, 2], [3], [4, 5, 6]]  # type: ignore[union-attr]
        assert prepared == [1, 2, 1, 3]  # one preparation an append, by the one path, whatever its size
        log.let_go_segment(blocking=True)
        report = verify_online(log)
        assert report.ok and report.records == 7, report.text()
    finally:
        log.close()


def _busy(log: AuditLog, append: Callable[[], Any]) -> Any:
    """Another open file holds the segment's lock (another process's flock): the append at once says busy."""
    import fcntl

    other = open(log._segment.path, "rb")  # noqa: SIM115  (another open file: another flock owner)
    try:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        return append()
    finally:
        other.close()


@pytest.mark.parametrize("size", [1, 3], ids=["lone", "group-of-3"])
@pytest.mark.parametrize("branch", ["written", "busy", "due-by-count", "due-by-clock", "damaged", "write-fails"])
def test_each_branch_of_the_path_does_the_same_for_a_lone_record_and_a_group(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, branch: str, size: int) -> None:
    """Two records first (the right edge not empty), then the append under test of ``size`` records, then one
    more record: its number follows what was written, with no gap and nothing twice, and the log verifies."""
    s = quiet(settings).with_(data_dir=tmp_path / "data", audit_checkpoint_every=3 if branch == "due-by-count"
                              else 10**9, audit_checkpoint_seconds=0 if branch == "due-by-clock" else 3600)
    log = _open(s)
    hooked: list[int] = []
    log.after_append.append(lambda appended: hooked.append(appended.seq))
    try:
        log.try_record_many([_sealed(0)], keep=True)
        log.try_record_many([_sealed(1)], keep=True)
        log.let_go_segment(blocking=True)
        records = [_sealed(10 + i) for i in range(size)]
        frames = os.path.getsize(log._segment.path)
        root = log.root()
        if branch == "busy":
            assert _busy(log, lambda: log.try_record_many(records, keep=True)) is None
            written: list[int] = []
        elif branch == "damaged":
            # as the log marks itself when its index holds records it cannot read (``_load_table``); not
            # looked at again for this test (``huren audit repair`` would be what clears it)
            log._damage, log._damage_recheck = "audit log damaged: record 1 cannot be read (test)", float("inf")
            with pytest.raises(AuditLogDamaged):
                log.try_record_many(records, keep=True)
            log._damage, log._damage_recheck = None, 0.0
            written = []
        elif branch == "write-fails":
            def full(fd: int, data: bytes, offset: int) -> int:
                raise OSError(28, "No space left on device")
            monkeypatch.setattr(os, "pwrite", full)
            with pytest.raises(OSError, match="No space"):
                log.try_record_many(records, keep=True)
            monkeypatch.undo()
            written = []
        else:
            got = log.try_record_many(records, keep=True)
            assert got is not None
            written = [a.seq for a in got]  # type: ignore[union-attr]
            assert written == list(range(2, 2 + size))
            for appended, record in zip(got, records, strict=True):
                assert appended.data == record.data(appended.seq)  # type: ignore[union-attr]
                assert appended.leaf_hash == merkle.leaf_hash(appended.data)  # type: ignore[union-attr]
        cps = sorted(d["size"] for d in log.checkpoints.find())
        if branch in ("due-by-count", "due-by-clock"):
            # written through the database with its checkpoint (the size it reached), none of it to the segment
            assert cps[-1] == 2 + size and os.path.getsize(log._segment.path) <= frames
        elif branch == "written":
            assert os.path.getsize(log._segment.path) > frames and log.size == 2 + size
        else:  # nothing written, the right edge as it was
            assert log.size == 2 and log.root() == root and os.path.getsize(log._segment.path) == frames
        assert log._appended_keys.get(2) == ((("p:张10",), "2026-12-05T00:00:00.000Z") if written else None)
        assert hooked == [0, 1, *written]
        (last,) = log.record_many([_sealed(99)])
        assert last.seq == 2 + len(written)  # type: ignore[union-attr]
        log.let_go_segment(blocking=True)
        report = verify_online(log)
        assert report.ok and report.records == 3 + len(written), report.text()
    finally:
        log.close()
