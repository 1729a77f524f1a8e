"""Where the audit log keeps its records once they leave the segment file: append-only record files
beside its database, found through a small index table (storage layout 3, SQLite only).

An audited read's record is first one ``write()`` to the segment file (``engine.audit.segment``);
the drain then moved it into the leaf table, one row per record, and that cost ~2-3.5 µs of CPU a
record (measured in the drain: ``executemany`` of ~350-byte rows, their WAL pages and the WAL's
checkpoints writing them a second time), as much as the append it followed. The frames the
segment holds are already the complete leaf rows (sequence number, leaf hash, the tree nodes it
completed, the record's bytes; each with its CRC), so the drain now copies those bytes, in one
``pwrite``, to the end of the current record file and advances its row in ``audit_files`` (first
and last sequence number, how many bytes are the log's, a rewrite counter) in the same database
transaction: one row per drain instead of one per record, a few µs per drain in all.

What a row of ``audit_files`` states is what the log holds: a file's bytes past its ``size`` are an
append whose transaction never committed (a crash between the ``pwrite`` and the commit); the next
append cuts them off and writes there, and readers never read past ``size``. The records are still
in the segment file then, so nothing is lost (the segment is emptied only after the commit). A file
is closed for appends past ``ROLL_BYTES`` and the next drain starts a new one named by its first
sequence number. Durability is the segment's and SQLite's under ``synchronous=NORMAL``: handed to
the operating system before the commit that indexes it; no ``fsync``.

Readers reach a record by sequence number through a per-file list of frame offsets, built once by
scanning the file (CRC-checked) and extended as the file grows. A frame that fails its CRC in the
middle of a file (damage, not a crash: a committed size covers it) ends what can be read of that
file: the records from there on are missing for every reader, and ``huren audit verify`` names the
first of them; an error names the file and offset, and the log appends nothing more
(``first_unreadable``: a record numbered from where reading stopped would take the number of one
already answered). The same ``engine.audit.leaves.LeafTable`` port
serves them with the earlier layouts' rows (records a version before this one moved into
``audit_leaves`` stay there and are read from there).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import os
import stat
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.audit.leaves import Leaf
from engine.audit.merkle import leaf_hash
from engine.audit.segment import decode, encode, frame_size
from engine.repository.port import DuplicateKey
from engine.repository.sqlite_store import SqliteStore

log = logging.getLogger(__name__)

TABLE = "audit_files"
MAGIC = b"HURENRF1"
HEADER = struct.Struct("<8sQ")  # magic, the sequence number the file was started at
ROLL_BYTES = 64 << 20  # a file past this size takes no more appends: the next drain starts a new one
LAYOUT = 3  # audit_meta/layout: records kept in record files (1: documents, 2: audit_leaves rows)

# Whether a damaged file's records (rows[i] is record entry.first + i, each hashing to its leaf) are
# the log's by something kept outside the file: the log's latest signed checkpoint (``AuditLog``)
Prover = Callable[["FileEntry", Sequence[Leaf]], bool]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One row of ``audit_files``."""

    first: int
    last: int
    size: int
    gen: int


@dataclass(slots=True)
class _Offsets:
    """What a scan of one file found: its frames' sequence numbers and where each starts."""

    gen: int
    scanned: int  # bytes scanned (the committed size when last looked, or where damage stopped it)
    size: int  # the committed size when last looked
    seqs: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    damaged: bool = False
    ident: tuple[int, ...] | None = None  # a damaged file: which file was scanned (``_identity``)


class RecordFiles:
    """The record files of one log and their index table. Writers call ``append`` and ``rewrite``
    inside the log database's write transaction (which serialises them across processes)."""

    def __init__(self, store: SqliteStore, directory: Path) -> None:
        self.store = store
        self.directory = directory
        store.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, "
                      "size INTEGER NOT NULL, gen INTEGER NOT NULL DEFAULT 0)")
        self._offsets: dict[int, _Offsets] = {}
        # re-entrant: proving a damaged file (``prover``) reads tree nodes kept in the other files
        self._scan_lock = threading.RLock()
        # set by the log: proves a damaged file's records against what is kept outside the file (its
        # own leaf hashes prove nothing: a forger recomputes them with the CRCs); ``None``: unproven
        self.prover: Prover | None = None
        self._proving: set[int] = set()  # files being proven now (a nested read of one reads nothing)
        self._notes_mark: tuple[int, int] | None = None  # the damage notes' directory when last looked at
        # per damaged file (by its first record): the first of its records that cannot be read, as
        # the last scan found; the log refuses appends while any is known (``first_unreadable``; the
        # log's damage check on every append looks at the dict itself: empty, nothing is damaged)
        self.unreadable: dict[int, int] = {}
        # per file (by its first record): another file read in its place; only ``huren audit repair``
        # sets one, on its own handle, to verify a repaired file before it replaces the damaged one
        self._instead: dict[int, Path] = {}

    def read_instead(self, first: int, path: Path) -> None:
        """Read file ``first``'s records from ``path`` on this handle (writes are not redirected:
        a handle that reads a staged file must not append). Its earlier scan is forgotten."""
        with self._scan_lock:
            self._instead[first] = path
            self._offsets.pop(first, None)
            self.unreadable.pop(first, None)

    def recheck(self) -> int | None:
        """Scan again every file this process found damaged, if what is at its path is no longer
        the file it scanned (``huren audit repair`` renames a verified file into place), and return
        ``first_unreadable``. Why: a repair counts its rewrite in the index, which makes every process
        scan again; but a repair killed between its rename and its commit leaves a verified file
        in place uncounted, and a damaged file that is not the newest is not read by the log's own
        reload: either way a server would refuse every request until restarted."""
        if not self.unreadable:
            return None
        entries = {entry.first: entry for entry in self.entries()}
        for first in list(self.unreadable):
            entry = entries.get(first)
            if entry is None:  # (no longer indexed: nothing the log holds is missing there)
                with self._scan_lock:
                    self.unreadable.pop(first, None)
                    self._offsets.pop(first, None)
                continue
            self._scan(entry)  # rescans when the file changed (``_scan``), else what it found stands
        return self.first_unreadable()

    def first_unreadable(self) -> int | None:
        """The first record this process found the index to hold but could not read (a record file
        damaged in its middle, missing, or not a record file), or ``None``."""
        return min(self.unreadable.values()) if self.unreadable else None  # min(default=) parses a keyword

    def _damage_note(self, first: int) -> Path:
        """Where a file found damaged is noted (beside the record files' directory, not in it), so
        that a process started later proves it record by record too before taking it whole
        (a file renamed over it with its CRCs recomputed is not a repair)."""
        return self.directory.with_name(self.directory.stem + ".damage") / f"{first:012d}"

    def _note_damage(self, first: int) -> None:
        note = self._damage_note(first)
        try:
            note.parent.mkdir(exist_ok=True)
            note.touch()
        except OSError as exc:  # (a read-only directory: this process still refuses appends)
            log.warning("audit: could not note the damage of record file %d in %s: %s", first, note, exc)

    def take_notes(self) -> bool:
        """Take in the damage other processes noted since the last look (one ``stat`` of the notes'
        directory; listed only when it changed): a file this process scanned healthy and another
        found damaged is then refused here too until proven on its next look. Why: a process reads
        a file's note only at its first look at it, so a sibling worker went on appending on top of
        a file another worker had found damaged. Whether any was taken."""
        notes = self._damage_note(0).parent
        try:
            st = os.stat(notes)
        except FileNotFoundError:
            self._notes_mark = None
            return False
        except OSError as exc:
            raise _notes_unreadable(notes, exc) from exc
        mark = (st.st_ino, st.st_mtime_ns)
        if mark == self._notes_mark:
            return False
        try:
            names = os.listdir(notes)
        except OSError as exc:
            raise _notes_unreadable(notes, exc) from exc
        self._notes_mark = mark
        taken = False
        with self._scan_lock:
            for name in names:
                if not name.isdigit():
                    continue
                known = self._offsets.get(int(name))
                if known is not None and not known.damaged:  # scanned whole here, noted damaged there
                    known.damaged, known.ident = True, None  # (looked at again, as damaged, by ``recheck``)
                    self.unreadable[int(name)] = int(name)
                    taken = True
        return taken

    def _damage_seen(self, first: int) -> bool:
        """Whether a process found file ``first`` damaged and none has proven it whole since: one
        ``stat`` at a process's first look at a file, none in a healthy log's normal operation."""
        note = self._damage_note(first)
        try:
            return note.exists()
        except OSError as exc:  # (``exists`` raises on a directory this process cannot search)
            raise _notes_unreadable(note.parent, exc) from exc

    def path(self, first: int) -> Path:
        return self.directory / f"{first:012d}.records"

    def _read_path(self, first: int) -> Path:
        return self._instead.get(first) or self.path(first)

    def entries(self) -> list[FileEntry]:
        return [FileEntry(*row) for row in self.store.query(
            f"SELECT first, last, size, gen FROM {TABLE} ORDER BY first")]

    def last_seq(self) -> int | None:
        row = self.store.query(f"SELECT max(last) FROM {TABLE}")
        return row[0][0] if row else None

    # ------------------------------------------------------------------ writing
    def append(self, rows: Sequence[Leaf], source: tuple[int, int, int] | None = None) -> None:
        """Add ``rows`` (ascending, after every record held) at the end of the current file, or of a
        new one. ``source`` ``(fd, offset, length)``: where their frames already are (the segment
        file), copied by the kernel (``copy_file_range``) rather than read in and written out
        again. In the caller's transaction."""
        if not rows:
            return
        entries = self.store.query(f"SELECT first, last, size, gen FROM {TABLE} ORDER BY first DESC LIMIT 1")
        current = FileEntry(*entries[0]) if entries else None
        if current is not None and rows[0][0] <= current.last:
            raise DuplicateKey(f"{TABLE}: record {rows[0][0]} is held already")
        last = rows[-1][0]
        if current is None or current.size >= ROLL_BYTES:
            self.directory.mkdir(parents=True, exist_ok=True)
            first, at = rows[0][0], HEADER.size
            fd = os.open(self.path(first), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        else:
            first, at = current.first, current.size
            fd = os.open(self.path(first), os.O_RDWR | os.O_CLOEXEC)
        try:
            if current is None or at == HEADER.size:
                _write_all(fd, HEADER.pack(MAGIC, first), 0)
            elif os.fstat(fd).st_size != at:  # an append that never committed: its bytes go
                os.ftruncate(fd, at)
            length = _copy(source, fd, at) if source is not None else _write_all(fd, encode(rows), at)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, at)
            raise
        finally:
            os.close(fd)
        if at == HEADER.size:
            self.store.execute(f"INSERT OR REPLACE INTO {TABLE} (first, last, size, gen) VALUES (?, ?, ?, 0)",
                               (first, last, at + length))
        else:
            self.store.execute(f"UPDATE {TABLE} SET last = ?, size = ? WHERE first = ?", (last, at + length, first))

    def _write_new(self, path: Path, first: int, frames: bytes) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, HEADER.pack(MAGIC, first) + frames, 0)
        finally:
            os.close(fd)

    def rewrite(self, entry: FileEntry, rows: Sequence[Leaf]) -> None:
        """Replace file ``entry``'s records with ``rows`` (a tool's or a test's change of stored
        records, through the ``Collection`` port: the log itself never rewrites). A new file is
        written beside and renamed over the old one; its row says the new size and counts the
        rewrite, so every process scans it again. In the caller's transaction."""
        tmp = self.path(entry.first).with_suffix(".rewrite")
        frames = encode(rows)
        self._write_new(tmp, entry.first, frames)
        os.replace(tmp, self.path(entry.first))
        last = max([entry.last, *(row[0] for row in rows)])
        self.store.execute(f"UPDATE {TABLE} SET last = ?, size = ?, gen = gen + 1 WHERE first = ?",
                           (last, HEADER.size + len(frames), entry.first))

    # ------------------------------------------------------------------ reading
    def covering(self, seq: int, entries: Sequence[FileEntry] | None = None) -> FileEntry | None:
        """The file whose range holds ``seq`` (its first .. last)."""
        for entry in self.entries() if entries is None else entries:
            if entry.first <= seq <= entry.last:
                return entry
        return None

    def rows(self, lo: int, hi: int, *, limit: int | None = None, descending: bool = False,
             entries: Sequence[FileEntry] | None = None) -> list[Leaf]:
        """The records ``lo`` .. ``hi`` held, in order (newest first when ``descending``), at most
        ``limit`` of them."""
        out: list[Leaf] = []
        files = [e for e in (self.entries() if entries is None else entries) if e.last >= lo and e.first <= hi]
        for entry in reversed(files) if descending else files:
            want = None if limit is None else limit - len(out)
            if want is not None and want <= 0:
                break
            found = self._read(entry, lo, hi, want, descending)
            if descending:
                found.reverse()
            out.extend(found)
        return out

    def file_rows(self, entry: FileEntry) -> list[Leaf]:
        return self._read(entry, entry.first, max(entry.last, entry.first))

    def _read(self, entry: FileEntry, lo: int, hi: int, limit: int | None = None,
              last: bool = False) -> list[Leaf]:
        """The records ``lo`` .. ``hi`` of one file, ascending: only the first (or, ``last``, the
        final) ``limit`` of them are read."""
        offsets = self._scan(entry)
        seqs = offsets.seqs
        i, j = bisect.bisect_left(seqs, lo), bisect.bisect_right(seqs, hi)
        if limit is not None and j - i > limit:
            i, j = (j - limit, j) if last else (i, i + limit)
        if i >= j:
            return []
        start = offsets.starts[i]
        stop = offsets.starts[j] if j < len(seqs) else offsets.scanned
        fd = os.open(self._read_path(entry.first), os.O_RDONLY | os.O_CLOEXEC)
        try:
            buf = os.pread(fd, stop - start, start)
        finally:
            os.close(fd)
        rows, _used = decode(buf)
        return rows

    def _scan(self, entry: FileEntry) -> _Offsets:
        """The offsets of ``entry``'s frames, scanning only what was appended since the last look.

        A file this process found damaged is scanned again only when another file is at its path
        (or the index counted a rewrite), and is taken as whole again only when every record in it
        is the one the index holds (``_unproven``): passing its length and CRC proves nothing of a
        file renamed into place (CRCs can be recomputed over altered bytes)."""
        with self._scan_lock:
            if entry.first in self._proving:  # (read while proving another damaged file: not proven)
                return _Offsets(entry.gen, HEADER.size, HEADER.size, damaged=True)
            known = self._offsets.get(entry.first)
            path = self._read_path(entry.first)
            if known is not None and known.gen == entry.gen and known.size == entry.size and (
                    not known.damaged or known.ident == _identity(path)):  # (damaged: the same file still)
                return known
            # damaged before: as this process found it, or (its first look) as one before it did
            was_damaged = known.damaged if known is not None else self._damage_seen(entry.first)
            if known is None or known.gen != entry.gen or entry.size < known.size or known.damaged:
                known = _Offsets(entry.gen, HEADER.size, HEADER.size)
            ident: tuple[int, ...] | None = None
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                # which file this is, from the descriptor read (not the path: it may be swapped meanwhile)
                st = os.fstat(fd)
                ident = _identity_of(st)
                if not stat.S_ISREG(st.st_mode):  # a directory opens read-only too
                    os.close(fd)
                    raise IsADirectoryError(errno.EISDIR, "not a regular file")
            except OSError as exc:  # missing, not a file, not readable: damage, not a crash
                why = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc.strerror or exc})"
                log.error("audit: record file %s is %s: records %d-%d cannot be read", path, why,
                          entry.first, entry.last)
                known.damaged, known.size, known.ident = True, entry.size, ident
                self._offsets[entry.first] = known
                self.unreadable[entry.first] = entry.first
                self._note_damage(entry.first)
                return known
            try:
                if known.scanned == HEADER.size:
                    magic, _first = HEADER.unpack(os.pread(fd, HEADER.size, 0).ljust(HEADER.size, b"\0"))
                    if magic != MAGIC:
                        log.error("audit: %s is not an audit record file: records %d-%d cannot be read",
                                  path, entry.first, entry.last)
                        known.damaged, known.size, known.ident = True, entry.size, ident
                        self._offsets[entry.first] = known
                        self.unreadable[entry.first] = entry.first
                        self._note_damage(entry.first)
                        return known
                buf = os.pread(fd, entry.size - known.scanned, known.scanned)
            finally:
                os.close(fd)
            rows, used = decode(buf)
            bad = None
            nested = bool(self._proving)  # read for another damaged file's proof, which reads its nodes
            if was_damaged and known.scanned + used == entry.size:  # whole again: proven, or damaged still
                bad = _unproven(rows, entry)
                if bad is not None:
                    log.error("audit: record file %s, found damaged, was replaced by one whose record %d is not "
                              "the one the log holds (its bytes do not hash to its leaf, or a record is out of "
                              "place): not a verified repair; run `huren audit repair --from <a backup>`",
                              path, rows[bad][0] if bad < len(rows) else entry.last)
                    rows = rows[:bad]
                elif not nested and not self._signed(entry, rows):
                    log.error("audit: record file %s, found damaged, was replaced by one whose records are not "
                              "those the log's latest signed checkpoint states (altered and re-hashed): not a "
                              "verified repair; run `huren audit repair --from <a backup>`", path)
                    bad, rows = 0, []
            pos = known.scanned
            for row in rows:
                known.seqs.append(row[0])
                known.starts.append(pos)
                pos += frame_size(row)
            known.scanned, known.size = pos, entry.size
            self.unreadable.pop(entry.first, None)
            if pos < entry.size or bad is not None:
                known.damaged, known.ident = True, ident
                self.unreadable[entry.first] = known.seqs[-1] + 1 if known.seqs else entry.first
                self._note_damage(entry.first)
                log.error("audit: record file %s is damaged at byte %d (a frame fails its length or CRC "
                          "inside what the log committed, or a record is not the log's): the records after "
                          "it cannot be read; run `huren audit verify`, then `huren audit repair --from "
                          "<a backup>`", path, pos)
            elif was_damaged and nested:  # read whole for that proof (its root takes these records' nodes:
                # forged ones fail it); proven on its own at its next look, refused until then
                known.damaged, known.ident = True, None
                self.unreadable[entry.first] = entry.first
            elif was_damaged and entry.first not in self._instead:  # proven whole: damage no longer noted
                with contextlib.suppress(OSError):
                    self._damage_note(entry.first).unlink()
            self._offsets[entry.first] = known
            return known


    def _signed(self, entry: FileEntry, rows: Sequence[Leaf]) -> bool:
        """Whether ``prover`` proves a damaged file's records (each in place and hashing to its
        leaf) the log's; not proven without one, or when it cannot read what it needs."""
        if self.prover is None:
            return False
        self._proving.add(entry.first)
        try:
            return self.prover(entry, rows)
        except (LookupError, OSError) as exc:
            log.error("audit: record file %d could not be proven against the signed checkpoint: %s", entry.first, exc)
            return False
        finally:
            self._proving.discard(entry.first)


def _notes_unreadable(notes: Path, exc: OSError) -> PermissionError:
    """A clear error for a damage notes' directory this process cannot look in: it cannot tell
    whether a record file was found damaged, so it reads none."""
    return PermissionError(exc.errno or errno.EACCES, f"audit: cannot look in {notes}, where damaged record files "
                           f"are noted ({exc.strerror or exc}): give the server's user read and search "
                           "permission on it")


def _unproven(rows: Sequence[Leaf], entry: FileEntry) -> int | None:
    """The index of the first of ``rows`` (a whole file's records) that is not the record the index
    holds there: out of place (the file holds records ``entry.first`` .. ``entry.last``, each once,
    in order) or whose bytes do not hash to its leaf (``merkle.leaf_hash``); ``len(rows)`` when
    records are missing at the end; ``None`` when every one is in place. Only a damaged file's
    rescan pays this (0.5-2.7 µs a record measured under load): a healthy log's scans check length and CRC only."""
    for i, (seq, leaf, data, _nodes) in enumerate(rows):
        if seq != entry.first + i or leaf_hash(data) != leaf:
            return i
    return None if entry.first + len(rows) == entry.last + 1 else len(rows)


def _identity_of(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _identity(path: Path) -> tuple[int, ...] | None:
    """Which file is at ``path`` now (device, inode, size, times), ``None`` when none can be
    looked at: a damaged file's scan stands only while this is unchanged."""
    try:
        return _identity_of(os.stat(path))
    except OSError:
        return None


def _write_all(fd: int, data: bytes, at: int) -> int:
    """``data`` written at ``at``; a short write (a full disk) raises."""
    written = os.pwrite(fd, data, at)
    if written != len(data):
        raise OSError(errno.ENOSPC, f"audit record file: short write ({written} of {len(data)} bytes)")
    return written


def _copy(source: tuple[int, int, int], fd: int, at: int) -> int:
    """Copy ``length`` bytes from ``source`` ``(fd, offset, length)`` to ``fd`` at ``at``, in the
    kernel when it can (``copy_file_range``), else (a system without the call, or a file system
    that refuses it) through this process."""
    src, offset, length = source
    done = 0
    copy_file_range = getattr(os, "copy_file_range", None)  # Linux only (not macOS, not Windows)
    if copy_file_range is None:
        _write_all(fd, os.pread(src, length, offset), at)
        return length
    try:
        while done < length:
            n = copy_file_range(src, fd, length - done, offset + done, at + done)
            if n == 0:
                raise OSError(errno.ENOSPC, "audit record file: copy cut short")
            done += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        _write_all(fd, os.pread(src, length - done, offset + done), at + done)
    return length


def records_directory(database: Path) -> Path:
    """The record files' directory beside the log's database (``audit.sqlite3`` -> ``audit.records``)."""
    return database.with_name(database.stem + ".records")
