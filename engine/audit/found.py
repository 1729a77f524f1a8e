"""Records found rather than appended: a stopped writer's unsigned tail, a damaged file's records taken back.

A part of ``AuditLog`` (``engine.audit.log``, whose state these methods use). Records past the newest
signature that a process finds when it opens the log with no live writer (``engine.audit.writers``
on SQLite, ``engine.audit.lease`` on MongoDB), or takes back from a damaged record file
(``_signed_file``), cannot be proven to be what was appended: the first signature over them says so
(``recovered <first>``), one numbered checkpoint a span (``engine.audit.signing``). The stopped
writer's tail is noted in the log's own database (``FOUND``), even over a damaged open, so
whichever process signs first marks it; every signature takes off what the newest valid statement
then covers (``_found_range``), so no validly signed record is marked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.audit.checkpoint import CheckpointError, verify_checkpoint
from engine.audit.leaves import Leaf
from engine.audit.record_files import FileEntry

if TYPE_CHECKING:  # what this part needs from the others (engine.audit.parts); object at run time
    from engine.audit.parts import FoundNeeds as _Needs
else:
    _Needs = object

log = logging.getLogger("engine.audit.log")  # (the log's own logger: operators and tests filter on it)

# audit_meta: the first record and the end of a tail a process found unsigned when it opened the log
# with no live writer (a killed writer's): the next signature over it, by any process, is preceded by
# a checkpoint over exactly those records marked ``recovered``, which removes this in its own
# transaction (``_note_found``, ``_sign``)
FOUND = "found-from"


def spans(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(first, end)`` ranges of records in order, those that overlap or touch made one."""
    out: list[tuple[int, int]] = []
    for first, end in sorted(ranges):
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((first, end))
    return out


class FoundTail(_Needs):
    """``AuditLog``'s found records: noted, taken back, and the spans a signature must mark."""

    # state of AuditLog this part assigns (declared here too: a type checker takes an assignment in a
    # subclass of its Protocol for a new attribute); annotations only, nothing at run time
    _unproven: list[tuple[int, int]]

    def _note_found(self, first: int, end: int) -> None:
        """Record in the log's own database that records ``first..end-1`` were found unsigned, while this
        process holds the writers' lock exclusive (no live writer: they are a stopped one's). ``end``
        (the log's size then) bounds the mark: records a live peer appends after it are its own, and
        the ``recovered`` checkpoint is signed over exactly ``end`` records (``_sign``).

        Why in the database and not in this process: the finder signed them, marked, only at its
        ``start()``; a second writer opening the log meanwhile is not alone (the finder holds the
        lock shared by then), so it found nothing, and its seal signed the tail unmarked, after
        which the finder saw a valid signature over it and dropped its mark; a finder killed or
        unable to sign before its start left the mark to nobody. Now every signature (``_sign``,
        inside its transaction) reads this and says ``recovered`` when it covers the tail, and the
        checkpoint that does removes it in the same transaction: the first signature over the
        tail is marked, whichever process signs it, and no later one is. Holding the lock exclusive
        until the finder signed would close the window too, but a finder that cannot sign (a damaged
        log, no private key) would stall every other writer's start."""
        with self.store.transaction():
            noted = [(f, end if e is None else e) for f, e in self._noted()]
            # an earlier finder's tail nobody signed (that finder stopped too) stays a span of its own
            # unless the two overlap or touch: the records between were appended, not found
            self._keep_noted(spans([*noted, (first, end)]))


    def _noted(self) -> list[tuple[int, int | None]]:
        """The found tails noted in the database (``_note_found``), as (first, end) spans in order
        (end ``None``: noted by an earlier release, which kept no end). One span is stored as
        ``first`` and ``end``, as before; more are in ``spans`` too (``first`` and ``end`` then the
        whole, so a release that reads only those marks wide, never narrow)."""
        held = self.meta.get(FOUND)
        if held is None:
            return []
        if held.get("spans"):
            return [(int(f), int(e)) for f, e in held["spans"]]
        return [(int(held["first"]), int(held["end"]) if "end" in held else None)]


    def _keep_noted(self, noted: Sequence[tuple[int, int]]) -> None:
        """Store ``noted`` (spans in order, apart) as the found tails, or delete the note when none."""
        if not noted:
            self.meta.delete(FOUND)
            return
        doc: dict[str, object] = {"_id": FOUND, "first": noted[0][0], "end": noted[-1][1]}
        if len(noted) > 1:
            doc["spans"] = [[f, e] for f, e in noted]
        self.meta.replace(doc)


    def _found_tail(self, size: int) -> tuple[int, int | None] | None:
        """The first found tail (``_note_found``) a signature of ``size`` records covers: its first
        record and its end (``None``: noted by an earlier release, which kept no end)."""
        for first, end in self._noted():
            if first < size:
                return first, (min(end, size) if end is not None else None)
        return None


    def _signed_file(self, entry: FileEntry, rows: Sequence[Leaf]) -> bool:
        """Whether a record file found damaged and now whole (``rows[i]`` is record ``entry.first +
        i``) holds the records the latest signed checkpoint states: the tree's root over its size
        recomputed from these records' own bytes (not the leaf hashes the file keeps: a forger
        recomputes those with the CRCs) and the stored nodes of the other files, against the
        signed root. Only a damaged file's rescan pays this (a few dozen node reads and one
        signature check); records past the checkpoint are bound by no signature yet (``huren audit
        verify`` cannot tell them either): they are taken as found, and the next checkpoint this
        process signs says so (``recovered``). Raises ``LookupError`` when a node it needs is unreadable."""
        cp = self.latest_checkpoint()
        first, stop = entry.first, entry.first + len(rows)
        if cp is None:
            self._found(first, stop)  # nothing signed yet: nothing to prove against (verification says the same)
            return True
        if not verify_checkpoint(cp, self.keys):
            return False
        if cp.size <= first:
            self._found(first, stop)
            return True
        if cp.size > stop and stop <= entry.last:  # (cannot be: the rows were checked whole)
            return False
        if self._root_of(cp.size, (first, [row[2] for row in rows])) != cp.root:
            return False
        self._found(cp.size, stop)
        return True


    def _found(self, first: int, stop: int) -> None:
        """Records ``first..stop-1`` of a damaged file were taken back unproven (no checkpoint covers
        them): the next checkpoint says they were signed as found. Kept apart from a span it does
        not touch: the records between were appended, not found."""
        if first < stop:
            self._unproven = spans([*self._unproven, (first, stop)])


    @property
    def _unproven_from(self) -> int | None:
        """The first record this process took as found and no checkpoint covers yet, if any."""
        return self._unproven[0][0] if self._unproven else None


    def _found_range(self, size: int) -> list[tuple[int, int]]:
        """The records a signature of ``size`` must mark found, as (first, end) spans in order, apart:
        the stopped writer's tail noted in the database (``_note_found``) and this process's own
        (``_found``), each less what a valid stored signature already covers, which vouches for them
        as appended: a mark over them would accuse a live writer. Spans that do not touch stay
        apart (the records between were appended, not found: one span over both marked them too).
        (A found-from noted over a damaged log by an earlier release is dropped here, and deleted
        in the signing transaction.) Costs one read of ``audit_meta``; the stored signature is read
        and checked only while some records are found (rare)."""
        noted = self._noted()
        if not any(first < size for first, _ in noted) and not self._unproven:
            return []
        vouched = self._vouched_size()
        # (one an earlier release noted, with no end, goes once a signature covers any of it: it may
        # have been noted over a damaged open, as above)
        kept = [(first, end) for first, end in noted if vouched < (end if end is not None else first + 1)]
        if len(kept) < len(noted):
            self._keep_noted([(first, end if end is not None else size) for first, end in kept])
        held = [(first, end if end is not None else size) for first, end in kept if first < size]
        self._unproven = [r for r in self._unproven if r[1] > vouched]
        found = [(max(first, vouched), min(end, size)) for first, end in spans([*self._unproven, *held])]
        return [(first, end) for first, end in found if first < end]


    def _vouched_size(self) -> int:
        """How many records the newest stored statement validly signs (its signature and its root
        over the tree as stored, at its own size: this process may know fewer); 0 when it fails."""
        try:
            newest = self.latest_checkpoint()
        except CheckpointError:
            return 0
        if newest is None or not self.keys.public or not verify_checkpoint(newest, self.keys):
            return 0
        return newest.size if self._tree_mismatch(newest, newest.size) is None else 0


    def _sign_found_tail(self) -> None:
        """At start: sign the records a process that stopped (``kill -9``, a power cut) appended
        after its last checkpoint, marked as found (``recovered``), and say so in the log. What this
        proves: they are unchanged from now on, bound to every later record. What it cannot: that
        they are what was appended; they lay on disk under no signature until now."""
        if not self.keys.can_sign or (not self._unproven and self._found_tail(self._frontier.size) is None):
            return  # (a tail found by another process is signed here too, if none signed it yet)
        try:
            self.checkpoint()  # (``_signed_through`` says so in the log)
        except Exception:  # the checkpoint thread and the appends' backstop try again
            log.exception("audit: signing the records found past the latest checkpoint failed")
