"""The audit log's append-only segment file: where a group of records goes first, in one ``write()``.

Every audited read appends a record before its response leaves. Through SQLite each group of
records paid a whole transaction (``BEGIN IMMEDIATE``, the insert, ``COMMIT``: ~12 system calls,
half of them ``fcntl`` locks, ~3 WAL frames of 4 KB for ~2 KB of records); measured on this
machine, one ``write()`` of a group's records costs 0.36 µs a record against 4.1 µs for the same
group through SQLite. So a group is written here, as frames, and the log moves the frames into
its leaf table later in large batches (``AuditLog.drain``: the background key indexer each second,
a due checkpoint, and every reader of the log before it reads), so every read of the log sees
every record.

Durability is the same as the database's: SQLite runs with ``synchronous=NORMAL``, which fsyncs
neither a commit nor this file; once ``write()`` has returned, the record is in the operating
system's hands and survives the death of any process (``kill -9``), not a power cut before the
kernel writes it out (as a commit under ``synchronous=NORMAL`` does not either).

Layout: a 16-byte header (``HURENSG1`` and a 64-bit generation), then frames. A frame is its
length (4 bytes), the CRC-32 of what follows the CRC, then the record's sequence number (8), the
count of tree nodes it completed (1), its leaf hash (32), those nodes (32 each) and the record's
bytes: exactly the row the leaf table stores (``engine.audit.leaves.Leaf``).

Several ``--workers`` processes append to one file: an exclusive ``flock`` serialises them, and
under it each first takes in what the others appended since it last looked (``sync``), so
sequence numbers continue without gaps or forks. When the frames have moved into the table the
file is emptied and its generation goes up (header first, then the truncation: a crash between
the two leaves frames the table already holds, which the next reader skips by their numbers); a
process whose generation is older reloads the right edge of the tree from the table.

**Keeping the lock (a lease).** A lone request's group paid the lock and the sync alone: ``flock``,
``fstat``, a read of the header, ``flock`` again (~10 µs of server CPU per audited read at one
connection, measured over HTTP). The event loop's appends may *keep* the lock past the group
(``keep``) for a few milliseconds (the log lets go on a timer, ``let_go``): while a process has held
the lock without a break since its last ``sync``, no other process can have written, so ``sync``
returns at once, and the next group is one ``write()``. Another process waits for the lock meanwhile
(its appends in a worker thread), and whichever process then finds records it did not write
(another worker's, another's drain) keeps the lock for no group in the next ``QUIET_SECONDS``, so
``--workers`` processes do not hand it round by timer. A process keeping the lock that dies
releases it with its open file, as any holder does. A second handle on the file in the same process
(a second log on the same data directory) asks a handle keeping the lock to let go before it
waits for it.

A torn tail (a process killed inside its ``write()``, before its requests were answered; or a
power cut) fails its length or CRC: it is cut off under the lock, at open and whenever a process
takes in the others' frames, and its bytes are kept beside the file (``*.torn-<generation>-
<offset>``) and logged, so nothing is thrown away unseen.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from engine.audit.leaves import HASH_SIZE, Leaf

log = logging.getLogger(__name__)

MAGIC = b"HURENSG1"
HEADER = struct.Struct("<8sQ")  # magic, generation
_HEAD = struct.Struct("<II")  # length of the body, CRC-32 of the body
_BODY = struct.Struct("<QB")  # seq, count of tree nodes; then leaf hash, nodes, record bytes
_FIXED = _BODY.size + HASH_SIZE
_BODY_LEAF = struct.Struct(f"<QB{HASH_SIZE}s")  # ``_BODY`` and the leaf hash: what ``encode`` packs in one call
MAX_FRAME = 1 << 28  # a length beyond this is damage, not a record
_GENERATIONS = 1 << 63
_NONZERO = re.compile(rb"[^\x00]")
_ZERO_LENGTH = bytes(4)


QUIET_SECONDS = 1.0  # after finding another process's records, keep the lock past no group for this long
_keeping: weakref.WeakSet[Segment] = weakref.WeakSet()  # handles keeping the lock (see ``Segment.keep``)

_forks = [0]  # forks of this process so far, counted in the child: a handle opened before is the parent's
os.register_at_fork(after_in_child=lambda: (_forks.__setitem__(0, _forks[0] + 1), _keeping.clear()))


class SegmentDamaged(RuntimeError):
    """The file is not a segment (wrong header) or is damaged in its middle: left as it is rather
    than overwritten or cut."""


def encode(rows: Sequence[Leaf]) -> bytes:
    """The frames of ``rows``, ready for one ``write()``. One row (every lone request's append) is
    framed without the list and the join (perfr36); the number, the count of nodes and the leaf hash
    (always a SHA-256 digest: 32 bytes) packed in one ``struct`` call (forty-first round, perfa41)."""
    if len(rows) == 1:  # (nothing bound first: each name is used once)
        seq, leaf, data, nodes = rows[0]
        body = (_BODY_LEAF.pack(seq, len(nodes) // HASH_SIZE, leaf) + nodes + data if nodes
                else _BODY_LEAF.pack(seq, 0, leaf) + data)
        return _HEAD.pack(len(body), zlib.crc32(body)) + body
    pack_body, pack_head, crc32 = _BODY_LEAF.pack, _HEAD.pack, zlib.crc32
    parts: list[bytes] = []
    for seq, leaf, data, nodes in rows:
        if nodes:
            body = pack_body(seq, len(nodes) // HASH_SIZE, leaf) + nodes + data
        else:
            body = pack_body(seq, 0, leaf) + data
        parts.append(pack_head(len(body), crc32(body)))
        parts.append(body)
    return b"".join(parts)


def frame_size(row: Leaf) -> int:
    """Bytes of ``row``'s frame: head, seq, count, leaf hash, nodes, record bytes."""
    return _HEAD.size + _FIXED + len(row[3] or b"") + len(row[2])


def decode(buf: bytes) -> tuple[list[Leaf], int]:
    """The whole frames at the start of ``buf`` and where the last one ends: a frame that is cut
    short or fails its CRC ends the valid part."""
    rows: list[Leaf] = []
    pos, end = 0, len(buf)
    view = memoryview(buf)
    unpack_head, unpack_body, crc32 = _HEAD.unpack_from, _BODY.unpack_from, zlib.crc32
    while pos + _HEAD.size <= end:
        length, crc = unpack_head(buf, pos)
        start, stop = pos + _HEAD.size, pos + _HEAD.size + length
        if length < _FIXED or length > MAX_FRAME or stop > end or crc32(view[start:stop]) != crc:
            break
        seq, count = unpack_body(buf, start)
        nodes_end = start + _FIXED + count * HASH_SIZE
        if nodes_end > stop:
            break
        leaf = buf[start + _BODY.size:start + _FIXED]
        rows.append((seq, leaf, buf[nodes_end:stop], buf[start + _FIXED:nodes_end] if count else None))
        pos = stop
    return rows, pos


def torn(tail: bytes) -> bool:
    """Whether ``tail`` (from the first frame that fails to ``decode``) is a torn tail: a last
    write cut short, or one the kernel wrote out only in part (the rest zeros, after a power cut:
    the file's size was extended before its pages reached the disk), or a last frame whose bytes
    are wrong. It is damage in the middle of the file only when a whole frame decodes somewhere
    after the bad one: cutting there would drop records whose requests were answered. (Where the
    next frame starts is not known when the bad frame's length is damaged, so every offset is
    tried: only on this rare path, and a window that cannot hold a frame's length is passed over
    cheaply.)"""
    return _frame_after(tail) is None


def _frame_after(buf: bytes) -> int | None:
    """The first offset after 0 at which a whole frame (length in range, CRC right) decodes."""
    end = len(buf)
    view = memoryview(buf)
    unpack_head, crc32 = _HEAD.unpack_from, zlib.crc32
    pos = 1
    while pos + _HEAD.size + _FIXED <= end:
        if buf[pos:pos + 4] == _ZERO_LENGTH:  # a run of zeros holds no frame: go to its end
            nonzero = _NONZERO.search(buf, pos + 4)
            if nonzero is None:
                return None
            pos = nonzero.start() - 3  # the first window holding that byte
            continue
        length, crc = unpack_head(buf, pos)
        stop = pos + _HEAD.size + length
        if _FIXED <= length <= MAX_FRAME and stop <= end and crc32(view[pos + _HEAD.size:stop]) == crc \
                and decode(buf[pos:stop])[1] == stop - pos:
            return pos
        pos += 1
    return None


class Segment:
    """One process's handle on the segment file. Not thread-safe: the log calls it under its lock."""

    def __init__(self, path: Path, owner_lock: threading.RLock | None = None) -> None:
        """``owner_lock`` is the lock under which the owner uses this handle: another handle in the
        process takes it to ask this one to let go of a kept lock (``keep``)."""
        self.path = path
        self.generation: int | None = None  # the header's generation when this process last looked
        self.end = 0  # where the frames this process has taken in (or written) end
        self._depth = 0
        self._kept = False  # the lock is kept past the last release (``keep``): one level of ``_depth``
        self._since_sync = False  # the lock has been held without a break since the last ``sync``
        self._quiet_from = 0.0  # monotonic time from which ``keep`` may keep the lock
        self._owner_lock = owner_lock
        self._open()

    def _open(self) -> None:
        """Open the file for this process. ``flock`` belongs to the open file, which a fork shares:
        a child that inherited this handle opens its own, or it would not exclude its parent."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fork = _forks[0]
        st = os.fstat(self.fd)
        self._file = (st.st_dev, st.st_ino)  # which file, however its path was spelled
        self._closer = weakref.finalize(self, os.close, self.fd)
        # not at interpreter exit: a log left open keeps its daemon background thread, which would meet
        # the descriptor closed under it (EBADF, logged as a failed tick); the process's end closes it
        self._closer.atexit = False
        self.generation = None
        self._depth, self._kept, self._since_sync = 0, False, False

    # -- the lock (an exclusive flock; re-entrant within the process)
    def acquire(self, blocking: bool = True) -> bool:
        if self._fork != _forks[0]:  # forked since it was opened: the handle and its lock are the parent's
            # (counted at the fork rather than asked of the kernel: one system call less per group)
            self._closer()  # (closing this copy releases nothing the parent holds)
            self._open()
        if self._depth == 0:
            if blocking and _keeping:
                self._others_let_go()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._since_sync = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def keep(self) -> None:
        """Under the lock: keep it past the caller's ``release`` until ``let_go``, unless another
        process's records were found in the last ``QUIET_SECONDS`` (see the module docstring)."""
        if not self._kept and time.monotonic() >= self._quiet_from:
            self._kept = True
            self._depth += 1
            _keeping.add(self)

    def let_go(self) -> None:
        """Release a lock kept by ``keep`` (under the owner's lock, as every use of the handle). In a
        child forked meanwhile the lock is the parent's: nothing to release here (``acquire`` reopens)."""
        if self._kept and self._fork == _forks[0]:
            self._kept = False
            _keeping.discard(self)
            self.release()

    @property
    def kept(self) -> bool:
        return self._kept and self._fork == _forks[0]

    def _others_let_go(self) -> None:
        """Before waiting for the lock: another handle of this process on the same file keeping it
        (a log not closed whose loop has stopped, so its timer never fires) lets go first, or this
        thread would wait for it forever."""
        while True:  # (a snapshot: another thread's ``keep`` may add to the set meanwhile)
            try:
                others = list(_keeping)
                break
            except RuntimeError:
                continue
        for other in others:
            lock = other._owner_lock
            if other is self or other._file != self._file or lock is None or not other.kept:
                continue
            # (not waiting long for its owner: one busy in a transaction let go before it began)
            if lock.acquire(timeout=0.05):
                try:
                    other.let_go()
                finally:
                    lock.release()

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def pending(self) -> bool:
        """Whether the file holds frames (no lock: a hint, for readers deciding to drain)."""
        if self.fd < 0:  # (closed: see ``close``)
            self._open()
        return os.fstat(self.fd).st_size > HEADER.size

    def forget(self) -> None:
        """Make the next ``sync`` return every frame, as after another process's drain."""
        self.generation = None
        self._since_sync = False

    # -- under the lock
    def sync(self) -> tuple[bool, list[Leaf]]:
        """Take in what other processes appended since this one last looked: ``(reset, rows)``.
        ``reset`` says the file was drained and restarted since (or this process never looked):
        ``rows`` are then every frame in it, and the caller reloads the rest from the table; else
        they are the frames appended after ``end``. A torn tail is cut off. Nothing to do when the
        lock has been held without a break since the last ``sync``: no one else can have written."""
        if self._since_sync:
            return False, []
        generation, size = self._header(os.fstat(self.fd).st_size)
        if generation == self.generation and size == self.end:
            self._since_sync = True
            return False, []  # nothing new: the usual case, two system calls
        if self.generation is not None:  # another process appended or drained: keep the lock no more
            self._quiet_from = time.monotonic() + QUIET_SECONDS
        reset = generation != self.generation or size < self.end
        start = HEADER.size if reset else self.end
        buf = os.pread(self.fd, size - start, start) if size > start else b""
        rows, used = decode(buf)
        if start + used < size:
            if not torn(buf[used:]):
                raise SegmentDamaged(
                    f"{self.path}: the frame at byte {start + used} (after record "
                    f"{rows[-1][0] if rows else 'none'} of this file) fails its CRC with whole records after it: "
                    "damaged in its middle, not a torn tail, so nothing was cut off and no record can be "
                    "appended; run `huren audit verify`, then move the file aside")
            self._cut(start + used, buf[used:], generation)
        self.generation, self.end = generation, start + used
        self._since_sync = True
        return reset, rows

    def append(self, rows: Sequence[Leaf], keep: bool = False) -> None:
        """Write the frames of ``rows`` (``encode``) at the end, in one ``write()`` (after ``sync``),
        and keep the lock past the caller's release if asked (``keep``). A short or failed write is
        undone before the error is raised, so no partial frame is left behind."""
        if rows:
            frames = encode(rows)
            try:
                written = os.pwrite(self.fd, frames, self.end)
            except BaseException:
                os.ftruncate(self.fd, self.end)
                raise
            if written != len(frames):
                os.ftruncate(self.fd, self.end)
                raise OSError(f"audit segment: short write ({written} of {len(frames)} bytes)")
            self.end += written
        if keep and not self._kept:  # (kept already: nothing to do, no call)
            self.keep()

    def frames_of(self, rows: Sequence[Leaf]) -> tuple[int, int, int] | None:
        """Where the file's frames are ``(fd, offset, length)`` when they are exactly ``rows`` (every
        frame, in order, as the log holds them: the first and the last frame checked where they
        must be), for a copy without reading them into this process; else ``None``."""
        size = self.end - HEADER.size
        last = rows[-1]
        at = self.end - frame_size(last)
        if size <= 0 or at < HEADER.size:
            return None
        head = os.pread(self.fd, _HEAD.size + _BODY.size, HEADER.size)
        tail = os.pread(self.fd, _HEAD.size + _BODY.size, at)
        if len(head) < 17 or len(tail) < 17 or _BODY.unpack_from(head, 8)[0] != rows[0][0] \
                or _BODY.unpack_from(tail, 8)[0] != last[0]:
            return None
        return self.fd, HEADER.size, size

    def reset(self) -> None:
        """Empty the file once its frames are in the table: the new generation first, then the
        truncation (see the module docstring for why in that order)."""
        generation = ((self.generation or 0) + 1) % _GENERATIONS
        os.pwrite(self.fd, HEADER.pack(MAGIC, generation), 0)
        os.ftruncate(self.fd, HEADER.size)
        self.generation, self.end = generation, HEADER.size

    def close(self) -> None:
        self._kept, self._depth, self._since_sync = False, 0, False
        _keeping.discard(self)
        self._closer()  # (closing the file releases its lock)
        # never a file that reused the number: a use after close (a log used again once closed)
        self.fd, self._fork = -1, -1  # opens the file again, as after a fork

    # -- helpers
    def _header(self, size: int) -> tuple[int, int]:
        """The file's generation and size; a new (or torn-at-birth) file gets its header now."""
        if size >= HEADER.size:
            magic, generation = HEADER.unpack(os.pread(self.fd, HEADER.size, 0))
            if magic != MAGIC:
                raise SegmentDamaged(f"{self.path} is not an audit segment file; move it away and restart")
            return int(generation), size
        # a random start: a file made again can never be taken for the one a process knew
        generation = int.from_bytes(os.urandom(8), "little") % _GENERATIONS
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, HEADER.pack(MAGIC, generation), 0)
        self.generation = None
        return generation, HEADER.size

    def _cut(self, offset: int, tail: bytes, generation: int) -> None:
        """Cut a torn tail off, keeping its bytes beside the file."""
        kept = self.path.with_name(f"{self.path.name}.torn-{generation}-{offset}")
        try:
            kept.write_bytes(tail)
        except OSError:
            log.exception("audit: could not keep the torn tail of %s", self.path)
        log.warning("audit: %s ended in %d bytes that are not a whole record (a write cut short by a crash); "
                    "cut off, kept in %s", self.path, len(tail), kept.name)
        os.ftruncate(self.fd, offset)


def segment_path(database: Path) -> Path:
    """The segment file beside the log's database file (``audit.sqlite3`` -> ``audit.segment``)."""
    return database.with_name(database.stem + ".segment")
