"""The Provenance-trail mark: the records whose Provenance trail is no longer the feed's alone.

The registrar (``adapters.convert.persons._registered``: which application registered a Patient) reads
the registrations table the ingest keeps (``engine.messages.MessageStore.registrations``), written in the
transaction that files each message. That table is the truth only while every Provenance naming the
record is one a filed message wrote: a FHIR client that creates, rewrites or deletes a Provenance (a
system client's right: ``PUT``/``DELETE /fhir/Provenance/<id>``) -- or the patient index writing one --
changes the trail the table does not see, and an operator's replay of a filed message takes its word back
until it is filed again. Each of these marks the records the Provenance names (before and after the
write), here, in the same transaction as the write; a marked record is answered by reading its whole trail
as before (the walk that fails closed, "cannot be told", where it cannot tell: rvregapp33 findings 4
and 8). A mark is never taken away: what a client did to a record's trail stays a reason to look at it
whole (registry34).

One document per record, ``_id`` its reference (``Patient/x``), in the plain collection ``TRAIL_MARKS``
of the store's own database (SQLite and MongoDB alike): one ``holds`` per question.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine import fhirjson
from engine.merge_rules import NOT_THE_FEED
from engine.repository.port import Documents, StoredResource

if TYPE_CHECKING:
    from engine.repository.indexing import IndexRows

log = logging.getLogger("huren.repository")

TRAIL_MARKS = "fhir_provenance_marks"


def touched_by(puts: Sequence[tuple[StoredResource, IndexRows | None, StoredResource | None]]) -> set[str]:
    """The Patients (``Patient/id``) named by a Provenance these backend puts write or delete other than
    as a message of the feed writes it (a FHIR client's or the index's version, or any deletion), in the
    version put and in the version it replaces. Empty (one type test per put) for the feed's writes.
    Patients only (regfix34, rvregistry34 finding 6): the registrar is asked of Patients alone, and a
    client writing Provenances of its documents or results grew the marks by a row a target for nothing."""
    out: set[str] = set()
    for rec, _rows, previous in puts:
        if rec.type != "Provenance" or not (rec.deleted or rec.writer in NOT_THE_FEED):
            continue
        for body in (rec.body, previous.body if previous is not None else None):
            out.update(patients(_targets(body)))
    return out


def unmarked(store: Documents, rec: StoredResource) -> bool:
    """Is the stored Provenance version ``rec`` one a FHIR client or the index wrote, naming a Patient
    not marked? Then a release that marks nothing (before registry34) wrote it: the registrations
    table's start asks it of the newest Provenance (``engine.messages.MessageStore.registrations_epoch``)."""
    if rec.type != "Provenance" or rec.deleted or rec.writer not in NOT_THE_FEED:
        return False
    return not all(marked(store, ref) for ref in patients(_targets(rec.body)))


def _targets(body: Any) -> set[str]:
    """``Type/id`` of each target a stored Provenance body names: a relative reference, an absolute one
    (``https://host/fhir/Patient/x``: the search by ``target`` finds it too) or a version of either
    (``/_history/n`` left off)."""
    if not body:
        return set()
    try:
        resource = body if isinstance(body, dict) else fhirjson.loads(body)
    except (TypeError, ValueError):
        return set()
    out = set()
    for target in (resource.get("target") or ()) if isinstance(resource, dict) else ():
        reference = str(target.get("reference") or "") if isinstance(target, dict) else ""
        parts = reference.split("/")
        if "_history" in parts:
            parts = parts[:parts.index("_history")]
        if len(parts) >= 2 and parts[-2] and parts[-1]:
            out.add(f"{parts[-2]}/{parts[-1]}")
    return out


def mark(store: Documents, refs: Collection[str], why: str) -> None:
    """Mark ``refs`` (inside the caller's transaction): their trail is read whole from now on. The marks
    this process holds (``hold``: their write failed) are written with them."""
    held = _HELD.get(store, ())
    if not refs and not held:
        return
    marks = store.collection(TRAIL_MARKS)
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for ref in sorted({*refs, *held}):
        if not marks.holds(ref):
            marks.replace({"_id": ref, "at": at, "why": why if ref in refs else "held: " + why})


def marked(store: Documents, ref: str) -> bool:
    """Is the record ``ref``'s Provenance trail marked (``mark``), or its mark held (``hold``)?"""
    return ref in _HELD.get(store, ()) or store.collection(TRAIL_MARKS).holds(ref)


# marks whose write failed, per store object: held for the process's life (``hold``)
_HELD: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def hold(store: Documents, refs: Collection[str], why: str) -> None:
    """Marks that could not be written with what they mark (``engine.ingest.Ingestor._left_stored``: a
    failed block's writes left stored, on a store already failing): held in this process, where
    ``marked`` answers them at once (the registrar fails closed: rvregistry34 finding 7), tried again
    now in a transaction of their own and written with every later ``mark`` of the store. A restart
    before any of those writes succeeds loses them: then the records read what the registrations table
    says until the operator replays the kept message, whose filing writes its rows (the README says it)."""
    if not refs:
        return
    _HELD.setdefault(store, set()).update(refs)
    try:
        with store.transaction():
            mark(store, refs, why)
    except Exception:
        log.exception("could not mark the Provenance trail of %s (held in this process until a mark is written)",
                      ", ".join(sorted(refs)))


def patients(refs: Iterable[Any]) -> set[str]:
    """The ``Patient/x`` references among ``refs`` (a message document's ``resources``)."""
    return {str(r) for r in refs if isinstance(r, str) and r.startswith("Patient/")}
