"""``huren audit repair``: put back the records of a damaged record file, proven, or say what is missing.

A record file damaged inside what the log committed (a frame that fails its CRC) stops the log:
readers see the records before the damage only, and every append is refused
(``AuditLogDamaged``), so every audited request is answered 503 until an operator acts; the
server's log and ``huren audit verify`` name the first record that cannot be read. Numbering new
records from where reading stops would reuse the numbers of records whose requests were answered,
and nothing may be invented in their place, so the only repair is the records themselves: a copy
of the same record file from a backup (record files are append-only, so any copy taken after
those records were written holds them byte for byte), and the frames after the damage that still
pass their CRC in the damaged file itself.

The repair takes only frames that decode whole and pass their CRC, each record's bytes hashing to
its leaf; it assembles the file's records in order and changes nothing unless every one the index
holds is there. All of what follows happens in the audit database's write transaction (no
drain of a running server writes meanwhile, and while the log is damaged the server refuses every
append): the repaired file is written beside the damaged one (``<file>.repair``) and the whole log
is verified as ``huren audit verify`` does it, that staged file read in the damaged one's place on
the repair's own handle only (the recomputed tree against every signed checkpoint and every stored
tree node). Only a verified repair is put in place: the staged file renamed over the damaged one
(whose bytes are kept as ``<file>.damaged-<UTC time>``), its rewrite counted so every process
scans it again, and the transaction committed. So no record can be appended on top of a repair
that was not verified, and one that fails verification changes no file (a missing file stays
missing); should a rename fail, the files already renamed are put back exactly as they were.
Records the repair put back are then exactly as trustworthy as verification
says (those a checkpoint covers: proven by its signature). A running server need not restart:
while its log is damaged it looks again at most once a second when asked to append
(``AuditLog._refuse_if_damaged``), so it appends again within a second of the repair.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.audit.leaves import Leaf
from engine.audit.log import AuditLog
from engine.audit.merkle import leaf_hash
from engine.audit.record_files import HEADER, MAGIC, FileEntry, RecordFiles, _unproven
from engine.audit.segment import _FIXED, _HEAD, MAX_FRAME, decode, encode
from engine.settings import Settings


@dataclass
class RepairReport:
    """What ``repair`` found and did, for the operator."""

    damaged: list[str] = field(default_factory=list)  # "<file>: records a-b cannot be read"
    repaired: list[str] = field(default_factory=list)  # "<file>: records a-b put back (from ...)"
    missing: list[str] = field(default_factory=list)  # "<file>: records ... are in no copy"
    kept: list[str] = field(default_factory=list)  # where the damaged bytes are kept
    verified: bool | None = None  # the whole log verified after the repair (None: nothing repaired)
    problem: str | None = None  # why verification failed (the repair was undone)
    verified_but_undone: bool = False  # verified, but a file could not be put in place: all put back

    @property
    def ok(self) -> bool:
        return not self.missing and self.verified is not False

    def text(self) -> str:
        lines = []
        if not self.damaged:
            lines.append("no damaged record file: nothing to repair (`huren audit verify` checks the whole log)")
        lines += [f"damaged: {d}" for d in self.damaged]
        lines += [f"repaired: {r}" for r in self.repaired]
        lines += [f"damaged bytes kept as {k}" for k in self.kept]
        lines += [f"MISSING: {m}" for m in self.missing]
        if self.missing:
            lines.append("nothing was changed: restore that record file from a backup taken after those records "
                         "were written and run `huren audit repair --from <the backup's data directory, its "
                         "audit.records directory or the file>`")
        if self.verified:
            lines.append("the whole log verifies (tree, signed checkpoints, stored nodes); a running server "
                         "appends again within a second")
        elif self.verified_but_undone:
            lines.append(f"the repair was verified but undone, every file as it was: {self.problem}")
        elif self.verified is False:
            lines.append(f"verification failed after the repair, which was undone: {self.problem}")
        return "\n".join(lines)


def _crc_frames(buf: bytes) -> list[Leaf]:
    """The frames of a record file's body that still decode whole and pass their CRC. Past a bad
    frame the next one is looked for where its length says it ends, else at every later byte (a
    frame is taken only where its length and CRC hold)."""
    found: list[Leaf] = []
    view = memoryview(buf)
    pos, end = 0, len(buf)
    while pos + _HEAD.size <= end:
        length, crc = _HEAD.unpack_from(buf, pos)
        stop = pos + _HEAD.size + length
        if _FIXED <= length <= MAX_FRAME and stop <= end and zlib.crc32(view[pos + _HEAD.size:stop]) == crc:
            rows, _used = decode(buf[pos:stop])
            found.extend(rows)
            pos = stop
            continue
        nxt = stop  # the bad frame's own length, if that is what survived
        if _FIXED <= length <= MAX_FRAME and nxt + _HEAD.size <= end:
            n_length, n_crc = _HEAD.unpack_from(buf, nxt)
            n_stop = nxt + _HEAD.size + n_length
            if _FIXED <= n_length <= MAX_FRAME and n_stop <= end and \
                    zlib.crc32(view[nxt + _HEAD.size:n_stop]) == n_crc:
                pos = nxt
                continue
        pos += 1
    return found


def _sound(row: Leaf) -> bool:
    """A record whose bytes hash to its leaf (a frame's CRC could match a frame of other bytes)."""
    return leaf_hash(row[2]) == row[1]


def _signed(files: RecordFiles, entry: FileEntry, rows: list[Leaf]) -> bool:
    """Whether a file's records, each in place and hashing to its leaf, make the tree the log's
    latest signed checkpoint states (``AuditLog._signed_file``): its own leaf hashes prove nothing."""
    if files.prover is None:
        return True  # (no log behind this handle: nothing signed to prove against)
    try:
        return files.prover(entry, rows)
    except (LookupError, OSError):  # another file's node unreadable (that file is repaired): cannot
        return True  # tell here; the staged repair is verified against every checkpoint all the same


def _copies(source: Path | None, name: str) -> list[Path]:
    """Where a backup may hold record file ``name``: the path itself, or inside it as a data
    directory's or an ``audit.records`` directory's file."""
    if source is None:
        return []
    candidates = [source] if source.is_file() else [source / name, source / "audit.records" / name]
    return [p for p in candidates if p.is_file()]


def _frames_of(path: Path) -> list[Leaf]:
    buf = path.read_bytes()
    if len(buf) < HEADER.size or buf[:len(MAGIC)] != MAGIC:
        return []
    return _crc_frames(buf[HEADER.size:])


@dataclass
class _Plan:
    entry: FileEntry
    path: Path
    body: bytes  # the whole file as repaired
    staged: Path | None = None  # where ``body`` is written and verified before it replaces ``path``
    existed: bool = False  # whether ``path`` was there when it was replaced (else it was missing)
    kept: Path | None = None  # the damaged file's bytes, under another name, once replaced


def repair(settings: Settings, source: Path | None = None) -> RepairReport:
    """Repair the damaged record files of the log in ``settings.data_dir`` (see the module
    docstring); ``source``: a backup to take the missing records from.

    Everything happens inside the audit database's write transaction, and the repaired files are
    verified while staged beside the damaged ones (read in their place on this handle only): a
    running server goes on refusing appends, and cannot drain, until the repair is verified and in
    place, so no record is ever appended on top of an unverified repair, and a repair that fails
    verification leaves every file as it was (a missing file stays missing)."""
    from engine.audit.cli import open_log

    report = RepairReport()
    log = open_log(settings, segment=False)
    plans: list[_Plan] = []
    try:
        files: RecordFiles | None = getattr(log, "_files", None)
        if files is None:
            return report
        with log.store.transaction():  # the log database's write lock, held to the end: no drain meanwhile
            for entry in files.entries():
                plan = _plan(files, entry, source, report)
                if plan is not None:
                    plans.append(plan)
            if report.missing or not plans:  # all or nothing: no file changes while one cannot be repaired
                report.repaired = []
                return report
            for plan in plans:
                plan.staged = _write_staged(plan.path.with_suffix(".repair"), plan.body)
                files.read_instead(plan.entry.first, plan.staged)
            report.verified, report.problem = _verify(log)
            if not report.verified:
                return report  # nothing was put in place (the staged files go below)
            try:
                _put_in_place(plans, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
            except OSError as exc:
                _put_back(plans)  # the files exactly as they were; their rewrite counted all the same
                report.verified, report.verified_but_undone = False, True
                report.problem = f"the repaired file could not be put in place ({type(exc).__name__}: {exc})"
            else:
                report.kept = [str(plan.kept) for plan in plans if plan.kept is not None]
            for plan in plans:  # every process scans these files again when this commits
                log.store.execute("UPDATE audit_files SET gen = gen + 1 WHERE first = ?", (plan.entry.first,))
    finally:
        for plan in plans:
            if plan.staged is not None:
                plan.staged.unlink(missing_ok=True)
        log.store.close()
    return report


def _write_staged(path: Path, body: bytes) -> Path:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if os.write(fd, body) != len(body):
            raise OSError(f"{path}: short write")
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _verify(log: AuditLog) -> tuple[bool, str | None]:
    """The whole log verified as ``huren audit verify`` does it, its repaired files read from where
    they are staged: the right edge loaded afresh, the recomputed tree against every signed
    checkpoint and every stored tree node."""
    from engine.audit.verify import verify_online

    try:
        log.refresh()
        verdict = verify_online(log)
    except Exception as exc:  # (a right edge that cannot even be loaded from the repaired files)
        return False, f"{type(exc).__name__}: {exc}"
    if verdict.ok:
        return True, None
    return False, "; ".join(p.message for p in verdict.problems[:3]) or "not verified"


def _put_in_place(plans: list[_Plan], stamp: str) -> None:
    """Each verified file renamed over its damaged one, the damaged bytes kept under another name."""
    for plan in plans:
        assert plan.staged is not None
        plan.existed = plan.path.is_file()
        if plan.existed:
            kept = plan.path.with_name(f"{plan.path.name}.damaged-{stamp}")
            os.link(plan.path, kept)  # the damaged bytes stay, under another name
            plan.kept = kept
        os.replace(plan.staged, plan.path)
        plan.staged = None
    _sync_directory(plans[0].path.parent)


def _put_back(plans: list[_Plan]) -> None:
    """Undo ``_put_in_place`` exactly: a damaged file back from its kept name, a file that was
    missing removed again; files not reached yet are as they were."""
    for plan in plans:
        if plan.kept is not None:
            os.replace(plan.kept, plan.path)
            plan.kept = None
        elif not plan.existed and plan.staged is None:  # put in place where none was: missing again
            plan.path.unlink(missing_ok=True)
    _sync_directory(plans[0].path.parent)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plan(files: RecordFiles, entry: FileEntry, source: Path | None, report: RepairReport) -> _Plan | None:
    """The repaired file for ``entry`` when it is damaged and every record it holds is found."""
    path = files.path(entry.first)
    readable = files.file_rows(entry) if path.is_file() else []
    # the records read in place, up to the first that is not the log's: one out of place, or whose
    # bytes do not hash to its leaf (a file renamed over a damaged one with its CRCs recomputed
    # reads whole; a running server refuses it, ``RecordFiles._scan``, so it is repaired here)
    bad = _unproven(readable, entry)
    kept = len(readable) if bad is None else bad
    if kept == len(readable) == entry.last - entry.first + 1 and not _signed(files, entry, readable):
        kept = 0  # each record hashes to the leaf beside it, but the tree they make is not the signed one:
        # altered and re-hashed (which record, only a backup can tell): every record from a copy
    if kept == len(readable) == entry.last - entry.first + 1:
        return None
    readable = readable[:kept]
    lost = readable[-1][0] + 1 if readable else entry.first
    report.damaged.append(f"{path.name}: records {lost}-{entry.last} cannot be read")
    found: dict[int, Leaf] = {row[0]: row for row in readable}
    origins: set[str] = set()
    # the copies first: a record of the damaged file hashing to the leaf beside it may be one altered
    # and re-hashed (the verification below would refuse the repair then, not tell which copy was right)
    pools = [(str(copy), _frames_of(copy)) for copy in _copies(source, path.name)] + \
        ([("the damaged file", _frames_of(path))] if path.is_file() else [])
    for origin, rows in pools:
        for row in rows:
            if entry.first <= row[0] <= entry.last and row[0] not in found and _sound(row):
                found[row[0]] = row
                origins.add(origin)
    absent = [seq for seq in range(entry.first, entry.last + 1) if seq not in found]
    if absent:
        report.missing.append(f"{path.name}: records {_ranges(absent)} are in no copy given"
                              + ("" if source is not None else " (give a backup with --from)"))
        return None
    body = HEADER.pack(MAGIC, entry.first) + encode([found[seq] for seq in range(entry.first, entry.last + 1)])
    if len(body) != entry.size:
        report.missing.append(f"{path.name}: the records found make {len(body)} bytes where the index states "
                              f"{entry.size}: not the records it holds")
        return None
    report.repaired.append(f"{path.name}: records {lost}-{entry.last} put back from {', '.join(sorted(origins))}")
    return _Plan(entry, path, body)


def _ranges(seqs: list[int]) -> str:
    out, start = [], seqs[0]
    for prev, cur in zip(seqs, [*seqs[1:], None], strict=True):
        if cur != prev + 1 if cur is not None else True:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur if cur is not None else start
    return ", ".join(out)
