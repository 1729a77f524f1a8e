"""The compact index of recognisable results: one small document per stored result.

The order-time check must answer in a few milliseconds with tens of millions of results stored,
so it never searches FHIR resources: the write hook keeps ``recognition_results`` (keyed by the
result's reference) with the person, item and day, and the check is one indexed range query on
``(person, item, day)``. Non-final results are kept too (a later correction makes them final, and
the duplicate flag needs the test even while preliminary); the decision filters them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from engine.recognition.decision import PriorResult
from engine.recognition.memo import GroupMemo
from engine.repository.port import Collection, Document

RESULTS = "recognition_results"


def group_key(doc: Document) -> str:
    """One performed test: institution, person, item and day. A report and its observations (which
    carry no order reference of their own), the imaging study, and a correction all fall in the same
    group; two orders for the same item at the same institution on the same day count as one test."""
    return f"{doc['inst']}|{doc.get('person') or doc.get('patient')}|{doc['item']}|{doc['day']}"


def to_doc(r: PriorResult) -> Document:
    doc: Document = {"_id": r.ref, "person": r.person, "patient": r.patient, "item": r.item, "inst": r.institution,
                     "day": r.day.isoformat(), "status": r.status, "order": r.order, "held": r.held}
    if r.analytes:
        doc["analytes"] = list(r.analytes)
    return doc


def from_doc(doc: Document) -> PriorResult:
    return PriorResult(ref=doc["_id"], person=doc.get("person"), item=doc["item"], institution=doc["inst"],
                       day=date.fromisoformat(doc["day"]), status=doc.get("status", "unknown"),
                       patient=doc.get("patient"), order=doc.get("order"),
                       analytes=tuple(doc.get("analytes") or ()), held=doc.get("held"))


class ResultIndex:
    """The index over one collection. Entries are read and written by key through a ``GroupMemo``
    (``docs``): inside its ``scope()`` the hook asks the store once per write group, not once per
    result (``prefetch``); range queries always go to the collection."""

    def __init__(self, collection: Collection) -> None:
        self.coll = collection
        self.docs = GroupMemo(collection)
        collection.ensure_index(["person", "item", "day"])
        collection.ensure_index(["order"])
        collection.ensure_index(["patient"])

    def get(self, ref: str) -> Document | None:
        return self.docs.get(ref)

    def put(self, result: PriorResult, held: str, *, before: Document | None = None, read: bool = False) -> Document:
        """Index ``result``; ``held`` is when huren first stored it (kept across later versions).
        With ``read``, ``before`` is its current entry as the caller has just read it (the write
        hook reads it anyway: one lookup per result instead of two)."""
        if not read:
            before = self.docs.get(result.ref)
        doc = to_doc(replace(result, held=(before or {}).get("held") or held))
        if doc != before:
            self.docs.replace(doc)
        return doc

    def delete(self, ref: str) -> bool:
        return self.docs.delete(ref)

    def candidates(self, person: str, item: str, day: date, window_days: int) -> list[PriorResult]:
        """Results of the person for the item dated in ``[day - window, day]``: one range query."""
        lo = (day - timedelta(days=window_days)).isoformat()
        docs = self.coll.find({"person": person, "item": item, "day": {"$gte": lo, "$lte": day.isoformat()}})
        return [from_doc(d) for d in docs]

    def group(self, doc: Document) -> list[Document]:
        """Every indexed result of the same performed test as ``doc`` (see ``group_key``)."""
        if doc.get("person"):
            found = self.coll.find({"person": doc["person"], "item": doc["item"], "day": doc["day"]})
        else:
            found = self.coll.find({"patient": doc.get("patient"), "item": doc["item"], "day": doc["day"]})
        return [d for d in found if d["inst"] == doc["inst"]]

    def by_order(self, order_ref: str) -> list[Document]:
        return self.coll.find({"order": order_ref})

    def by_patient(self, patient_ref: str) -> list[Document]:
        return self.coll.find({"patient": patient_ref})

    def set_person(self, docs: Sequence[Document], person: str | None) -> None:
        for d in docs:
            if d.get("person") != person:
                self.docs.update(d["_id"], {"person": person})


def day_range(start: date | None, end: date | None) -> dict[str, Any] | None:
    cond: dict[str, Any] = {}
    if start:
        cond["$gte"] = start.isoformat()
    if end:
        cond["$lte"] = end.isoformat()
    return cond or None
