"""The in-flight journal: the raw bytes of the batch the ingest worker is processing, in a file.

A batch's raw messages are committed to the message store in the same transaction as what they
became (one commit per batch, ACKs after it). A process that dies before that commit -- killed,
out of memory, a converter crashing the interpreter or looping until an operator kills it --
took with it the raw bytes of the whole batch. None of them was ACKed, so the senders resend,
but a message that itself kills the worker (a *poison* message) would kill it again on every
resend and every restart: the listener never got past it, and the other messages of its batch
were lost each time.

So, before a batch is processed, its raw messages are written here (one ``write`` per batch, no
``fsync``: a process dying keeps what it wrote in the operating system's cache, the same guarantee
as the database's own commits with ``synchronous=NORMAL``), and the file is emptied when the
batch's commit is done. The next start (``Ingestor.recover``) finds the journals whose process is
gone and processes their messages **one at a time**; each message records how many times a
process died while it was being processed. A message on which the process died twice, the last
time alone, is the poison: it is stored in the quarantine with that reason (ACK ``AE``, as for
any message the application could not process), never converted again, and its sender's resend
gets that answer; the other messages of its batch are processed as usual.

Each ingestor has a journal file of its own in ``HUREN_DATA_DIR/inflight/``, held under an
exclusive ``flock`` for as long as the process lives: a journal that can be locked belongs to a
process that is gone (several ``--workers`` processes each hold theirs). A record is one JSON line
``{"n": <messages in the batch>, "m": [{"raw": <base64>, "channel": ..., "peer": ..., "tries":
<deaths so far>}, ...]}``; only the last complete line counts.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("huren.ingest")

POISON_DEATHS = 2  # a message on which the process died this often, the last time alone, is quarantined


@dataclass(frozen=True)
class Pending:
    """A message a dead process was processing: its bytes, where it came from, how often a
    process died while processing it (this time included), and whether it was alone then."""

    raw: bytes
    channel: str
    peer: str
    deaths: int
    alone: bool

    @property
    def poison(self) -> bool:
        return self.deaths >= POISON_DEATHS and self.alone


class InFlightJournal:
    """This process's journal (created at its first batch) and the recovery of dead ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._path: Path | None = None
        self._dirty = False

    # -- this process's journal -----------------------------------------------------------
    def begin(self, messages: list[tuple[bytes, str, str, int]], encoded: Sequence[str] | None = None) -> None:
        """Record the batch about to be processed: ``(raw, channel, peer, tries)`` each. ``encoded``:
        each raw's base64 text already made (the ingest makes it once for the journal and the
        message's document: ``engine.messages.raw_text``), else made here."""
        fd = self._fd if self._fd is not None else self._open()
        if encoded is None:
            encoded = [base64.b64encode(raw).decode("ascii") for raw, _c, _p, _t in messages]
        elif len(encoded) != len(messages):
            raise ValueError(f"in-flight journal: {len(encoded)} encoded texts for {len(messages)} messages")
        line = orjson.dumps({"n": len(messages), "m": [
            {"raw": text, "channel": channel, "peer": peer, "tries": tries}
            for text, (_raw, channel, peer, tries) in zip(encoded, messages, strict=True)]}) + b"\n"
        os.pwrite(fd, line, 0)
        os.ftruncate(fd, len(line))
        self._dirty = True

    def end(self) -> None:
        """The batch is committed (or answered without a commit): nothing is in flight."""
        if self._dirty and self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:  # left as it is: recovering it later answers its messages as recorded
                log.exception("could not empty the in-flight journal")
                return
            self._dirty = False

    def _open(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.journal"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: nobody else holds it
        self._fd, self._path = fd, path
        return fd

    def close(self) -> None:
        """A clean stop with nothing in flight: the journal goes."""
        if self._fd is None or self._path is None:
            return
        if not self._dirty:
            with contextlib.suppress(OSError):
                self._path.unlink()
        os.close(self._fd)  # releases the lock: a journal left behind is recovered at the next start
        self._fd = self._path = None

    # -- journals of processes that are gone ----------------------------------------------
    @contextlib.contextmanager
    def dead(self) -> Iterator[list[Pending]]:
        """The messages of the journals whose process is gone, each once (the most deaths it saw),
        oldest journal first; the journals are deleted when the block ends without an error (and
        kept, locked until then, so that no other process recovers them meanwhile)."""
        held: list[tuple[Path, int]] = []
        try:
            for path in sorted(self.folder.glob("*.journal"), key=_mtime) if self.folder.is_dir() else []:
                if path == self._path:
                    continue
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                except FileNotFoundError:  # recovered by another process meanwhile
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a living process's journal
                    os.close(fd)
                    continue
                held.append((path, fd))
            found: dict[bytes, Pending] = {}
            for path, fd in held:
                for item in _read(path, fd):
                    earlier = found.get(item.raw)
                    if earlier is None or item.deaths > earlier.deaths:
                        found[item.raw] = item
            yield list(found.values())
            for path, _ in held:
                with contextlib.suppress(OSError):
                    path.unlink()
        finally:
            for _, fd in held:
                os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read(path: Path, fd: int) -> list[Pending]:
    """The batch a journal holds (its last complete line), each message with this death counted."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    lines = [line for line in data.split(b"\n") if line.strip()]
    for line in reversed(lines):
        try:
            record = orjson.loads(line)
            n = int(record["n"])
            return [Pending(base64.b64decode(m["raw"]), str(m.get("channel") or ""), str(m.get("peer") or ""),
                            int(m.get("tries") or 0) + 1, n == 1) for m in record["m"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("in-flight journal %s: an unreadable record is skipped", path.name)
    return []
