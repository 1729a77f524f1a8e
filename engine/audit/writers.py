"""Which processes have the audit log open to append: a shared ``flock`` on a file beside it.

Why: a process that opens the log and finds records past the newest signature cannot tell, from
the records alone, a tail a live server appended less than a second ago (its seal is on the way)
from one a stopped process left (``kill -9``, a power cut), which nothing proves is what was
appended and which is signed marked ``recovered``. Every process that may append holds this lock
shared for its life (the kernel lets it go when the process dies, however it dies); an opener that
can take it exclusive knows no live process can own the tail, so the tail is *found*, and says so
in the log's database before it lets the lock go to shared (``AuditLog._note_found``: the first
signature over the tail, whichever writer signs it, is marked ``recovered``). One that
cannot leaves the tail to the live writers' seals and marks nothing: a ``huren audit checkpoint``
or a second ``--workers`` worker no longer stamps ``recovered`` over a live server's records,
a mark that would have hidden a real one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Protocol


class WritersLock(Protocol):
    """What the log asks of its writers' lock: this ``flock`` on SQLite, a lease on MongoDB
    (``engine.audit.lease``)."""

    def join(self) -> bool:
        """Become a writer; ``True`` when no other live writer holds the log (``alone``)."""

    def settle(self) -> bool:
        """When not alone at ``join`` and the log has an unsigned tail: whether the others turn out
        to be dead (``True``: alone after all)."""

    def share(self) -> None:
        """After the load and any note of a found tail: let later openers in."""

    def close(self) -> None: ...


class Writers:
    """This process's share of the writers' lock (``<log file>.writers``)."""

    def __init__(self, log_file: Path | str) -> None:
        self.path = Path(f"{log_file}.writers")
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self.alone = False

    def join(self) -> bool:
        """Take the lock exclusive if no other process holds it (then ``alone``: no live writer),
        otherwise shared (waiting out an opener that holds it exclusive while it loads)."""
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.alone = True
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            self.alone = False
        return self.alone

    def settle(self) -> bool:
        """The kernel's answer at ``join`` is final: a holder of the lock is alive."""
        return self.alone

    def share(self) -> None:
        """After the load: shared, as every live writer holds it."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (the lock goes with the descriptor)
            self._fd = None

    def __del__(self) -> None:
        self.close()
