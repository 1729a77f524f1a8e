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
holds is there. It then writes the file beside the damaged one and renames it over it (the
damaged bytes kept as ``<file>.damaged-<UTC time>``), in the audit database's write transaction
(no drain of a running server writes meanwhile), and counts the rewrite so every process scans it
again. Last, the whole log is verified as ``huren audit verify`` does it: the recomputed tree
against every signed checkpoint and every stored tree node; when that fails the damaged file is
put back as it was. Records the repair put back are then exactly as trustworthy as verification
says (those a checkpoint covers: proven by its signature). A running server need not restart:
while its log is damaged it looks again at most once a second when asked to append
(``AuditLog._refuse_if_damaged``), so it appends again within a second of the repair.
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.audit.leaves import Leaf
from engine.audit.record_files import HEADER, MAGIC, FileEntry, RecordFiles
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
    return hashlib.sha256(b"\x00" + row[2]).digest() == row[1]


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
    kept: Path | None = None  # the damaged file's bytes, once kept aside


def repair(settings: Settings, source: Path | None = None) -> RepairReport:
    """Repair the damaged record files of the log in ``settings.data_dir`` (see the module
    docstring); ``source``: a backup to take the missing records from."""
    from engine.audit.cli import open_log
    from engine.audit.verify import verify_online

    report = RepairReport()
    log = open_log(settings, segment=False)
    plans: list[_Plan] = []
    try:
        files: RecordFiles | None = getattr(log, "_files", None)
        if files is None:
            return report
        with log.store.transaction():  # the log database's write lock: no drain writes meanwhile
            for entry in files.entries():
                plan = _plan(files, entry, source, report)
                if plan is not None:
                    plans.append(plan)
            if report.missing or not plans:  # all or nothing: no file changes while one cannot be repaired
                report.repaired = []
                return report
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            for plan in plans:
                if plan.path.is_file():
                    plan.kept = plan.path.with_name(f"{plan.path.name}.damaged-{stamp}")
                    os.link(plan.path, plan.kept)  # the damaged bytes stay, under another name
                    report.kept.append(str(plan.kept))
                tmp = plan.path.with_suffix(".repair")
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    os.write(fd, plan.body)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, plan.path)
                log.store.execute("UPDATE audit_files SET gen = gen + 1 WHERE first = ?", (plan.entry.first,))
    finally:
        log.store.close()
    try:
        log = open_log(settings)  # afresh: the right edge, the segment, every file scanned again
        try:
            verdict = verify_online(log)
        finally:
            log.store.close()
        report.verified = bool(verdict.ok)
        if not verdict.ok:
            report.problem = "; ".join(p.message for p in verdict.problems[:3]) or "not verified"
    except Exception as exc:  # (a right edge that cannot even be loaded from the repaired files)
        report.verified, report.problem = False, f"{type(exc).__name__}: {exc}"
    if not report.verified:
        _undo(settings, plans)
        report.kept = []
    return report


def _undo(settings: Settings, plans: list[_Plan]) -> None:
    """Put each damaged file back as it was (its kept bytes) and count the rewrite again."""
    from engine.audit.store import open_audit_store

    store = open_audit_store(settings)
    try:
        with store.transaction():
            for plan in plans:
                if plan.kept is not None and plan.kept.is_file():
                    os.replace(plan.kept, plan.path)
                store.execute("UPDATE audit_files SET gen = gen + 1 WHERE first = ?", (plan.entry.first,))
    finally:
        store.close()


def _plan(files: RecordFiles, entry: FileEntry, source: Path | None, report: RepairReport) -> _Plan | None:
    """The repaired file for ``entry`` when it is damaged and every record it holds is found."""
    path = files.path(entry.first)
    readable = files.file_rows(entry) if path.is_file() else []
    if [row[0] for row in readable] == list(range(entry.first, entry.last + 1)):
        return None
    lost = readable[-1][0] + 1 if readable else entry.first
    report.damaged.append(f"{path.name}: records {lost}-{entry.last} cannot be read")
    found: dict[int, Leaf] = {row[0]: row for row in readable}
    origins: set[str] = set()
    pools = ([("the damaged file", _frames_of(path))] if path.is_file() else []) + \
        [(str(copy), _frames_of(copy)) for copy in _copies(source, path.name)]
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
