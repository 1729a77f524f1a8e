"""A batch whose transaction SQLite rolled back itself stores nothing and answers every message AE (thirty-ninth
round, stfix39; review rv39a MED, ``engine/repository/sqlite_store._Transaction``).

The failure is a real one, made midway through one message's writes: a write hook (the repository's public
``add_write_hook``) on that message's DiagnosticReport writes through the store until SQLite answers "database
or disk is full" (``PRAGMA max_page_count`` at the file's size: SQLITE_FULL, as a full disk gives it), and SQLite
rolls the whole batch transaction back itself. The cap is lifted again as the hook ends, so the next message
could write -- before the fix it did, outside any transaction: ``ingest._write_each`` (a savepoint a message)
quarantined the failing message and wrote the next one in autocommit, each committed alone, while the batch
ended answered AE and its messages ``received`` (their stored documents said otherwise).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import PROCESSED, RECEIVED, message_id
from engine.repository.sqlite_store import SqliteStore
from tests.test_mongo10_failed_message_undone import BAD, PEER, _of_bad_message, _watch

_UNCAPPED = 1073741823  # (SQLite's default max_page_count)


class DiskFull:
    """A write hook that, while ``on``, fills the store to a page cap at the bad message's report: the real
    "database or disk is full" raised through the message's real write, the cap lifted as it leaves."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.on, self.fired = store, True, 0
        self.scratch = store.collection("stfix39_fill")
        self.scratch.insert({"_id": "seed"})  # (its table made before, not inside the batch)

    def __call__(self, new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if not (self.on and new["resourceType"] == "DiagnosticReport" and _of_bad_message(new)):
            return []
        self.fired += 1
        conn = self.store._conn
        conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
        try:
            for i in range(5000):
                self.scratch.insert({"_id": f"fill{self.fired}-{i}", "x": "y" * 4000})
        finally:
            conn.execute(f"PRAGMA max_page_count={_UNCAPPED}")
        raise AssertionError("the page cap never filled")


def test_a_batch_sqlite_rolled_back_itself_stores_nothing_and_answers_each_message_ae(engine: Engine) -> None:
    made = _watch(engine)
    assert isinstance(engine.store, SqliteStore)
    full = DiskFull(engine.store)
    engine.repository.add_write_hook(full, types={"DiagnosticReport"})
    numbers = (30, BAD, 32)
    outcomes = engine.ingestor.process([(oru_lab(n), "mllp", PEER) for n in numbers])
    assert full.fired == 2  # (the one-commit attempt, then the batch again a savepoint a message)
    assert not engine.store._conn.in_transaction
    docs = [engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) for n in numbers]
    assert [(o.code, d and d["status"]) for o, d in zip(outcomes, docs, strict=True)] == [("AE", RECEIVED)] * 3
    # nothing of any message stored: not the one before the failure (rolled back with it), not its own
    # quarantine, not the one after (which had committed alone)
    for n in numbers:
        keys = made[f"LAB{n:09d}"]
        stored = {key: v for key in keys if (v := engine.repository.backend.history(*key))}
        assert stored == {}, (n, sorted(stored))
    assert engine.store.collection("stfix39_fill").get("fill2-0") is None

    # the disk has room again: each message sent again is stored once, answered AA
    full.on = False
    again = engine.ingestor.process([(oru_lab(n), "mllp", PEER) for n in numbers])
    assert [(o.code, o.status) for o in again] == [("AA", PROCESSED)] * 3
    for n in numbers:
        assert all([v.version for v in engine.repository.backend.history(*key)] == [1]
                   for key in made[f"LAB{n:09d}"] if key[0] != "Provenance"), n


def test_the_error_the_batch_is_answered_with_is_sqlites_own(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """The log says why the batch failed -- the disk is full -- not "no transaction is active", which the
    ROLLBACK of a transaction SQLite had ended raised over it."""
    engine.repository.add_write_hook(DiskFull(engine.store), types={"DiagnosticReport"})
    with caplog.at_level("ERROR", logger="huren.ingest"):
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", PEER) for n in (30, BAD, 32)])
    assert [o.code for o in outcomes] == ["AE"] * 3
    failed = [r for r in caplog.records if "could not commit" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None, [r.getMessage() for r in caplog.records]
    error = failed[0].exc_info[1]
    assert isinstance(error, sqlite3.OperationalError) and "full" in str(error), error
    assert "no transaction is active" not in str(error)
