"""The compact index of recognisable results: one small document per stored result.

The order-time check must answer in a few milliseconds with tens of millions of results stored,
so it never searches FHIR resources: the write hook keeps ``recognition_results`` (keyed by the
result's reference) with the person, item and day, and the check is one indexed range query on
``(person, item, day)``. Non-final results are kept too (a later correction makes them final, and
the duplicate flag needs the test even while preliminary); the decision filters them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from engine.recognition.decision import FINAL_STATUSES, PriorResult
from engine.recognition.memo import GroupMemo
from engine.repository.port import Collection, Document

RESULTS = "recognition_results"
# reports stored listing a result that was not stored yet, by the result's reference (``ResultIndex.listed_ahead``)
LISTED_AHEAD = "recognition_listed_ahead"


def group_key(doc: Document) -> str:
    """One performed test: institution, person, item and day. A report and its observations (which
    carry no order reference of their own), the imaging study, and a correction all fall in the same
    group; two orders for the same item at the same institution on the same day count as one test.
    An Observation's entry is dated by its report's day when a report of its item lists it
    (``Repeats._linked``): a panel drawn at 20:00 whose ALT was analysed after midnight is one test."""
    return f"{doc['inst']}|{doc.get('person') or doc.get('patient')}|{doc['item']}|{doc['day']}"


def result_key(r: PriorResult) -> str:
    """``group_key`` of a result's entry, from its facts (without building the entry)."""
    return f"{r.institution}|{r.person or r.patient}|{r.item}|{r.day.isoformat()}"


@lru_cache(maxsize=4096)
def window_start(day: str, window_days: int) -> str:
    """The first ISO day of the window of ``window_days`` days that ends on ``day`` (ISO).

    Remembered: every order and test of a batch asks it for the same few days and windows (a
    parse, a subtraction and a format each time)."""
    try:
        return (date.fromisoformat(day) - timedelta(days=window_days)).isoformat()
    except OverflowError:  # a window reaching before the calendar's first day starts there
        return date.min.isoformat()


@lru_cache(maxsize=4096)
def window_end(day: str, window_days: int) -> str:
    """The last ISO day of the window of ``window_days`` days that starts on ``day`` (ISO): the
    last day an order can be placed for a result of ``day`` to be its prior. Remembered."""
    try:
        return (date.fromisoformat(day) + timedelta(days=window_days)).isoformat()
    except OverflowError:  # a window reaching past the calendar's last day (a result of 9999-12-31) ends there
        return date.max.isoformat()


def to_doc(r: PriorResult, held: str | None = None) -> Document:
    """The entry of ``r`` (``held``: instead of ``r.held``, when given)."""
    doc: Document = {"_id": r.ref, "person": r.person, "patient": r.patient, "item": r.item, "inst": r.institution,
                     "day": r.day.isoformat(), "status": r.status, "order": r.order, "held": held or r.held}
    if r.analytes:
        doc["analytes"] = list(r.analytes)
    if r.results:
        doc["results"] = list(r.results)  # a report's own results (``find_recognisable``)
    if r.at:
        doc["at"] = r.at  # its time of day, when sent (an entry without one reads as its day alone)
    return doc


def listing_reports(doc: Document | None) -> tuple[str, ...] | None:
    """The reports that listed the result of ``doc`` when it was last put (``reports``: every
    stored DiagnosticReport whose ``result`` names it, whatever its status or subject), or None
    when not known: no entry, or an entry an earlier release wrote (the store is then searched)."""
    if doc is None:
        return None
    kept = doc.get("reports")
    return tuple(kept) if kept is not None else None


def from_doc(doc: Document) -> PriorResult:
    """The result an entry stands for; its ``held`` is when huren has held it final (``final_at``,
    written only where that is not when it was first stored: see ``ResultIndex.put``)."""
    return PriorResult(ref=doc["_id"], person=doc.get("person"), item=doc["item"], institution=doc["inst"],
                       day=date.fromisoformat(doc["day"]), status=doc.get("status", "unknown"),
                       patient=doc.get("patient"), order=doc.get("order"),
                       analytes=tuple(doc.get("analytes") or ()), held=doc.get("final_at") or doc.get("held"),
                       owned=doc.get("owned"), owners=owners_of(doc), at=doc.get("at"),
                       results=tuple(doc.get("results") or ()))


def owners_of(doc: Document) -> tuple[tuple[str | None, str | None], ...]:
    """An entry's ownership history (``PriorResult.owners``): ``owners`` as ``set_person`` keeps
    it; an entry a correction moved before the history was kept (``owned`` alone) was another
    person's, unknown, before ``owned``."""
    kept = doc.get("owners")
    if kept:
        return tuple((who, since) for who, since in kept)
    if doc.get("owned"):
        return ((None, None), (doc.get("person"), doc["owned"]))
    return ()


# (person, item) -> (first day, last day, the entries of the person for the item dated in between)
Windows = dict[tuple[str, str], tuple[str, str, dict[str, Document]]]
# Patient reference -> every entry of results about that record
Patients = dict[str, dict[str, Document]]


class ResultIndex:
    """The index over one collection.

    Inside ``scope()`` (one write group's hook call) what the store was asked is remembered:
    entries by key through a ``GroupMemo`` (``docs``; the entries of all the results of a group in
    one query, ``prefetch``), and each person's entries for an item over the days a range query
    covered (``_window``), so the order-time check, the group of a result and its candidates --
    the same person, item and days -- are one query, not three; and the entries of a Patient
    record when they were asked (``by_patient``; a batch's new records in one query,
    ``prefetch_patients``). Every write through this class goes to what is remembered at once;
    inside a scope an entry put is written when the scope ends (``flush``: the new ones of a whole
    ingest batch in one ``insert_many``), or before the next query that could find it, whichever
    comes first, so every query still sees every entry put. Outside a scope each call is a query
    and each put a write.
    """

    def __init__(self, collection: Collection, ahead: Collection | None = None) -> None:
        self.coll = collection
        self.docs = GroupMemo(collection)
        # reports stored ahead of the results they list (``listed_ahead``); None: not kept (a test's
        # bare index)
        self.ahead = GroupMemo(ahead) if ahead is not None else None
        self._local = threading.local()
        collection.ensure_index(["person", "item", "day"])
        collection.ensure_index(["order"])
        collection.ensure_index(["patient"])

    @contextmanager
    def scope(self) -> Iterator[None]:
        opened = self.open()
        try:
            yield
            if opened:
                self.flush()
        finally:
            if opened:
                self.close()

    def open(self) -> bool:
        """Start remembering (``scope`` without a generator); False when already open."""
        if getattr(self._local, "windows", None) is not None:
            return False
        self.docs.open()
        if self.ahead is not None:
            self.ahead.open()
        self._local.windows, self._local.patients, self._local.ahead = {}, {}, set()
        return True

    def close(self) -> None:
        """Forget everything, entries not yet flushed included (the write failed)."""
        self.docs.close()
        if self.ahead is not None:
            self.ahead.close()
        self._local.windows = self._local.patients = self._local.ahead = None

    def flush(self) -> None:
        """Write the entries put inside the scope and not yet written: each once as it ends, the
        new ones in one call (``GroupMemo.take_deferred``).

        Why deferred: a lab message puts two entries (the report's and ALT's), and each upsert
        was a statement of its own with three expression indexes to maintain (~20 us each); an
        ingest batch's ~100 new entries go in one ``insert_many``. The scope that opened the
        index calls this before it ends (inside the write's transaction), and every query below
        calls it first, so nothing a query could find is ever missing from the store."""
        self.docs.take_deferred()

    def _find(self, filter: Document) -> list[Document]:
        """``collection.find`` after the entries put so far are written (see ``flush``)."""
        self.docs.take_deferred()
        return self.coll.find(filter)

    def known_absent(self, refs: Iterable[str]) -> None:
        """Inside a scope: these results have no entry (first versions: nothing was indexed under
        their reference before), so asking the store for them is skipped."""
        self.docs.remember_absent(refs)

    def _window(self, person: str, item: str, lo: str, hi: str) -> list[Document]:
        """The entries of ``person`` for ``item`` dated in ``[lo, hi]`` (ISO days)."""
        windows: Windows | None = getattr(self._local, "windows", None)
        known = windows.get((person, item)) if windows is not None else None
        if known is not None and known[0] <= lo and hi <= known[1]:
            return [d for d in known[2].values() if lo <= d["day"] <= hi]
        docs = self._find({"person": person, "item": item, "day": {"$gte": lo, "$lte": hi}})
        if windows is not None and (known is None or (lo <= known[0] and known[1] <= hi)):
            windows[(person, item)] = (lo, hi, {d["_id"]: d for d in docs})
        return docs

    def between(self, person: str, item: str, lo: str, hi: str) -> list[Document]:
        """The entries of ``person`` for ``item`` dated in ``[lo, hi]`` (ISO days): from what the
        scope read, else one range query."""
        return self._window(person, item, lo, hi)

    def known_window(self, person: str, item: str, lo: str, hi: str) -> Iterable[Document] | None:
        """Inside a scope: the entries of ``person`` for ``item`` remembered over a range of days
        covering ``[lo, hi]`` (some may lie outside it), or None when no such range was read."""
        windows: Windows | None = getattr(self._local, "windows", None)
        known = windows.get((person, item)) if windows is not None else None
        if known is None or not (known[0] <= lo and hi <= known[1]):
            return None
        return known[2].values()

    def prefetch_windows(self, asks: Iterable[tuple[str, str, str, str]]) -> None:
        """Inside a scope: the windows ``(person, item, lo, hi)`` a write group is about to ask
        (a lab message: its order's, and each recognition item's group), read in one query for
        all of them instead of one each. A window already known is not asked again; one alone
        is left to be asked when needed, as always."""
        windows: Windows | None = getattr(self._local, "windows", None)
        if windows is None:
            return
        wanted: dict[tuple[str, str], tuple[str, str]] = {}
        for person, item, lo, hi in asks:
            known = windows.get((person, item))
            if known is not None and known[0] <= lo and hi <= known[1]:
                continue
            was = wanted.get((person, item))
            wanted[(person, item)] = (min(lo, was[0]), max(hi, was[1])) if was else (lo, hi)
        if len(wanted) < 2:
            return
        lo = min(w[0] for w in wanted.values())
        hi = max(w[1] for w in wanted.values())
        found: dict[tuple[str, str], dict[str, Document]] = {pair: {} for pair in wanted}
        for d in self._find({"person": {"$in": sorted({p for p, _ in wanted})},
                                 "item": {"$in": sorted({i for _, i in wanted})}, "day": {"$gte": lo, "$lte": hi}}):
            entries = found.get((d.get("person"), d.get("item")))
            if entries is not None:
                entries[d["_id"]] = d
        for pair, entries in found.items():  # every entry of each pair dated in [lo, hi] is among them
            known = windows.get(pair)
            if known is None or (lo <= known[0] and known[1] <= hi):
                windows[pair] = (lo, hi, entries)

    def _written(self, ref: str, doc: Document | None, before: Document | None) -> None:
        """Keep what is remembered in step with the entry ``ref`` now being ``doc`` (None: gone)
        where it was ``before`` (None: there was none): a remembered window or Patient holds an
        entry only under the person, item and record it names."""
        windows: Windows | None = getattr(self._local, "windows", None)
        if windows is None:
            return
        patients: Patients = self._local.patients
        if before is not None:
            known = windows.get((before.get("person"), before["item"]))
            if known is not None:
                known[2].pop(ref, None)
            entries = patients.get(before.get("patient"))
            if entries is not None:
                entries.pop(ref, None)
        if doc is None:
            return
        if doc.get("person"):
            known = windows.get((doc["person"], doc["item"]))
            if known is not None and known[0] <= doc["day"] <= known[1]:
                known[2][ref] = doc
        entries = patients.get(doc.get("patient"))
        if entries is not None:
            entries[ref] = doc

    def get(self, ref: str) -> Document | None:
        return self.docs.get(ref)

    def get_many(self, refs: Sequence[str]) -> list[Document]:
        """The entries of ``refs`` that exist, in one query for all of them (none for no ref):
        inside a scope through what is remembered (``GroupMemo.prefetch``), else one ``$in`` read.

        Why (moneyfix27): a report's results that its test's entries do not hold were read one
        ``get`` each; a blood count's 19 results coded locally have no entry, so each message paid
        19 reads that all missed."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return []
        if getattr(self._local, "windows", None) is not None:
            self.docs.prefetch(wanted)
            return [d for ref in wanted if (d := self.docs.get(ref)) is not None]
        found = {d["_id"]: d for d in self._find({"_id": {"$in": wanted}})}
        return [found[ref] for ref in wanted if ref in found]

    def put(self, result: PriorResult, held: str, *, before: Document | None = None, read: bool = False,
            reports: Sequence[str] | None = None) -> Document:
        """Index ``result``; ``held`` is now: when huren first stored it (kept across later versions),
        and when it became final, for a later version that did (``final_at``).
        With ``read``, ``before`` is its current entry as the caller has just read it (the write
        hook reads it anyway: one lookup per result instead of two).
        ``reports``: the stored reports that list it now (``listing_reports``), when the caller read
        them all (an Observation's link, ``Repeats._linked``); None writes none."""
        if not read:
            before = self.docs.get(result.ref)
        doc = to_doc(result, (before or {}).get("held") or held)
        if reports is not None:
            doc["reports"] = sorted(reports)
        if before is not None and doc["status"] in FINAL_STATUSES:
            # Held *final* since (``final_at``): a result first stored preliminary, or withdrawn
            # and sent again, becomes recognisable only now. R98 ("outside record not
            # accessible") and the rate ask what huren held recognisable when an order was placed:
            # a prior huren held only as a preliminary then contradicted a true R98 claim. A first
            # version that is final was final when first stored: nothing is written for it.
            if before.get("status") not in FINAL_STATUSES:
                doc["final_at"] = held
            elif before.get("final_at"):
                doc["final_at"] = before["final_at"]
        if before is not None and (before.get("was_final") or (
                before.get("status") in FINAL_STATUSES and doc["status"] not in FINAL_STATUSES)):
            # Final once, not final now (sent again preliminary, withdrawn): marked, kept across its
            # later versions, so that a final version after it re-decides the flags its leaving
            # voided (``Recognition._recheck_dependents``), while the everyday preliminary ->
            # final of a result never final before, which has no such flag, asks nothing.
            doc["was_final"] = True
        if before is not None and before.get("owned") and before.get("person") == doc["person"]:
            doc["owned"] = before["owned"]  # moved to its person by an ID correction (``set_person``)
            if before.get("owners"):
                doc["owners"] = before["owners"]
        if doc != before:
            if not self.docs.defer(doc, before):  # outside a scope: written now
                self.docs.replace(doc)
            self._written(doc["_id"], doc, before)
        return doc

    def delete(self, ref: str) -> bool:
        before = self.docs.get(ref)
        done = self.docs.delete(ref)
        self._written(ref, None, before)
        return done

    def listed_ahead(self, ref: str) -> tuple[str, ...]:
        """The reports noted as stored listing ``ref`` before it was stored (``note_ahead``); they
        may have been changed or deleted since: the caller reads each."""
        if self.ahead is None:
            return ()
        doc = self.ahead.get(ref)
        if doc is None or not doc.get("reports"):
            return ()
        found = getattr(self._local, "ahead", None)
        if found is not None:
            found.add(ref)
        return tuple(doc["reports"])

    def prefetch_ahead(self, refs: Iterable[str]) -> None:
        """Inside a scope: the notes of ``refs`` (a batch's or a group's new results) in one query."""
        if self.ahead is not None:
            self.ahead.prefetch(refs)

    def note_ahead(self, ref: str, report: str) -> None:
        """``report`` is stored listing ``ref``, which has no entry and is not stored: noted, so that
        its first version, written together with another report, still reads this one
        (``Repeats._reports_of``: a result's first version asks no search of the store)."""
        if self.ahead is None:
            return
        doc = self.ahead.get(ref)
        kept = list(doc.get("reports") or ()) if doc is not None else []
        if report not in kept:
            self.ahead.replace({"_id": ref, "reports": sorted([*kept, report])})

    def unnote_ahead(self, ref: str, report: str) -> None:
        """``report`` no longer lists ``ref`` (deleted, or written again without it): taken out of
        its note, the note deleted when no report is left in it (rv37f: notes outlived their
        reports and grew for ever)."""
        if self.ahead is None:
            return
        doc = self.ahead.get(ref)
        kept = list(doc.get("reports") or ()) if doc is not None else []
        if report not in kept:
            return
        kept.remove(report)
        if kept:
            self.ahead.replace({"_id": ref, "reports": kept})
        else:
            self.ahead.delete(ref)

    def drop_stored(self, refs: Sequence[str]) -> None:
        """The notes of ``refs``, results stored in an earlier write group (their first versions put:
        a note is read only for a first version), deleted where there are any: one query for all of
        them, through what the scope remembers (``GroupMemo.prefetch``).

        Always inside a write group's scope: the one caller is ``Repeats._note_unindexed``, reached
        only from ``relink_listed`` (a report given), whose callers -- the group's reports
        (``_relink_reports``) and an order checked (``on_order``, through ``on_write``) -- run only in
        ``_decide_writes``, under ``_in_group``'s memo scope; the upgrade's ``_relink([ref])`` gives no
        report and collects none. wardlink38's branch for no scope (a query of the collection of its
        own) was never run (rv38c) and is gone (wfix38); were a caller to come without a scope, the
        memo reads each note by id (``GroupMemo.get``): the same answer, a read apiece."""
        if self.ahead is None or not refs:
            return
        self.ahead.prefetch(refs)
        for ref in [ref for ref in dict.fromkeys(refs) if self.ahead.get(ref) is not None]:
            self.ahead.delete(ref)

    def drop_ahead(self, ref: str) -> None:
        """The note of ``ref``, when this scope read one (``listed_ahead``), taken over by its entry
        (``reports``) once it is put: deleted (no query for a result that had none)."""
        found = getattr(self._local, "ahead", None)
        if self.ahead is not None and found is not None and ref in found:
            found.discard(ref)
            self.ahead.delete(ref)

    def candidates(self, person: str, item: str, day: date, window_days: int) -> list[PriorResult]:
        """Results of the person for the item dated in ``[day - window, day]``: one range query."""
        hi = day.isoformat()
        return [from_doc(d) for d in self._window(person, item, window_start(hi, window_days), hi)]

    def group(self, doc: Document, window_days: int = 0) -> list[Document]:
        """Every indexed result of the same performed test as ``doc`` (see ``group_key``).

        ``window_days``: the item's window, read along in the same query (inside a scope), since
        the candidates of the test's order are asked next and most orders are dated the day of
        their result."""
        if doc.get("person"):
            lo = window_start(doc["day"], window_days) if window_days > 0 else doc["day"]
            if getattr(self._local, "windows", None) is None:
                lo = doc["day"]  # no scope: nothing to read along for
            found = [d for d in self._window(doc["person"], doc["item"], lo, doc["day"]) if d["day"] == doc["day"]]
        else:
            found = self._find({"patient": doc.get("patient"), "item": doc["item"], "day": doc["day"]})
        return [d for d in found if d["inst"] == doc["inst"]]

    def by_order(self, order_ref: str) -> list[Document]:
        return self._find({"order": order_ref})

    def by_patient(self, patient_ref: str) -> list[Document]:
        patients: Patients | None = getattr(self._local, "patients", None)
        if patients is None:
            return self.coll.find({"patient": patient_ref})
        if patient_ref not in patients:
            patients[patient_ref] = {d["_id"]: d for d in self._find({"patient": patient_ref})}
        return list(patients[patient_ref].values())

    def prefetch_patients(self, patient_refs: Iterable[str]) -> None:
        """Inside a scope: the entries of these Patient records (a batch's new records, whose
        hook asks whether results named them before they were stored), in one query."""
        patients: Patients | None = getattr(self._local, "patients", None)
        if patients is None:
            return
        wanted = sorted({r for r in patient_refs if r not in patients})
        if len(wanted) < 2:
            return
        for ref in wanted:
            patients[ref] = {}
        for d in self._find({"patient": {"$in": wanted}}):
            patients[d["patient"]][d["_id"]] = d

    def set_person(self, docs: Sequence[Document], person: str | None, since: str | None = None) -> None:
        """The entries ``docs`` become ``person``'s; ``since``: the instant of the ID-number
        correction that moved them, kept as ``owned`` (for that person they count as held only
        from then: ``decision.assess``) and appended to the entry's ownership history (``owners``:
        a correction reversed gives the result back to the first person for the orders placed
        while it was theirs). Without ``since`` (the record's first valid number) they are the
        person's from the start: no history."""
        self.docs.take_deferred()  # an update reads the stored entry
        for d in docs:
            if d.get("person") != person:
                changes: Document = {"person": person}
                if since:
                    history = [list(o) for o in owners_of(d)] or [[d.get("person"), None]]
                    changes["owned"], changes["owners"] = since, [*history, [person, since]]
                elif d.get("owned"):
                    changes["owned"] = changes["owners"] = None
                self.docs.update(d["_id"], changes)
                self._written(d["_id"], {**d, **changes}, d)


def day_range(start: date | None, end: date | None) -> dict[str, Any] | None:
    cond: dict[str, Any] = {}
    if start:
        cond["$gte"] = start.isoformat()
    if end:
        cond["$lte"] = end.isoformat()
    return cond or None
