"""WAL checkpoints on a thread of their own, so that no ingest batch waits for one.

Off by default (``sqlite_store.BACKGROUND_CHECKPOINTS``): measured, it took the checkpoints'
CPU off the ingest thread but not out of the process (~1-3 % more CPU a message in all, no
faster batches on a loaded 2-core machine; README, tenth round). It pays where a core is idle.

Why: SQLite runs its automatic checkpoint inside the COMMIT that takes the WAL past
``wal_autocheckpoint``: that commit copies every page changed since the last checkpoint into the
database file and fsyncs both files. For 12-OBX lab batches of 50 that was one commit in ~12,
at ~25-30 ms of CPU and 80-300 ms of wall time (~45-90 us a message of the ingest thread's CPU,
more as the store grows), during which the batch's ACKs waited and the ingest thread, the
pipeline's one serial worker, did nothing else. Here the writer only looks, after its COMMIT, at
how far the WAL has grown (the WAL-index header in the ``-shm`` file: one ``pread``, ~2 us a
commit), and past the threshold wakes this thread, which checkpoints on its own connection in
PASSIVE mode, alongside the writer (the sqlite3 module releases the GIL while SQLite works).

Durability is SQLite's and unchanged: a checkpoint copies committed frames into the database
file and syncs (``synchronous=NORMAL`` syncs the WAL before copying and the database after); a
process killed in the middle leaves a WAL that the next open recovers. What changes is only
which thread calls it, and when.

The WAL must not grow without bound: the log restarts from its start at the first commit after
a checkpoint has copied every frame in it, and a checkpoint running while the writer commits
leaves that commit's frames behind (measured: with commits every few ms, never all copied). So
each wake-up is two checkpoints: the bulk alongside the writer, then what was committed
meanwhile (a batch or two: a few ms) holding the store's lock, so that no transaction of this
process commits in between; the ingest thread converts its next batch meanwhile, outside that
lock, and at worst waits those few ms, where it used to run the whole checkpoint itself. SQLite's
own ``wal_autocheckpoint`` stays set on the writer at ``BACKSTOP`` times the threshold: the bound
if the thread is gone, and for writes made outside a transaction block. The store keeps twice the
threshold of WAL file (``journal_size_limit``): frames appended past the threshold while the bulk
runs then overwrite blocks the file already has, where trimming it back to the threshold at
every restart made the next cycle allocate them again (+2-4 ms a commit, measured).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

# The WAL-index header (https://sqlite.org/walformat.html, section 2.1; native byte order, the
# same since SQLite 3.7.0): the version at 0, ``mxFrame`` (frames in the WAL) at 16, and in the
# checkpoint information that follows the header's two copies, ``nBackfill`` (frames already
# copied into the database) at 96.
_WAL_INDEX_VERSION = 3007000
_HEADER = 136
_U32 = struct.Struct("=I")
_MX_FRAME = 16
_BACKFILL = 96

# the writer's own automatic checkpoint, in multiples of the background threshold
BACKSTOP = 4


class Lock(Protocol):
    """The store's lock: held by a thread for a whole transaction."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


def wal_frames(shm: int) -> tuple[int, int] | None:
    """(frames in the WAL, frames of them copied into the database), read from the WAL-index
    header through the open ``-shm`` file ``shm``; None when it is not such a header."""
    head = os.pread(shm, _HEADER, 0)
    if len(head) < _HEADER or _U32.unpack_from(head, 0)[0] != _WAL_INDEX_VERSION:
        return None
    return _U32.unpack_from(head, _MX_FRAME)[0], _U32.unpack_from(head, _BACKFILL)[0]


class Checkpointer:
    """Checkpoints the WAL of the database at ``path`` on a thread of its own (see module
    docstring): ``committed()`` after each top-level COMMIT; ``lock`` is the store's.

    The thread starts at the first checkpoint it is asked for (a store that never writes that
    much never has one) and stops at ``close()``; ``runs`` counts its checkpoints and
    ``finished`` those of them made holding the store's lock."""

    def __init__(self, path: Path, *, pages: int, lock: Lock) -> None:
        self.path = path
        self.pages = max(1, pages)
        self.runs = self.finished = 0
        self._lock = lock
        self._shm: int | None = None
        self._usable = True  # False once the header could not be read
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # start and close

    def committed(self) -> bool:
        """The writer has committed: wake the thread if the WAL holds ``pages`` uncopied frames,
        or has passed that length and is not all copied (so that it restarts from its start).
        False when the WAL-index header cannot be read: the caller then lets SQLite checkpoint
        inside its COMMITs, as without this thread."""
        if not self._usable:
            return False
        try:
            if self._shm is None:
                self._shm = os.open(f"{self.path}-shm", os.O_RDONLY)
            frames = wal_frames(self._shm)
        except OSError:
            frames = None
        if frames is None:
            log.warning("cannot read the WAL index of %s: checkpoints stay in the writing thread", self.path)
            self._usable = False
            return False
        total, copied = frames
        if total - copied >= self.pages or (total >= self.pages and total > copied):
            self._start()
            self._wake.set()
        return True

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._starting:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._run, name="huren-wal-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conn = None
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")  # opening and the schema read; PASSIVE never waits
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                if self._checkpoint(conn)[0] or not self._behind():  # the bulk, alongside the writer
                    continue
                while not self._lock.acquire(timeout=0.05):  # then what it committed meanwhile
                    if self._stop:
                        return
                try:
                    self._checkpoint(conn)
                    self.finished += 1
                finally:
                    self._lock.release()
        except sqlite3.Error:
            # the writer's own automatic checkpoint (``BACKSTOP``) holds the WAL from here on
            log.exception("background WAL checkpoints of %s stopped", self.path)
        finally:
            if conn is not None:
                conn.close()

    def _behind(self) -> bool:
        """Whether the WAL holds frames no checkpoint has copied (committed during the last one)."""
        try:
            frames = wal_frames(self._shm) if self._shm is not None else None
        except OSError:
            frames = None
        return frames is None or frames[0] > frames[1]

    def _checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (another one was running, frames in the WAL, frames copied)."""
        # fetchall: a statement left unfinished keeps a read transaction open, which pins the WAL
        [(busy, total, copied)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.runs += 1
        return busy, total, copied

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and release the ``-shm`` file.
        Called holding the store's lock or not: the thread gives up waiting for it."""
        with self._starting:
            self._stop = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        if self._shm is not None and (thread is None or not thread.is_alive()):  # not under its feet
            os.close(self._shm)
            self._shm = None
