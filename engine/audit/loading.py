"""Loading the log: the tree's right edge from what is stored, checked against the newest signature.

A part of ``AuditLog`` (``engine.audit.log``, whose state these methods use). The right edge is
rebuilt from the table and the segment (``_reload``), checked against what the index states it
holds and against the newest signed statement (``_check_signed``); any disagreement marks the log
damaged (``AuditLogDamaged``): no record is appended and nothing signed until it is dealt with,
while readers and ``huren audit verify`` still work. A damaged log looks again once a second
(``_refuse_if_damaged``), so a repair is seen without a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from time import monotonic as _monotonic
from typing import TYPE_CHECKING

from engine.audit import merkle
from engine.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, verify_checkpoint

if TYPE_CHECKING:  # what this part needs from the others (engine.audit.parts); object at run time
    from engine.audit.parts import LoadingNeeds as _Needs
else:
    _Needs = object

log = logging.getLogger("engine.audit.log")  # (the log's own logger: operators and tests filter on it)

DAMAGE_RECHECK_SECONDS = 1.0  # a damaged log reloads this often when asked to append (a repair is seen)


class AuditLogDamaged(RuntimeError):
    """What the log can read disagrees with what its index states it holds (a record file damaged
    or missing), or the segment's records do not follow the records held: no record is appended
    (the read is refused, never answered unaudited) and no checkpoint signed until the damage is
    dealt with; ``huren audit verify`` names the first unreadable record."""


class Loading(_Needs):
    """``AuditLog``'s load, reload and damage checks."""

    # state of AuditLog this part assigns (declared here too: a type checker takes an assignment in a
    # subclass of its Protocol for a new attribute); annotations only, nothing at run time
    _frontier: merkle.Frontier
    _notes_look: float
    _damage_recheck: float

    def _reload(self) -> None:
        """Rebuild the in-memory right edge (and checkpoint state) from the database and the
        segment file."""
        if self._segment is None:
            self._load_table()
            return
        self._segment.forget()  # the next sync returns every frame, and reloads the table first
        with self._segment.locked():
            self._sync_segment()


    def _load_table(self) -> None:
        """The right edge from the newest readable record, checked against what the index states
        the log holds (``last_seq``: the record files' index and the table's key): when a record
        file is damaged, reading stops at the damage, and a right edge built from there would number
        new records over ones already answered. Then the log is marked damaged (``_damage``) instead:
        appends and checkpoints are refused, readers and ``huren audit verify`` still work."""
        last = self._leaves.find(sort=[("_id", -1)], limit=1)
        size = last[0]["seq"] + 1 if last else 0
        held = self._leaf_rows.last_seq()
        self._held = held + 1 if held is not None else 0
        self._damage = None
        if self._held != size:
            files = self._files
            first = files.first_unreadable() if files is not None else None
            first = size if first is None else min(first, size)
            self._damage = (f"audit log damaged: its index holds records 0..{self._held - 1} but record {first} "
                            f"onward cannot be read (the newest readable is {size - 1}); no record is appended "
                            "until it is dealt with; run `huren audit verify`, then `huren audit repair --from "
                            "<a backup of the data directory>`")
            log.error("audit: %s", self._damage)
        try:
            hashes = [self.subtree_hash(lvl, idx) for lvl, idx in merkle.perfect_subtrees(0, size)]
        except LookupError as exc:  # appending onto a damaged tree would bury the damage: refuse
            raise RuntimeError(f"audit log damaged ({exc}); run `huren audit verify`") from exc
        self._frontier = merkle.Frontier(size, hashes)
        cps = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        self._last_cp_seq = cps[0]["seq"] if cps else -1
        self._last_cp_size = cps[0]["size"] if cps else 0
        self._last_cp_time = time.monotonic()
        self._signed_size = self._check_signed(size)


    def _check_signed(self, size: int) -> int:
        """How many records the newest signed statement (numbered checkpoint or seal) covers, once
        its signature and its root over the tree as stored are checked (a signature check and
        ~log2 n node reads, at each load). A stored tree that does not make the signed root (records
        and tree nodes altered and made again) or stops short of it marks the log damaged: nothing
        is signed over it and no record appended, as for a damaged file (``huren audit verify``
        names the records). So does a newest statement that cannot be read or whose signature
        fails: it was signed (or forged) over records nobody may now sign again as found; the
        newest numbered checkpoint that verifies is then still checked against the tree."""
        if not self.keys.public:
            return 0
        unreadable = self._damage is not None  # (a record file: the tree cannot be read whole)
        try:
            signed = self.latest_checkpoint()
            why_bad = None if signed is None or verify_checkpoint(signed, self.keys) else (
                f"the signature of the latest signed statement (size {signed.size}, {signed.time}) does not verify")
        except CheckpointError as exc:
            signed, why_bad = None, f"the latest signed statement cannot be read ({exc})"
        if why_bad is not None:
            self._damage = self._damage or (
                f"audit log damaged: {why_bad}; no record is appended and nothing signed until it is dealt with; "
                "run `huren audit verify`, then `huren audit repair --from <a backup of the data directory>`")
            log.error("audit: %s", self._damage)
            signed = self._newest_verifying_checkpoint()
        if signed is None:
            return 0
        why = None if unreadable else self._tree_mismatch(signed, size)
        if why is not None:
            message = (f"audit log damaged: the latest signature (size {signed.size}, {signed.time}) does not "
                       f"match the log as stored ({why}); no record is appended and nothing signed until it is "
                       "dealt with; run `huren audit verify`, then `huren audit repair --from <a backup of the "
                       "data directory>`")
            self._damage = message if self._damage is None else f"{self._damage}; {message}"
            log.error("audit: %s", message)
        return signed.size


    def _tree_mismatch(self, signed: Checkpoint, size: int) -> str | None:
        """Why the stored tree does not make ``signed``'s root (``None``: it does)."""
        if signed.size > size:
            return f"it holds {size} records"
        try:
            if self._root_of(signed.size) == signed.root:
                return None
        except LookupError as exc:
            return str(exc)
        return "the records and tree nodes stored make another root"


    def _root_of(self, size: int, records: tuple[int, Sequence[bytes]] | None = None) -> bytes:
        """The root of the tree's first ``size`` records from what is stored (~log2 n node reads);
        with ``records`` = (first, their bytes), records ``first``.. hashed from those bytes in place
        of their stored leaf hashes and of every stored node above them (a damaged file's rescan,
        ``_signed_file``: a forger recomputes the leaf hashes and nodes a file keeps with its CRCs).
        The one walk for the load's check, a peer's signature, a rescanned file and ``root_at``.
        Raises ``LookupError`` when a node it needs is unreadable."""
        if records is None:
            return merkle.range_hash(0, size, self.subtree_hash)
        first, data = records
        stop = first + len(data)
        leaves = [merkle.leaf_hash(d) for d in data]

        def subtree(level: int, index: int) -> bytes:
            lo = index << level
            hi = lo + (1 << level)
            if hi <= first or lo >= stop:  # wholly outside these records: as stored
                return self.subtree_hash(level, index)
            if level == 0:
                return leaves[lo - first]
            return merkle.node_hash(subtree(level - 1, 2 * index), subtree(level - 1, 2 * index + 1))

        return merkle.range_hash(0, size, subtree)


    def _newest_verifying_checkpoint(self) -> Checkpoint | None:
        """After the newest statement failed: the newest numbered checkpoint whose signature holds."""
        for doc in self.checkpoints.find(sort=[("seq", -1)]):
            try:
                cp = parse_checkpoint(doc["note"])
            except (CheckpointError, KeyError):
                continue
            if verify_checkpoint(cp, self.keys):
                return cp
        return None


    def _sync_segment(self) -> None:
        """Under the segment's lock: take in the records other processes appended to it since this
        one last looked (their leaves onto the right edge); after another process's drain, reload
        the right edge from the table first."""
        reset, rows = self._segment.sync()  # type: ignore[union-attr]
        if reset:
            self._load_table()
            self._unmoved = []
        if not rows:
            return
        frontier = self._frontier
        # records below the floor were moved by a drain that crashed before emptying the file (the
        # index holds them: checked, never assumed, so an answered record is not dropped for
        # another under its number); on a damaged log the right edge is not the index's, so the rest are
        # kept for the drain (answered records: never dropped) but not added to the tree
        floor = frontier.size if self._damage is None else self._held
        below = [row for row in rows if row[0] < floor]
        if below:  # (after a reload only: rare) held already, so held as they are here
            lo, hi = below[0][0], below[-1][0]
            held = {d["seq"]: d.get("hash") for d in self._leaves.find({"seq": {"$gte": lo, "$lte": hi}})}
            for seq, leaf, _data, _nodes in below:
                if held.get(seq) != leaf.hex():
                    raise AuditLogDamaged(
                        f"audit log damaged: the segment's record {seq} is not the record {seq} the log holds "
                        f"({'unreadable' if seq not in held else 'another'}); the segment file is kept as it "
                        "is; run `huren audit verify`")
        for row in rows:
            seq = row[0]
            if seq < floor:
                continue
            if self._damage is None:
                if seq != frontier.size:
                    raise RuntimeError(f"audit log damaged (the segment's record {seq} follows record "
                                       f"{frontier.size - 1}); run `huren audit verify`")
                frontier.push(row[1])
            self._unmoved.append(row)


    def _rolled_back(self) -> None:
        """The store's block that held an append was rolled back (MongoDB: its transaction aborted,
        or its writes undone, ``MongoStore.on_rollback``): the records are gone, so the right edge is
        reloaded from what is stored, and their noted keys forgotten; advanced past them, the next
        record would leave a hole that verification reports as deleted records."""
        with self._lock:
            self._reload()
            size = self._frontier.size
            for seq in [s for s in self._appended_keys if s >= size]:
                del self._appended_keys[seq]


    def refresh(self) -> None:
        """Catch up with records and checkpoints other processes appended."""
        with self._lock:
            self._reload()


    def held_count(self) -> int:
        """How many records the log's index states it holds (its last sequence number + 1, after
        the segment's records moved in): what verification expects to read."""
        self.drain()
        last = self._leaf_rows.last_seq()
        return last + 1 if last is not None else 0


    def _refuse_if_damaged(self) -> None:
        """Raise ``AuditLogDamaged`` when the log found records it holds but cannot read: at its
        load (``_load_table``) or in any read since (a record file's scan)."""
        files = self._files
        now = _monotonic()
        if self._damage is None and (files is None or not files.unreadable):  # (``first_unreadable() is None``)
            if files is None or now < self._notes_look:
                return  # (the usual case: one look per group)
            self._notes_look = now + DAMAGE_RECHECK_SECONDS  # another process may have found a file
            if not files.take_notes():  # damaged that this one scanned healthy: one stat a second
                return  # damaged: look again once a second (a repair), then refuse if it still is
        if now >= self._damage_recheck:  # ``huren audit repair`` may have put the records back:
            self._damage_recheck = now + DAMAGE_RECHECK_SECONDS
            if files is not None:  # each damaged file scanned again if another is in its place (even
                files.recheck()  # one whose rewrite a killed repair never counted, or not the newest)
            self._reload()  # the index, the files' scans (a repair counts its rewrite) and the right edge
        if self._damage is not None:
            raise AuditLogDamaged(self._damage)
        first = files.first_unreadable() if files is not None else None
        if first is not None:
            raise AuditLogDamaged(f"audit log damaged: record {first}, which its index holds, cannot be read "
                                  "(a record file is damaged or missing); no record is appended until it is "
                                  "dealt with; run `huren audit verify`, then `huren audit repair --from <a backup of "
                                  "the data directory>`")
