"""WAL checkpoints on a thread of their own, so that no ingest batch waits for one.

Why: SQLite runs its automatic checkpoint inside the COMMIT that takes the WAL past
``wal_autocheckpoint``: that commit copies every page changed since the last checkpoint into the
database file and fsyncs both files. For a 12-OBX lab batch of 50 on the bench's store that
was one commit in ~12, at ~30 ms of CPU and 60-80 ms of wall time (~45-90 us a message of the
ingest thread's CPU, more as the store grows), during which the batch's ACKs waited and the
ingest thread, the pipeline's one serial worker, did nothing else. Here the writer only looks,
after its COMMIT, at how far the WAL has grown (the WAL-index header in the ``-shm`` file: one
``pread``, ~2 us a commit), and past the threshold wakes this thread, which checkpoints on its
own connection in PASSIVE mode: alongside the writer, never blocking it (the sqlite3 module
releases the GIL while SQLite works).

Durability is SQLite's and unchanged: a checkpoint copies committed frames into the database
file and syncs (``synchronous=NORMAL`` syncs the WAL before copying and the database after);
a process killed in the middle leaves a WAL that the next open recovers. What this adds is only
who calls it and when.

The WAL must not grow without bound: the log restarts from its start at the first commit after
a checkpoint has copied every frame in it, and a checkpoint that ran while the writer committed
leaves that commit's frames behind. So after the WAL has passed the threshold, every commit that
leaves frames uncopied wakes the thread again (a small checkpoint, a few ms, that as a rule ends
before the next commit: an ingest batch takes tens of ms). Should the WAL still reach twice the
threshold (commits coming faster than a checkpoint's fsyncs), the writer copies the rest itself
right after its COMMIT (``committed`` answers ``CATCH_UP``), after the thread's running checkpoint
(``exclusive``): then all is copied and the next commit restarts the log. SQLite's own
``wal_autocheckpoint`` stays set on the writer at ``BACKSTOP`` times the threshold for writes
made outside a transaction block.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# The WAL-index header (https://sqlite.org/walformat.html, section 2.1; native byte order, the
# same since SQLite 3.7.0): the version at 0, ``mxFrame`` (frames in the WAL) at 16, and in the
# checkpoint information that follows the header's two copies, ``nBackfill`` (frames already
# copied into the database) at 96.
_WAL_INDEX_VERSION = 3007000
_HEADER = 136
_VERSION = struct.Struct("=I")
_MX_FRAME = 16
_BACKFILL = 96

# the writer's own automatic checkpoint, in multiples of the background threshold: what holds
# the WAL's length when this thread does not
BACKSTOP = 4

# checkpoints one wake-up runs back to back while the writer keeps leaving frames behind
_ROUNDS = 3

# what ``committed`` tells the writer
DONE = "done"  # nothing to do, or the thread is on it
CATCH_UP = "catch up"  # checkpoint now, on the writer's connection, inside ``exclusive()``
UNUSABLE = "unusable"  # the WAL index cannot be read: let SQLite checkpoint in the writer as before


def wal_frames(shm: int) -> tuple[int, int] | None:
    """(frames in the WAL, frames of them copied into the database), read from the WAL-index
    header through the open ``-shm`` file ``shm``; None when it is not such a header."""
    head = os.pread(shm, _HEADER, 0)
    if len(head) < _HEADER or _VERSION.unpack_from(head, 0)[0] != _WAL_INDEX_VERSION:
        return None
    return _VERSION.unpack_from(head, _MX_FRAME)[0], _VERSION.unpack_from(head, _BACKFILL)[0]


class Checkpointer:
    """Checkpoints the WAL of the database at ``path`` on a thread of its own, when the writer's
    ``committed()`` finds ``pages`` frames or more waiting to be copied (see module docstring).

    The thread starts at the first checkpoint it is asked for (a store that never writes that
    much never has one) and stops at ``close()``; ``runs`` counts the checkpoints it made."""

    def __init__(self, path: Path, *, pages: int) -> None:
        self.path = path
        self.pages = max(1, pages)
        self.runs = 0  # checkpoints made by the thread
        self.caught_up = 0  # by the writer, the thread having fallen behind (``CATCH_UP``)
        self._running = threading.Lock()  # held by whoever is checkpointing through this object
        self._shm: int | None = None
        self._usable = True  # False once the header could not be read: SQLite's own checkpoints then
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # start and close

    @property
    def usable(self) -> bool:
        """False when the WAL-index header could not be read: the writer must checkpoint itself."""
        return self._usable

    def committed(self) -> str:
        """The writer has committed: wake the thread if the WAL holds enough uncopied frames, or
        has passed the threshold and is not all copied yet (so that it restarts from its start);
        ``CATCH_UP`` when the WAL has reached twice the threshold that way, ``UNUSABLE`` when the
        header cannot be read (see module docstring)."""
        if not self._usable:
            return UNUSABLE
        if self._stop:
            return DONE
        try:
            if self._shm is None:
                self._shm = os.open(f"{self.path}-shm", os.O_RDONLY)
            frames = wal_frames(self._shm)
        except OSError:
            frames = None
        if frames is None:
            log.warning("cannot read the WAL index of %s: checkpoints stay in the writing thread", self.path)
            self._usable = False
            return UNUSABLE
        total, copied = frames
        waiting = total - copied if total >= copied else total
        if waiting >= self.pages:
            self._start()
            self._wake.set()
        elif total >= self.pages and waiting > 0:
            if total >= 2 * self.pages:
                return CATCH_UP
            self._start()
            self._wake.set()
        return DONE

    def exclusive(self) -> threading.Lock:
        """Held around a checkpoint: the writer's ``CATCH_UP`` waits for the thread's running one."""
        return self._running

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
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
                for _ in range(_ROUNDS):
                    with self._running:
                        # fetchall: a statement left unfinished keeps a read transaction open,
                        # which pins the WAL (it could then never restart)
                        [(busy, total, copied)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                    # another connection's checkpoint running, all copied, or a short WAL: enough
                    if busy or total <= copied or total < self.pages or self._stop:
                        break
        except sqlite3.Error:
            # the writer's own automatic checkpoint (``BACKSTOP``) holds the WAL from here on
            log.exception("background WAL checkpoints of %s stopped", self.path)
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running) and release the ``-shm`` file."""
        with self._lock:
            self._stop = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        if self._shm is not None:
            os.close(self._shm)
            self._shm = None
