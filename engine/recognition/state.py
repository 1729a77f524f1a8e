"""The state every part of ``Recognition`` shares, and the few helpers they all use: the check
and flag rows written with their tallies, DetectedIssues stored and cancelled, a version read
back from the write group at hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from engine.auth import confidentiality
from engine.errors import Gone, NotFound
from engine.recognition import aggregates
from engine.recognition.decision import Order
from engine.recognition.facts import FactReader
from engine.recognition.flags import ROW_FIELDS
from engine.recognition.index import ResultIndex
from engine.recognition.memo import GroupMemo
from engine.recognition.rules import Rules

CHECKS = "recognition_checks"
FLAGS = "recognition_flags"
# flag statuses (recognition_flags.status) and the DetectedIssue.status each one shows
FLAG_STATUS = {"flagged": "preliminary", "upheld": "final", "overturned": "cancelled",
               "justified": "final", "self_pay": "final", "reported": "final", "void": "cancelled"}
CHARGES = "recognition_charges"
# re-test reasons a doctor gave in a CDS answer, by the draft order they were given for (reviews.py)
CDS_REASONS = "recognition_cds_reasons"
CARDS = "recognition_cards"  # the CDS cards answered (``engine.api.cds``), by draft
# a CDS answer's placer order numbers, one row each: "<kind>|<institution>|<number>" -> the reason
# row ("reason", by draft) or the choice's check row ("choice") of the draft that has that number
CDS_PLACERS = "recognition_cds_placers"
# how many rounds a scope's flag rows are decided again when another writer stored one first (``_flags_out``)
FLAG_TRIES = 8
# the outcomes of a checked order that a result set (``_set_outcome`` in ``_evaluate_flag``)
RESULTED = frozenset({"duplicate", "justified", "self_pay", "reported", "retested"})


def now() -> str:
    """The present second in UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return _second(time.time_ns() // 1_000_000_000) + "Z"


def instant() -> str:
    """When huren first held a result or saw an order, to the microsecond: R98 compares the two.

    The text ``datetime.now(UTC).isoformat(timespec="microseconds")`` wrote with ``Z`` for
    ``+00:00`` (the same clock, the microsecond floored as ``datetime.now`` floors it), built
    from the clock's integer and the second's text kept from the last call: a lab message asks
    for three (its order's and two results'), and the datetime's ``isoformat`` and ``replace``
    cost ~10 us each (twenty-fifth round, hook25)."""
    sec, micro = divmod(time.time_ns() // 1000, 1_000_000)
    return f"{_second(sec)}.{micro:06d}Z"


# (second since the epoch, its ``YYYY-MM-DDTHH:MM:SS`` in UTC): the last second written, one
# tuple replaced whole, so that a thread reads a matching pair
_last_second: tuple[int, str] = (-1, "")


def _second(sec: int) -> str:
    global _last_second
    last = _last_second
    if last[0] != sec:
        t = time.gmtime(sec)
        last = _last_second = (sec, f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
                                    f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")
    return last[1]


class RecognitionState:
    """What every part of ``Recognition`` works on: the store, the repository, the rules, the
    result index, the check and flag rows (each a ``GroupMemo``), their per-day tallies, the
    facts reader and the per-thread state of one write group's hook call. ``Recognition``
    (``engine.recognition.service``) sets them; the parts (``hr_mark``, ``batch_scope``,
    ``order_time``, ``repeats``, ``prior_changes``, ``corrections``, ``reviews``) are its bases and
    call one another through ``self`` (a flag decided again after a correction, say), as the
    methods of the one class they were until the fourteenth round did."""

    store: Any
    repository: Any
    settings: Any
    index: ResultIndex
    checks: GroupMemo
    flags: GroupMemo
    charges: Any
    cds_reasons: Any
    cards: Any
    cds_placers: Any
    flag_days: Any
    check_days: Any
    facts: FactReader
    _rules: Rules
    _local: threading.local

    def _in_group(self, decide: Callable[[], Any]) -> Any:  # (``batch_scope.BatchScope``'s)
        raise NotImplementedError

    def read(self, rtype: str, rid: str) -> dict[str, Any] | None:
        """The current resource, or None when absent or deleted.

        Inside a write group's hook call, a version the group stored is taken as handed to the
        hook: a batch hook runs before any other hook of the group could store a newer one, and
        what this hook stores itself comes through it (``_hold``) -- no query, no parse."""
        current = getattr(self._local, "current", None)
        if current is not None:
            found = current.get(f"{rtype}/{rid}")
            if found is not None:
                return found
        try:
            return self.repository.read(rtype, rid)
        except (NotFound, Gone):
            return None

    def _write_issue(self, issue: dict[str, Any]) -> None:
        """Store a DetectedIssue at its deterministic id (the repository skips unchanged content),
        labelled as the most confidential record it cites (``confidentiality.carried``: a flag
        tells what its R-labelled result would; labels19)."""
        cited = {tuple(r["reference"].split("/")) for r in issue.get("implicated") or ()
                 if isinstance(r.get("reference"), str) and r["reference"].count("/") == 1}
        self.repository.update(confidentiality.carried(issue, (self.read(t, i) for t, i in sorted(cited))))

    def _cancel_issue(self, issue_ref: str) -> None:
        current = self.read("DetectedIssue", issue_ref)
        if current is not None and current.get("status") != "cancelled":
            updated = {k: v for k, v in current.items() if k not in ("meta", "text")}
            updated["status"] = "cancelled"
            self._write_issue(updated)

    def _put_flag(self, old: dict[str, Any] | None, new: dict[str, Any],
                  redo: Callable[[], object] | None = None) -> None:
        """Store a flag row decided from ``old`` (the row as read; None: none) and move its tally, once when the write
        group (or ingest batch) ends -- by ``_cas_flag``, so only while the stored row is still ``old``'s version.
        ``redo`` decides the flag again (``Repeats._evaluate_flag(member)``, say): it is called, from the row as
        stored then, when another writer got there first (``BatchScope._flags_out``, a bounded number of times);
        None (a row put as it is, no decision to make again: a repair, a test's setup) -- losing is a ``Conflict``.

        The row keeps the ``reviewed`` count of the row it was decided from (the reviews it carries are that row's):
        a decision's row (``DuplicateFlag.as_doc``) has none, and a reviewed flag's re-decision wrote the row again
        every time for it, and set the count the reviews' compare-and-set keys on back to none (rv43b LOW 1) -- from
        which an older reader's compare-and-set would match again."""
        if old is not None and old.get("reviewed") is not None and "reviewed" not in new:
            new = {**new, "reviewed": old["reviewed"]}
        # (a row decided the same is still checked at the end, ``_cas_flag`` comparing only: the DetectedIssue the
        # decision wrote says the reviews it read -- a review stored since must be said again)
        if self.flags.defer(new, old):
            self._local.flag_redo[new["_id"]] = redo
            return
        self._in_group(lambda: self._put_flag(old, new, redo))  # (no writer calls it outside a group's scope)

    def _cas_flag(self, before: dict[str, Any] | None, after: dict[str, Any],
                  fields: dict[str, Any] | None = None) -> bool:
        """THE write of a flag row: a compare-and-set on the version read, ``before`` (None: no row), by the
        row as read (``as_read``; where transactions isolate, its ``reviewed`` count) -- every flag writer's (the hook's decisions at the end of a write group,
        ``_flags_out``; the repricing passes; an auditor's review, ``Reviews._review_once``). False, nothing written,
        when the stored row is no longer that version: the caller reads it again and decides again.

        Why: on MongoDB without transactions (a standalone server; mongomock) nothing isolates a write group from a
        review: the hook read a reviewed flag, a second review was stored and answered 200 meanwhile, and the hook's
        row of the first review replaced it -- the review lost from the flag while its DetectedIssue said it (rv43b
        HIGH 2). Without transactions the whole row read is compared (``as_read``), not the count alone: the count
        names the reviews read but no decision -- the hook's void kept it, so a review read before the void still
        matched and wrote the void flag back upheld, a cancelled result's repeat charged as a duplicate (rv44f HIGH 1),
        and so did one read before any re-decision (a new prior, a late reason), recording as upheld what the auditor
        never saw. Compared whole, a writer wins only over the very row it decided on; the loser reads again and
        decides again (a review of a flag now void: 422, nothing to review). On SQLite the write transaction's
        ``BEGIN IMMEDIATE``, held since the read, orders every writer already and the count (a scalar
        ``where_sql`` compares) always holds; on a replica set a writer in between conflicts with the transaction.
        The row's bytes are the same on every backend: no field is added for the compare.

        ``fields``: set these only (``update_if``: a review sets its own and leaves a decision stored since as it
        is); else the whole row is ``after`` (``replace_if``: a decision drops what it no longer says). ``after`` the
        same as ``before`` (a decision that changed nothing): compared only, nothing written -- the DetectedIssue
        that decision wrote says ``before``'s reviews, and a review stored since is lost from it unless decided
        again (its own issue write came first). Only where a block has an undo journal (MongoDB without
        transactions): SQLite's ``BEGIN IMMEDIATE`` held since the read keeps any review out, and a replica set's
        review in between conflicts with the DetectedIssue's write (the transaction aborted, tried again) -- there
        the compare was a query a re-decided flag for nothing (~48k instructions a message, bench/flag44_cas.py)."""
        if before is None:
            return self.flags.replace_if(after, None)
        undo = getattr(self.store, "undo", None)
        where = {"reviewed": before.get("reviewed")} if undo is None else as_read(before)
        if after == before:  # (only a store without transactions, ``undo``, lets a review in between: else no query)
            return undo is None or self.flags.count({"_id": before["_id"], **where}) == 1
        if fields is not None:
            return self.flags.update_if(str(before["_id"]), where, fields)
        return self.flags.replace_if(after, where)

    def _link_placers(self, kind: str, target: str, institution: str, placers: Sequence[str]) -> None:
        """Keep ``target`` (a CDS reason row's or choice row's id) findable by each of the draft's
        placer numbers: a draft may carry several (PLAC repeated), and the HIS's order may send any
        one of them -- keyed on the first only, an order numbered by the second was never linked
        (moneymend19). A link outlives a row that no longer names the number; ``_placer_targets``'
        askers read the row and check."""
        for number in placers:
            self.cds_placers.replace({"_id": f"{kind}|{institution}|{number}|{target}",
                                      "key": f"{kind}|{institution}|{number}", "target": target})

    def _placer_targets(self, kind: str, institution: str | None, placers: Sequence[str]) -> list[str]:
        """The rows of ``kind`` linked to any of ``placers`` at ``institution`` (one indexed read each)."""
        found: list[str] = []
        for number in placers:
            found.extend(str(link["target"]) for link in self.cds_placers.find({"key": f"{kind}|{institution}|{number}"}))
        return list(dict.fromkeys(found))

    def _put_check(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """Store a check row and move its tally; inside a write group, once when the group ends."""
        if old == new or self.checks.defer(new, old):
            return
        self.checks.replace(new)
        aggregates.move(self.check_days, aggregates.check_bucket(old), aggregates.check_bucket(new))


def as_read(row: dict[str, Any]) -> dict[str, Any]:
    """The filter matching a flag row only while it is ``row`` as read: each of its fields equal (a list, a review's
    nested document, compared whole by MongoDB) and each other field a flag row may hold (``flags.ROW_FIELDS``)
    absent -- a field one writer adds (a void's ``void_reason``, a review's ``reviewed``) changes the version too.
    MongoDB's filter only: SQLite's ``where_sql`` compares scalars, and there ``_cas_flag`` needs no more than the
    count."""
    return {**{k: None for k in ROW_FIELDS if k not in row}, **{k: v for k, v in row.items() if k != "_id"}}


def is_resulted(check: dict[str, Any] | None) -> bool:
    """Has a result of this checked order been decided on (its reasons recorded for good)?

    Sticky (``resulted``): an order whose results were all withdrawn is pending again, but a
    reason sent after its first result is still not an order-time reason. A row stored before the
    field existed tells by its outcome."""
    return bool(check) and bool(check.get("resulted") or check.get("outcome") in RESULTED)  # type: ignore[union-attr]


def outcome_of(status: str) -> str:
    """A checked order's outcome for the status of its test's flag (an auditor's review included)."""
    return status if status in ("justified", "self_pay", "reported") else "duplicate"


def checked_order(check: dict[str, Any], *, person: str | None, item: str | None, ref: str | None,
                   patient: str | None) -> Order:
    """The order a check row recorded when it was placed (institution, day, reasons, analytes,
    the instant huren first saw it), for ``person`` and ``item``."""
    return Order(person=person, item=item, institution=check["inst"], day=date.fromisoformat(check["day"]),
                 ref=ref, patient=patient, reasons=tuple(check.get("reasons") or ()),
                 reason_text=check.get("reason_text"), analytes=tuple(check.get("analytes") or ()),
                 placed=check.get("placed"), at=check.get("at"))


def version_of(resource: dict[str, Any]) -> int:
    version = (resource.get("meta") or {}).get("versionId")
    return int(version) if isinstance(version, str) and version.isdigit() else 0
