"""What an index entry written by an earlier release lacks, filled in once when a store is opened.

``final_at`` (twelfth round): when huren has held a result *final*, written on an entry whose
result became final after it was first stored (first sent preliminary, or withdrawn and sent
again). R98 ("outside record not accessible") is contradicted only by a prior huren held final
before the order was placed, and the rate's re-checks ask the same. An entry stored before that
release has only ``held``, when it was first stored: a prior held as a preliminary when an order
was placed, and final only after, then contradicted a true R98 claim on an upgraded store -- for
every order placed before the upgrade whose result, or any later correction, is decided after it.

The instant is read from the resource's own history: the oldest version of its latest run of
final versions (its ``meta.lastUpdated``, written in the same transaction as the hook that would
have written ``final_at``). A run reaching the first version leaves the entry as it is. The pass
runs once per store (a marker in ``recognition_layout``); run again it finds nothing to write
(an entry with ``final_at`` is skipped, and one is written only when later than ``held``).

Every ``--workers`` process runs it when it opens the store, one restarting while the others
ingest included, so the history is read outside any transaction while results keep arriving.
The write is a compare-and-set (``_write``): inside the write transaction each entry is read
again and written only if it is still final without ``final_at`` and its resource still at the
version read. An ingest that withdrew the result and sent it final again meanwhile wrote the later
instant itself; the pass writing its older one over it made a true R98 "contradicted by records".

``report_days_once`` (link37): an Observation listed by a report that is itself a recognition
result of its item is of that report's test, dated by the report's day (relink36,
``Repeats._linked``). An entry stored before that release kept the Observation's own day, so a
panel drawn at 20:00 whose ALT was analysed after midnight still stood as two tests (two flags,
the money twice) until its results were sent again. The pass puts such results again through the
one link rule (``Repeats._relink``), once per store, page by page with its place kept in its
marker (a restart goes on from there), counting the entries whose day moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson

from engine.recognition.decision import FINAL_STATUSES
from engine.recognition.index import RESULTS
from engine.recognition.ports import Store
from engine.repository.port import Collection, StoredResource, is_new_store

LAYOUT = "recognition_layout"
FINAL_AT = "final-at-backfilled"
REPORT_DAYS = "report-days-relinked"
_PAGE = 2000
# the index entries of reports: their ``_id`` is "DiagnosticReport/<id>", between these two keys
_REPORTS, _REPORTS_END = "DiagnosticReport/", "DiagnosticReport0"
_T = TypeVar("_T")


class _Versions(Protocol):
    """What the pass reads of the FHIR backend (``engine.repository.port.FhirBackend``)."""

    def current_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]: ...

    def history(self, rtype: str, rid: str) -> list[StoredResource]: ...


class _Store(Store, Protocol):
    """``ports.Store`` and the FHIR backend the pass reads versions from."""

    @property
    def fhir(self) -> _Versions: ...


def backfill_final_at(store: _Store) -> int | None:
    """Give ``final_at`` to the final entries an earlier release stored without it; once per store.
    Returns how many were written, None when the store had been through it."""
    marks = store.collection(LAYOUT)
    if marks.get(FINAL_AT) is not None:
        return None
    entries = store.collection(RESULTS)
    backend: _Versions = store.fhir
    written, last = 0, ""
    while not is_new_store(store):  # by _id, a page at a time: a province's index does not fit in memory
        page = entries.find({"_id": {"$gt": last}}, sort=[("_id", 1)], limit=_PAGE)
        if not page:
            break
        last = page[-1]["_id"]
        todo = [d for d in page if _lacks(d)]
        keys = {d["_id"]: _key(d["_id"]) for d in todo}
        current = backend.current_many([k for k in keys.values() if k is not None])
        found: list[tuple[str, tuple[str, str], int, str]] = []
        for d in todo:
            key = keys[d["_id"]]
            rec = current.get(key) if key is not None else None
            if key is None or rec is None or rec.deleted or rec.version <= 1:
                continue  # one version: final since it was first stored
            since = final_since(backend.history(*key))
            if since is not None and _later(since, d.get("held")):
                found.append((d["_id"], key, rec.version, since))
        if found:  # a commit only for a page with something to write
            written += _write(store, entries, backend, found)
    with store.transaction():
        marks.replace({"_id": FINAL_AT, "at": _micro(datetime.now(UTC).isoformat()), "written": written})
    return written


def _write(store: _Store, entries: Collection, backend: _Versions,
           found: Sequence[tuple[str, tuple[str, str], int, str]]) -> int:
    """Write what was found, compare-and-set: the history was read outside any transaction, and
    another worker (or this one's own ingest) may have written the result since. Inside the write
    transaction each entry is read again and written only if it still lacks ``final_at`` and the
    resource is still at the version whose history was read; an entry the ingest has given
    ``final_at`` meanwhile (withdrawn and sent final again: a later instant) keeps it. A result
    still final without ``final_at`` but at a newer version has its history read again here,
    under the write lock, so the pass neither overwrites a later instant nor leaves one out."""
    written = 0
    with store.transaction():
        current = backend.current_many([key for _, key, _, _ in found])
        for ref, key, version, since in found:
            entry, rec = entries.get(ref), current.get(key)
            if entry is None or not _lacks(entry) or rec is None or rec.deleted:
                continue  # withdrawn, deleted or given ``final_at`` meanwhile: the ingest's own
            if rec.version != version:
                fresh = final_since(backend.history(*key))
                if fresh is None or not _later(fresh, entry.get("held")):
                    continue
                since = fresh
            if entries.update(ref, {"final_at": since}):
                written += 1
    return written


def _lacks(entry: Mapping[str, Any]) -> bool:
    """A final entry without ``final_at``: what the pass may write."""
    return entry.get("status") in FINAL_STATUSES and not entry.get("final_at")


def final_since(history: Sequence[StoredResource]) -> str | None:
    """The instant (``held``'s form) the latest run of final versions began, from the versions
    newest first; None when the newest is not final or every version is."""
    since: StoredResource | None = None
    for rec in history:
        status = orjson.loads(rec.body).get("status") if rec.body is not None and not rec.deleted else None
        if status not in FINAL_STATUSES:
            return _micro(since.updated) if since is not None else None
        since = rec
    return None


def _later(since: str, held: Any) -> bool:
    """Is ``since`` after ``held``, compared as instants (releases before R98 wrote ``held`` to
    the second, which as text sorts after every microsecond of that second)? An entry without a
    readable ``held`` takes ``since``."""
    try:
        return since > _micro(str(held))
    except ValueError:
        return True


def _key(ref: str) -> tuple[str, str] | None:
    rtype, _, rid = ref.partition("/")
    return (rtype, rid) if rid else None


def _micro(instant: str) -> str:
    """An instant as ``held`` writes it (UTC, microseconds, ``Z``), so the two compare as text."""
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC) \
        .isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Relinks(Protocol):
    """What ``report_days_once`` calls on ``engine.recognition.service.Recognition``."""

    @property
    def store(self) -> Any: ...

    @property
    def index(self) -> Any: ...  # engine.recognition.index.ResultIndex

    @property
    def _local(self) -> Any: ...

    def _in_group(self, decide: Callable[[], _T]) -> _T: ...

    def _relink(self, refs: Sequence[Any]) -> list[dict[str, Any]]: ...

    def _recheck_later(self, entered: Mapping[str, dict[str, Any]]) -> None: ...


def report_days_once(rec: _Relinks) -> int | None:
    """Put again the Observations an earlier release indexed under their own day while a report of
    their item lists them (see the module docstring); once per store. Returns how many entries'
    day moved, None when the store had been through it.

    Resumable: after each page of report entries the marker keeps the last one read (``after``)
    and the count so far; each move is committed with the count it makes (``after`` still the
    page's start), so a store opened again (a worker killed mid-way) goes on from there with the
    count exact (rv37f: the moves of a page cut short were lost from ``written``). Idempotent: a result already dated by its report is not
    put again, and one put again that the rule leaves where it was is not counted."""
    marks = rec.store.collection(LAYOUT)
    mark = marks.get(REPORT_DAYS) or {}
    if mark.get("done"):
        return None
    written, last = int(mark.get("written") or 0), str(mark.get("after") or _REPORTS)
    entries = rec.index.coll
    while not is_new_store(rec.store):  # by _id, a page of report entries at a time
        page = entries.find({"_id": {"$gt": last, "$lt": _REPORTS_END}}, sort=[("_id", 1)], limit=_PAGE)
        if not page:
            break
        start, last = last, page[-1]["_id"]
        for ref in _dated_apart(rec.index, page):
            with rec.store.transaction():
                if rec._in_group(lambda r=ref: _put_again(rec, r)):
                    # the count with the move, in its transaction: a run cut before the page's
                    # marker reads the page again and skips what moved (it keeps ``reports``)
                    written += 1
                    marks.replace({"_id": REPORT_DAYS, "after": start, "written": written})
        with rec.store.transaction():
            marks.replace({"_id": REPORT_DAYS, "after": last, "written": written})
    with rec.store.transaction():
        marks.replace({"_id": REPORT_DAYS, "done": True, "written": written})
    return written


def _dated_apart(index: Any, reports: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """The Observations ``reports`` (report entries) list whose entries are of the report's item and
    dated another day, and were written by an earlier release (no ``reports`` kept): one read of the
    entries for the whole page."""
    listed = [ref for d in reports for ref in d.get("results") or () if ref.startswith("Observation/")]
    found = {e["_id"]: e for e in index.get_many(listed)}
    for d in reports:
        for ref in d.get("results") or ():
            e = found.get(ref)
            if e is not None and "reports" not in e and e.get("item") == d.get("item") and e.get("day") != d.get("day"):
                yield ref


def _put_again(rec: _Relinks, ref: str) -> int:
    """``ref`` put again by the link rule, its tests decided again (``Repeats._relink``), and the
    later orders whose window it now enters re-checked, as for a result written (``on_result``):
    1 when its day moved."""
    before = rec.index.get(ref)
    local = rec._local
    outer, local.entered = getattr(local, "entered", None), {}
    try:
        rec._relink([ref])
        rec._recheck_later(local.entered)
    finally:
        local.entered = outer
    after = rec.index.get(ref)
    return int(before is not None and after is not None and after.get("day") != before.get("day"))
