"""Signing: numbered checkpoints, the seal each second, and what a signature must say was found.

A part of ``AuditLog`` (``engine.audit.log``, whose state these methods use). A checkpoint is due
every ``audit_checkpoint_every`` records or ``audit_checkpoint_seconds`` (``_checkpoint_due``); the
seal (``audit_meta/seal``) signs the whole log each ``audit_seal_seconds`` in place of the last.
Found records (``engine.audit.found``) get numbered checkpoints of their own, marked ``recovered``
(``_sign``). Signers are serialised by the database's write lock: each re-reads inside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.audit import merkle
from engine.audit.checkpoint import SEAL, Checkpoint, parse_checkpoint, sign_checkpoint
from engine.audit.leaves import seq_key
from engine.repository.port import DuplicateKey

if TYPE_CHECKING:  # what this part needs from the others (engine.audit.parts); object at run time
    from engine.audit.parts import SigningNeeds as _Needs
else:
    _Needs = object

log = logging.getLogger("engine.audit.log")  # (the log's own logger: operators and tests filter on it)

# while the checkpoint thread runs, an append signs a checkpoint itself (on the caller's thread:
# the event loop for reads) only when none was signed for this many periods: the thread fell behind
# or cannot sign (a key that cannot sign then refuses the append, so no request is answered unaudited)
APPEND_BACKSTOP_PERIODS = 10
_monotonic = time.monotonic


class _Found(Exception):
    """A seal would have carried ``recovered``: a numbered checkpoint is signed instead."""


class Signing(_Needs):
    """``AuditLog``'s checkpoints and seal."""

    # state of AuditLog this part assigns (declared here too: a type checker takes an assignment in a
    # subclass of its Protocol for a new attribute); annotations only, nothing at run time
    _unproven: list[tuple[int, int]]
    _seal_size: int

    def _checkpoint_due(self, old_size: int, size: int) -> bool:
        """Due when the append (of one or a group of records) passed a multiple of ``every``."""
        settings = self.settings  # (read at each call: a test replaces the log's settings)
        every = settings.audit_checkpoint_every
        if every > 0 and size // every > old_size // every:
            return True
        period = settings.audit_checkpoint_seconds
        if self._timer is not None:  # the background thread signs each period: here only as a backstop
            seal = settings.audit_seal_seconds  # ``min(period, _seal_period() or period)``, without two calls
            if 0 < seal < period:  # (on every append: perfr36)
                period = seal
            period *= APPEND_BACKSTOP_PERIODS
        return _monotonic() - self._last_cp_time >= period


    def _seal_period(self) -> float:
        return max(self.settings.audit_seal_seconds, 0.0)


    def _write_checkpoint(self, frontier: merkle.Frontier) -> list[Checkpoint]:
        self._refuse_if_damaged()  # a checkpoint of a right edge that is not the log's would sign a lie
        return [self._store_checkpoint(cp) for cp in self._sign(frontier)]


    def _sign(self, frontier: merkle.Frontier, *, seal: bool = False) -> list[Checkpoint]:
        """The next checkpoint of ``frontier`` (``seal``: the seal, which carries no number, a ``seal``
        line: numbering it as the next checkpoint would sign one number over two roots), preceded,
        when records were found rather than appended (a stopped writer's tail, ``_note_found``, or a
        damaged file's records taken back, ``_found``) and no valid signature covers them yet, by a
        checkpoint over exactly the records up to the found ones' end, marked ``recovered <first>``.

        Why a checkpoint of its own and not a ``recovered first..last`` line: ``recovered N`` has
        always meant records N..size-1, and releases that read it (or reject lines they do not know)
        keep reading it right; a checkpoint of the current size would stamp the records a live peer
        appended after the tail was found as found too. Its number is its own (the one after the
        newest), its root the stored tree's over those records (``_root_of``, ~log2 n node reads,
        only when a peer appended past the tail)."""
        seq, signed = self._last_cp_seq + 1, self._last_cp_size
        out: list[Checkpoint] = []
        mark: int | None = None  # the first found record the requested signature must mark
        for first, end in self._found_range(frontier.size):  # (in the signing transaction: one signer at a time)
            first = first if mark is None else mark
            if end >= frontier.size:  # the span reaches the log's end: the requested signature carries it
                mark = first
            elif end > signed:  # records were appended past the span: it gets a checkpoint of its own
                out.append(sign_checkpoint(self.keys, self.origin, end, self._root_of(end), seq, recovered=first))
                seq, signed, mark = seq + 1, end, None
            else:  # (a numbered checkpoint past the span that does not verify: damage; mark wide, never narrow)
                log.error("audit: records %d..%d were found unsigned but checkpoint %d (size %d) covers them "
                          "without verifying; marking from %d with the next signature", first, end - 1,
                          self._last_cp_seq, self._last_cp_size, first)
                mark = first
        out.append(sign_checkpoint(self.keys, self.origin, frontier.size, frontier.root(), seq,
                                   recovered=mark, seal=seal and not out))
        return out


    def _signed_through(self, cps: Sequence[Checkpoint]) -> None:
        """After the commit of ``cps``: the records they cover are this process's to vouch for now."""
        for cp in cps:
            self._unproven = [r for r in self._unproven if r[1] > cp.size]
            if cp.recovered is not None:
                log.warning("audit: records %d..%d were past the latest signed checkpoint when the log was opened "
                            "(the process that appended them stopped before signing them): signed now as found, "
                            "checkpoint %d marks them 'recovered'; nothing proves they are what was appended",
                            cp.recovered, cp.size - 1, cp.seq)


    def _store_checkpoint(self, cp: Checkpoint) -> Checkpoint:
        """Insert ``cp`` in the open transaction; one marked ``recovered`` over the whole found tail
        (``_note_found``) deletes its record with it: no later signature marks it again."""
        self.checkpoints.insert({"_id": seq_key(cp.seq), **cp.as_json()})
        if cp.recovered is not None:  # (each noted span it covers whole goes; the others stay apart)
            noted = self._noted()
            kept = [(first, end) for first, end in noted
                    if not (first < cp.size and (end is None or end <= cp.size))]
            if len(kept) < len(noted):
                self._keep_noted([(first, end if end is not None else cp.size) for first, end in kept])
        self._last_cp_seq, self._last_cp_size = cp.seq, cp.size
        self._last_cp_time = time.monotonic()
        return cp


    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Sign a checkpoint of the current size now (``None`` when nothing new since the last one,
        unless ``force``)."""
        with self._lock:
            for _attempt in range(5):
                if not force and self._frontier.size == self._last_cp_size and self._last_cp_seq >= 0:
                    self._last_cp_time = time.monotonic()  # all signed as of now (the append's backstop)
                    return None  # nothing new here: no transaction (the timer ticks on an idle log)
                try:
                    cps: list[Checkpoint] = []
                    with self._table_transaction(flat=False):
                        if force or self._frontier.size != self._last_cp_size or self._last_cp_seq < 0:
                            cps = self._write_checkpoint(self._frontier)
                    self._signed_through(cps)
                    if not cps:
                        self._last_cp_time = time.monotonic()
                    return cps[-1] if cps else None
                except DuplicateKey:  # another process (``--workers``) signed this number first
                    log.info("audit: checkpoint %d taken by another writer; reloading", self._last_cp_seq + 1)
                    self._reload()
                except BaseException:
                    self._reload()
                    raise
            raise RuntimeError("audit: could not obtain a checkpoint number")


    def seal(self) -> Checkpoint | None:
        """Sign the whole log as it stands in the seal (``audit_meta/seal``), replacing the last
        one: a checkpoint's signed text with a ``seal`` line in place of ``seq`` (no number: one
        numbered as the next checkpoint, as before, signed that number over two roots), not kept
        once a later one signs more. ``None`` when nothing is new since the last seal
        or checkpoint. Records this process found rather than appended get a numbered checkpoint
        instead (``recovered`` must stay on record, not be overwritten a second later).

        Why not a numbered checkpoint each second: each is kept forever (~0.45 KB, and ~90 µs of
        every later verification): 86,400 a busy day, more than the records themselves on a quiet
        log. A seal proves as much as the newest of them would (a later seal covers every record
        an earlier one did, the tree being append-only), and deleting it or putting an older one
        back is no worse than deleting the newest numbered checkpoints: the records past what is
        left signed are reported as unsigned (``huren audit verify``)."""
        if self._unproven:
            return self.checkpoint()
        with self._lock:
            size = self._frontier.size
            if size == self._last_cp_size or size == self._seal_size:
                self._last_cp_time = time.monotonic()  # all signed as of now (the append's backstop)
                return None
            try:
                with self._table_transaction(flat=False):
                    size = self._frontier.size
                    held = self.meta.get(SEAL)
                    if size == self._last_cp_size or (held is not None and int(held.get("size", 0)) >= size):
                        self._seal_size = size  # (another process sealed this much meanwhile)
                        cp = None
                    else:
                        self._refuse_if_damaged()
                        cps = self._sign(self._frontier, seal=True)
                        if len(cps) > 1 or cps[0].recovered is not None:  # (found records: a numbered
                            raise _Found  # checkpoint keeps them on record: ``checkpoint``)
                        cp = cps[0]
                        self.meta.replace({"_id": SEAL, "size": cp.size, "note": cp.text})
            except _Found:
                return self.checkpoint()
            except BaseException:
                self._reload()
                raise
            if cp is not None:
                self._seal_size = cp.size
            self._last_cp_time = time.monotonic()
            return cp


    def latest_seal(self) -> Checkpoint | None:
        """The seal as stored (its signature is the reader's to check), if any."""
        doc = self.meta.get(SEAL)
        return parse_checkpoint(doc["note"]) if doc is not None else None


    def list_checkpoints(self, *, since_seq: int = 0, limit: int | None = None) -> list[Checkpoint]:
        docs = self.checkpoints.find({"seq": {"$gte": since_seq}}, sort=[("seq", 1)], limit=limit)
        return [parse_checkpoint(d["note"]) for d in docs]


    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest signed statement of the log: the latest numbered checkpoint, or the seal
        when it signs more records (``seal``). Its signature is the reader's to check."""
        docs = self.checkpoints.find(sort=[("seq", -1)], limit=1)
        cp = parse_checkpoint(docs[0]["note"]) if docs else None
        seal = self.latest_seal()
        return seal if seal is not None and (cp is None or seal.size > cp.size) else cp
