"""WAL checkpoints on a thread of their own (``engine.repository.checkpointer``): the writer's
COMMIT no longer copies the WAL into the database, the WAL still restarts and stays short, what
was committed reads back exactly, and kill -9 while checkpoints run loses no committed row
(and, over MLLP, no ACKed message) and doubles nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.repository import checkpointer as checkpointer_module
from engine.repository.checkpointer import BACKSTOP, wal_frames
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.conftest import REPO_ROOT, assert_acked_kept, kill_mid_stream

PAGE = 4096
PAGES = 64  # frames between checkpoints in these tests (256 KiB of 4 KiB pages)


def _row(tx: int, n: int) -> bytes:
    """Row ``n`` of transaction ``tx``: 1.5 KB that say whose they are."""
    return hashlib.sha256(f"{tx}/{n}".encode()).digest() * 48


def _write(store: SqliteStore, tx: int, rows: int = 8) -> None:
    with store.transaction():
        store.conn.executemany("INSERT INTO t (tx, n, body) VALUES (?, ?, ?)",
                               [(tx, n, _row(tx, n)) for n in range(rows)])


def _frames(path: Path) -> tuple[int, int]:
    fd = os.open(f"{path}-shm", os.O_RDONLY)
    try:
        found = wal_frames(fd)
    finally:
        os.close(fd)
    assert found is not None
    return found


def test_the_checkpoints_leave_the_writers_commit_and_the_wal_still_restarts(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = SqliteStore(path, page_size=PAGE, checkpoint_bytes=PAGES * PAGE, background_checkpoints=True)
    store.execute("CREATE TABLE t (tx INTEGER, n INTEGER, body BLOB, PRIMARY KEY (tx, n))")
    ck = store.checkpointer
    assert ck is not None and ck.pages == PAGES
    # the writer's own automatic checkpoint is only the backstop
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP * PAGES
    seen: list[int] = []  # frames in the WAL after each commit
    for tx in range(150):  # ~4-7 pages a transaction: ~800 frames, ~12 times the threshold
        _write(store, tx)
        seen.append(_frames(path)[0])
        time.sleep(0.005)  # what an ingest batch spends outside its transaction (parse, convert)
    assert ck.runs >= 3, "the checkpoints ran on the checkpointer's thread"
    # restarted from its start again and again, never as far as the backstop at which SQLite
    # would checkpoint inside the writer's COMMIT
    restarts = sum(1 for before, after in zip(seen, seen[1:], strict=False) if after < before)
    assert restarts >= 5 and max(seen) < BACKSTOP * PAGES, seen
    # what was committed reads back exactly, through another connection
    with closing(sqlite3.connect(path)) as other:
        rows = other.execute("SELECT tx, n, body FROM t ORDER BY tx, n").fetchall()
    assert rows == [(tx, n, _row(tx, n)) for tx in range(150) for n in range(8)]
    store.close()
    assert ck._thread is not None and not ck._thread.is_alive()
    # the checkpointer's connection was closed first: the writer's close was the last one, which
    # checkpoints and removes the WAL
    assert not Path(f"{path}-wal").exists()
    with closing(sqlite3.connect(path)) as other:
        assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_unreadable_wal_index_leaves_the_checkpoints_to_the_writer(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A WAL index of another layout (or none): the writer checkpoints itself at the threshold,
    as it did before there was a thread for it."""
    store = SqliteStore(tmp_path / "db.sqlite3", page_size=PAGE, checkpoint_bytes=PAGES * PAGE,
                        background_checkpoints=True)
    store.execute("CREATE TABLE t (tx INTEGER, n INTEGER, body BLOB, PRIMARY KEY (tx, n))")
    monkeypatch.setattr(checkpointer_module, "wal_frames", lambda shm: None)
    _write(store, 0)
    assert store.checkpointer is None
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == PAGES
    for tx in range(1, 60):
        _write(store, tx)
    assert _frames(store.path)[0] <= PAGES + 8, "the writer's own checkpoints restarted the WAL"
    assert store.query("SELECT count(*) FROM t")[0][0] == 60 * 8
    store.close()


def test_no_thread_unless_asked_for_nor_in_memory(tmp_path: Path) -> None:
    """Off by default (measured: the checkpoint's CPU moved, not cut; README, tenth round): the
    writer's COMMIT checkpoints at the threshold, as before."""
    assert SqliteStore(":memory:", background_checkpoints=True).checkpointer is None
    store = SqliteStore(tmp_path / "db.sqlite3", checkpoint_bytes=PAGES * PAGE)
    assert store.checkpointer is None
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == PAGES  # 4 KiB pages: SQLite's own
    store.close()


_WRITER = """
import sys, time
from pathlib import Path
from tests.test_commit10_checkpoints import PAGE, PAGES, _write
from engine.repository.sqlite_store import SqliteStore

store = SqliteStore(Path(sys.argv[1]), page_size=PAGE, checkpoint_bytes=PAGES * PAGE, background_checkpoints=True)
store.execute("CREATE TABLE IF NOT EXISTS t (tx INTEGER, n INTEGER, body BLOB, PRIMARY KEY (tx, n))")
tx = int(sys.argv[2])
while True:
    _write(store, tx, rows=24)
    print(tx, store.checkpointer.runs, flush=True)  # committed
    tx += 1
"""


def test_kill_9_while_checkpoints_run_loses_no_committed_row(tmp_path: Path) -> None:
    """Three times: a writer commits transactions of 24 rows while its checkpointer copies the WAL
    in the background, and is killed at a checkpoint's pace; every transaction it reported
    committed is there, whole and exact, none is there in part, and the file is sound."""
    path = tmp_path / "db.sqlite3"
    committed = -1
    for rnd in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(committed + 1)], cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        runs_at_start = None
        for line in proc.stdout:
            tx, runs = map(int, line.split())
            committed = tx
            runs_at_start = runs if runs_at_start is None else runs_at_start
            if runs - runs_at_start >= 2 + rnd:  # a checkpoint has just been asked for or is running
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        proc.stdout.close()
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts = dict(db.execute("SELECT tx, count(*) FROM t GROUP BY tx").fetchall())
            bodies = db.execute("SELECT tx, n, body FROM t WHERE tx <= ?", (committed,)).fetchall()
        assert all(counts.get(tx) == 24 for tx in range(committed + 1)), "a committed transaction is missing"
        assert set(counts.values()) == {24}, "a transaction is there in part"
        assert all(body == _row(tx, n) for tx, n, body in bodies)
        committed = max(counts)  # one more may have committed before the kill landed
    assert committed > 20


_SERVE_SMALL_WAL = """
import sys, threading, time
from pathlib import Path
from engine.repository import checkpointer, sqlite_store
sqlite_store.WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024  # a checkpoint every few batches
sqlite_store.BACKGROUND_CHECKPOINTS = True
made = []
init = checkpointer.Checkpointer.__init__
def record(self, *args, **kwargs):
    init(self, *args, **kwargs)
    made.append(self)
checkpointer.Checkpointer.__init__ = record
def report():  # the background checkpoints made so far, for the test to see
    while True:
        Path(sys.argv[1] + ".new").write_text(str(sum(c.runs for c in made)))
        Path(sys.argv[1] + ".new").replace(sys.argv[1])
        time.sleep(0.01)
threading.Thread(target=report, daemon=True).start()
from engine.cli import main
sys.exit(main(["serve"]))
"""


@pytest.mark.slow
def test_kill_9_mid_stream_with_checkpoints_running_loses_no_acked_message(settings: Settings) -> None:
    """The ingest path over MLLP with the WAL checkpointed every 4 MiB on the background thread:
    kill -9 mid-stream, and every ACKed message is stored and processed with all its resources;
    the resend of all of them doubles nothing."""
    messages = [oru_lab(900 + i) for i in range(600)]
    runs = settings.data_dir.parent / "checkpoints"
    seen: list[int] = []
    # ~25 MB of WAL by 250 ACKs: checkpoints have run
    acked = kill_mid_stream([sys.executable, "-c", _SERVE_SMALL_WAL, str(runs)], settings, messages, after=250,
                            at_kill=lambda: seen.append(int(runs.read_text()) if runs.exists() else 0))
    assert seen[0] >= 1, f"the background checkpoints ran before the kill ({seen[0]})"
    with Engine(settings) as engine:
        assert_acked_kept(engine, messages, acked)
        assert engine.store.query("PRAGMA integrity_check")[0][0] == "ok"
