"""Charge rows an earlier release kept for lines the settlement does not count, dropped once when a
store is opened (eighteenth round, payfix18).

Until the eighteenth round, ``Recognition._on_charge`` kept a row in ``recognition_charges`` for a
planned or unknown-status ChargeItem, and the flag of its result took the row's amount as the
money at stake. The code now keeps a row only for a billable or billed line, but removes an old
row only when its ChargeItem is sent again: on an upgraded store the flag and the monthly
deduction list still deducted a planned line's CNY 23 (price source "charge", the charge-line
column empty) where a fresh store deducts the catalogue's CNY 20.

The pass reads each row's ChargeItem; for one that is not counted it drops the row and prices
again the flags of its results whose money came from a charge row (``Repeats._reprice_flag``: the
test's remaining row, else the catalogue) -- and nothing else of them. Why not as if the line had
just been sent (``_on_charge``, which decides the whole flag again): opening a store is no new
fact, and deciding again under the new rules changed past decisions nothing had asked for (an R06
re-test justified before the upgrade, its only text the code's name, turned flagged and deducted
because it had a planned line, its twin without one left justified). A flag's decision (status,
reason, effect, reviews) stands until something decides it again. Once per store (a marker in
``recognition_layout``); run again it finds nothing. Every ``--workers`` process may run it when
it opens the store, while others ingest: the ChargeItem is read again inside the write
transaction, so a line billed meanwhile keeps its row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from engine.insurance.charges import COUNTED_STATUSES, line_identity, stored_at
from engine.recognition.ports import Index, Store, each_by_id
from engine.recognition.repricing import money_rules_once
from engine.recognition.upgrade import LAYOUT
from engine.repository.port import Collection, is_new_store

UNBILLED_DROPPED = "unbilled-charge-rows-dropped"
LINES_NUMBERED = "charge-rows-numbered"
_T = TypeVar("_T")


class _Recognition(Protocol):
    """What the pass asks of ``engine.recognition.service.Recognition``."""

    @property
    def store(self) -> Store: ...

    @property
    def charges(self) -> Collection: ...

    def read(self, rtype: str, rid: str) -> dict[str, Any] | None: ...

    @property
    def index(self) -> Index: ...

    def _reprice_flag(self, member: dict[str, Any]) -> None: ...

    def _in_group(self, decide: Callable[[], _T]) -> _T: ...


def drop_unbilled_once(rec: _Recognition) -> int | None:
    """Drop the charge rows of lines the settlement does not count, pricing again the flags priced
    by them (their decisions stand); once per store. Returns how many were dropped, None when the store had been through it."""
    marks = rec.store.collection(LAYOUT)
    if marks.get(UNBILLED_DROPPED) is not None:
        return None
    dropped = 0
    for row in () if is_new_store(rec.store) else each_by_id(rec.charges):
        if _unbilled(rec, row["_id"]) is None:
            continue
        with rec.store.transaction():
            current = rec.charges.get(row["_id"])  # read again under the write lock
            if current is not None and _unbilled(rec, row["_id"]) is not None:
                rec._in_group(lambda r=current: _drop(rec, r))
                dropped += 1
    with rec.store.transaction():
        marks.replace({"_id": UNBILLED_DROPPED, "dropped": dropped})
    return dropped


def _drop(rec: _Recognition, row: dict[str, Any]) -> None:
    """Drop ``row`` and price again the flags of the results it named (the row's ``services``)."""
    rec.charges.delete(row["_id"])
    _reprice(rec, _named(row))


def _named(row: dict[str, Any]) -> list[Any]:
    """The results a charge row names (``services``, and the older single ``service``)."""
    return [*(row.get("services") or ()), *([row["service"]] if row.get("service") else [])]


def _reprice(rec: _Recognition, services: list[Any]) -> None:
    """Price again the flags of these results (each once); their decisions stand."""
    for service in dict.fromkeys(services):
        member = rec.index.get(str(service))
        if member is not None:
            rec._reprice_flag(member)


def _unbilled(rec: _Recognition, ref: str) -> dict[str, Any] | None:
    """The ChargeItem ``ref`` when it is stored and the settlement does not count it (None otherwise:
    a counted line keeps its row; a deleted one is left as a fresh store leaves it)."""
    rtype, _, rid = str(ref).partition("/")
    charge = rec.read(rtype, rid) if rtype == "ChargeItem" and rid else None
    if charge is None or charge.get("status") in COUNTED_STATUSES:
        return None
    return charge


def number_lines_once(rec: _Recognition) -> int | None:
    """Fill in each charge row's line number and time (``ident``, ``at``) from its ChargeItem, and
    price again the flags its results' money came from; once per store (a marker in
    ``recognition_layout``). Returns how many rows were written, None when the store had been
    through it.

    Why (moneylast19): a row written before moneymend19 has neither, so it was a line of its own
    (``charges.line_key`` falls back to the row's id) and never a version of another: a line
    stored twice by an earlier release (¥30 each under one number T-1) and corrected after the
    upgrade to ¥29 under one id was ¥59 at stake where a fresh store and the settlement say ¥29.
    A deleted ChargeItem's row is left as a fresh store leaves it. The row is read again inside
    the write transaction and written only if unchanged: a line sent again meanwhile was numbered
    by ``_on_charge`` itself. Decisions stand; only the money is priced again (as ``_drop``)."""
    written = _number_lines(rec)
    # the twenty-seventh round's pass (``repricing``) after this one, the last once-pass of the
    # charge rows ``Recognition.for_engine`` runs: called from here, not from the start-up code,
    # which another helper edited in that round (it may move there: it is independent of this one)
    money_rules_once(rec)  # type: ignore[arg-type]  # its Protocol asks for a few more members
    return written


def _number_lines(rec: _Recognition) -> int | None:
    """``number_lines_once`` proper."""
    marks = rec.store.collection(LAYOUT)
    if marks.get(LINES_NUMBERED) is not None:
        return None
    written = 0
    for row in () if is_new_store(rec.store) else each_by_id(rec.charges):
        rtype, _, rid = str(row["_id"]).partition("/")
        charge = rec.read(rtype, rid) if rtype == "ChargeItem" and rid else None
        if charge is None:
            continue
        numbered = {**row, "ident": line_identity(charge), "at": stored_at(charge)}
        if numbered == row:
            continue
        with rec.store.transaction():
            if rec.charges.get(row["_id"]) == row:  # read again under the write lock
                rec._in_group(lambda r=numbered: _renumber(rec, r))
                written += 1
    with rec.store.transaction():
        marks.replace({"_id": LINES_NUMBERED, "written": written})
    return written


def _renumber(rec: _Recognition, row: dict[str, Any]) -> None:
    """Store ``row`` and price again the flags of the results its line's versions name."""
    rec.charges.replace(row)
    services = _named(row)
    if row.get("ident"):
        for other in rec.charges.find({"ident": row["ident"]}):
            services.extend(other.get("services") or ())
    _reprice(rec, services)
