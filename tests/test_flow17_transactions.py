"""``SqliteStore.transaction()`` as a class (no generator, seventeenth round): what its blocks
commit, roll back and spoil, on a real SQLite file, and that its lock is let go on every exit
(another thread's transaction gets through after each)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.repository.sqlite_store import FlatTransactionFailed, SqliteStore


def _rows(store: SqliteStore) -> list[int]:
    return [r[0] for r in store.query("SELECT v FROM t ORDER BY v")]


def _other_thread_writes(store: SqliteStore, value: int) -> None:
    """A transaction on another thread: it blocks forever if a block kept the store's lock."""
    def run() -> None:
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES (?)", (value,))
    t = threading.Thread(target=run)
    t.start()
    t.join(5)
    assert not t.is_alive(), "the store's lock was not released"


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "t.db")
    s.conn.execute("CREATE TABLE t (v INTEGER)")
    yield s
    s.close()


def test_nested_blocks_commit_and_roll_back_alone(store: SqliteStore) -> None:
    generation = store.generation
    with store.transaction():
        assert store.in_transaction
        store.conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), store.transaction():  # a savepoint: rolled back alone
            store.conn.execute("INSERT INTO t VALUES (2)")
            raise ValueError
        with store.transaction():
            store.conn.execute("INSERT INTO t VALUES (3)")
    assert not store.in_transaction and store._depth == 0
    assert store.generation == generation + 2  # the BEGIN, the rollback of the savepoint
    assert _rows(store) == [1, 3]
    with pytest.raises(KeyError), store.transaction():
        store.conn.execute("INSERT INTO t VALUES (4)")
        raise KeyError
    assert _rows(store) == [1, 3] and store._depth == 0
    _other_thread_writes(store, 5)
    assert _rows(store) == [1, 3, 5]


def test_a_failed_block_inside_a_flat_transaction_spoils_all_of_it(store: SqliteStore) -> None:
    with pytest.raises(FlatTransactionFailed), store.flat_transaction():
        store.conn.execute("INSERT INTO t VALUES (1)")
        with store.transaction():  # joined: no savepoint
            assert store._depth == 2
            store.conn.execute("INSERT INTO t VALUES (2)")
        try:
            with store.transaction():
                store.conn.execute("INSERT INTO t VALUES (3)")
                raise ValueError
        except ValueError:
            pass  # caught by the caller: the whole transaction must go all the same
        assert store._depth == 1
        store.conn.execute("INSERT INTO t VALUES (4)")
    assert _rows(store) == [] and store._depth == 0 and not store._flat and not store._spoiled
    _other_thread_writes(store, 6)
    with store.flat_transaction(), store.transaction():
        store.conn.execute("INSERT INTO t VALUES (7)")
    assert _rows(store) == [6, 7]


def test_a_statement_failing_at_enter_lets_the_lock_go(store: SqliteStore) -> None:
    """A BEGIN that fails (here: a transaction already open on the connection behind the store's
    back) raises without keeping the lock or counting a depth."""
    store.conn.execute("BEGIN")
    try:
        with pytest.raises(Exception, match="within a transaction"), store.transaction():
            pass
    finally:
        store.conn.execute("ROLLBACK")
    assert store._depth == 0
    _other_thread_writes(store, 8)
    assert _rows(store) == [8]
