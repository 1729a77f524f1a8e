"""Who asks the log's store to call back on a rollback (thirty-ninth round, perf39r).

An append that the store holds (MongoDB's one insert, or SQLite's table when a checkpoint is due) may be
undone with a block of that store around it, and then the log must reload its right edge, or it numbers
past a hole (``AuditLog._rolled_back``). A record written to SQLite's segment file is in no transaction of
the store: nothing the store rolls back can take it away, so that append, every lone read's, no longer
asks the store for the callback (``Appends._append``). Through the real log, its files and
``huren audit verify``'s own check."""

from __future__ import annotations

import pytest

from engine.audit.log import AuditLog
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_audit35_append_guarantees import _open, _sealed
from tests.test_audit_log import quiet


def _asked(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The callbacks the log hands its store's ``on_rollback`` (still passed on to it)."""
    asked: list[object] = []
    real = log.store.on_rollback

    def spy(callback: object) -> None:
        asked.append(callback)
        real(callback)

    monkeypatch.setattr(log.store, "on_rollback", spy)
    return asked


def test_a_segment_append_asks_the_store_for_no_rollback_callback(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _open(quiet(settings))
    asked = _asked(log, monkeypatch)
    for i in range(5):  # lone requests' appends, as the event loop makes them
        assert [r.seq for r in log.try_record_many([_sealed(f"p{i}")], keep=True)] == [i]
    assert log._unmoved and asked == []  # in the segment file, and the store was not asked
    log.let_go_segment(blocking=True)
    report = verify_online(log)
    assert report.ok and report.records == 5, report.text()
    log.close()


def test_an_append_the_store_holds_still_asks_for_it(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group passing a checkpoint goes through the database: the store holds it, so the callback is asked."""
    log = _open(quiet(settings).with_(audit_checkpoint_every=4))
    asked = _asked(log, monkeypatch)
    log.try_record_many([_sealed("p1"), _sealed("p2"), _sealed("p3")], keep=True)
    assert asked == []
    log.try_record_many([_sealed("p4")], keep=True)  # size 4: a checkpoint is due
    assert len(asked) == 1 and log.latest_checkpoint() is not None
    log.let_go_segment(blocking=True)
    assert verify_online(log).ok
    log.close()


def test_a_rolled_back_block_of_the_store_never_loses_or_doubles_a_number(backend_settings: Settings) -> None:
    """A record appended inside a block of the log's store that is then rolled back: in SQLite's segment
    file it stays (the store never held it) and the next record follows it; on MongoDB the store's undo
    takes it away, the right edge is reloaded and the next record takes its number. Either way the log
    verifies, with no hole."""
    log = _open(quiet(backend_settings))
    log.record(_sealed("p0"))
    with pytest.raises(RuntimeError, match="the block fails"), log.store.transaction():
        log.record(_sealed("p1"))
        raise RuntimeError("the block fails")
    kept = log._segment is not None  # SQLite: the segment's record stays
    nxt = log.record(_sealed("p2"))
    assert nxt.seq == (2 if kept else 1)
    log.let_go_segment(blocking=True)
    report = verify_online(log)
    assert report.ok and report.records == nxt.seq + 1, report.text()
    log.close()
