"""``GroupMemo``: a collection's documents by key, remembered for one write group of the hook.

Why: the recognition hook of one lab message asks the same few keys again and again (the order's
check row when the order is written, when each of its results is decided, when the outcome is
set; each result's index entry), and each ask was a query. Inside ``GroupMemo.scope()`` the
documents read or written by key through the memo are remembered for this thread, and the index
entries of all the results of a write group are fetched in one query (``prefetch``); outside a
scope every call goes straight to the collection. Writes go to the collection first, then to the
memo, so the memo never holds what the store does not; the scope ends with the hook call that
opened it (a write the hook itself makes nests in it and shares it), or with the ingest batch
that opened it around all its messages' hook calls (``Recognition.batch``).

Documents handed out are the ones remembered: callers build new documents (``{**old, ...}``)
rather than changing one in place, as they always did with what ``get`` returned.

A write may also be *deferred* to the end of the scope (``defer``): an order's check row is
written when the order is stored and again when its result sets the outcome, in the same
message; deferred, the row is written once, with the document as it ends, and the caller
learns what it was before the scope touched it (``take_deferred``) to move its tallies once.
Until then the memo answers with the deferred document, as the store will.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.repository.port import Collection, Document, DuplicateKey, write_out

_ABSENT = None  # remembered: no document with this key


class GroupMemo:
    """Key lookups of ``collection`` remembered per thread inside ``scope()`` (see module docstring).

    Everything but ``get``, ``get_many``, ``replace``, ``update`` and ``delete`` is the collection's own.
    """

    def __init__(self, collection: Collection, ranged: tuple[str, str, str] | None = None) -> None:
        self.coll = collection
        self._local = threading.local()
        # (a, b, c): documents asked by a == x, b == y, c in [lo, hi] (``prefetch_ranges``)
        self._ranged = ranged

    def __getattr__(self, name: str) -> Any:  # find, count, insert, insert_many, ensure_index, name
        return getattr(self.coll, name)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Remember key lookups until the outermost scope of this thread ends (deferred writes,
        if any, are the caller's to take before it ends: see ``take_deferred``)."""
        opened = self.open()
        try:
            yield
        finally:
            if opened:
                self.close()

    def open(self) -> bool:
        """Start remembering (``scope`` without a generator, for a caller that opens several);
        False when this thread's scope is open already (the caller then must not ``close``)."""
        local = self._local
        if getattr(local, "docs", None) is not None:
            return False
        local.docs, local.deferred, local.ranges = {}, {}, {}
        return True

    def close(self) -> None:
        """Forget everything, deferred writes not taken included (the write failed)."""
        self._local.docs = self._local.deferred = self._local.ranges = None

    def _docs(self) -> dict[str, Document | None] | None:
        return getattr(self._local, "docs", None)

    def get(self, doc_id: str) -> Document | None:
        docs = self._docs()
        if docs is None:
            return self.coll.get(doc_id)
        if doc_id not in docs:
            docs[doc_id] = self.coll.get(doc_id)
        return docs[doc_id]

    def prefetch(self, doc_ids: Iterable[str]) -> None:
        """Fetch the documents of ``doc_ids`` not yet remembered in one query (inside a scope only)."""
        docs = self._docs()
        if docs is None:
            return
        wanted = list(dict.fromkeys(i for i in doc_ids if i not in docs))
        if not wanted:
            return
        if len(wanted) == 1:
            docs[wanted[0]] = self.coll.get(wanted[0])
            return
        found = {d["_id"]: d for d in self.coll.find({"_id": {"$in": wanted}})}
        for doc_id in wanted:
            docs[doc_id] = found.get(doc_id, _ABSENT)

    def prefetch_ranges(self, asks: Iterable[tuple[Any, Any, str, str]]) -> None:
        """Inside a scope, with ``ranged`` fields (a, b, c): the documents with a == x, b == y and
        c in [lo, hi] for each ask ``(x, y, lo, hi)``, read in one query for all of them, and
        remembered, so that ``in_range`` answers without one. A pair already known over its
        range is not asked again; a single ask is left to be asked when needed.

        Why: the recognition hook asks, for each new final result, the check rows of its
        person's orders for the item from the result's day to the end of its window (the
        repeats it may be the prior of); an ingest batch's ~100 such asks are one query."""
        docs, ranges = self._docs(), getattr(self._local, "ranges", None)
        if docs is None or ranges is None or self._ranged is None:
            return
        wanted: dict[tuple[Any, Any], tuple[str, str]] = {}
        for x, y, lo, hi in asks:
            known = ranges.get((x, y))
            if known is not None and known[0] <= lo and hi <= known[1]:
                continue
            was = wanted.get((x, y))
            wanted[(x, y)] = (min(lo, was[0]), max(hi, was[1])) if was else (lo, hi)
        if len(wanted) < 2:
            return
        a, b, c = self._ranged
        lo, hi = min(w[0] for w in wanted.values()), max(w[1] for w in wanted.values())
        found: dict[tuple[Any, Any], set[str]] = {pair: set() for pair in wanted}
        for d in self.coll.find({a: {"$in": sorted({x for x, _ in wanted})}, b: {"$in": sorted({y for _, y in wanted})},
                                 c: {"$gte": lo, "$lte": hi}}):
            docs.setdefault(d["_id"], d)  # a version written in this scope stands
            ids = found.get((d.get(a), d.get(b)))
            if ids is not None:
                ids.add(d["_id"])
        for doc_id, d in docs.items():  # written in this scope: not in the store yet, or moved here
            ids = found.get((d.get(a), d.get(b))) if d is not None else None
            if ids is not None and lo <= (d.get(c) or "") <= hi:
                ids.add(doc_id)
        for pair, ids in found.items():  # every document of each pair with c in [lo, hi] is among them
            known = ranges.get(pair)
            if known is not None and lo <= known[1] and known[0] <= hi:  # overlapping: one range
                ranges[pair] = (min(lo, known[0]), max(hi, known[1]), ids | known[2])
            else:
                ranges[pair] = (lo, hi, ids)

    def in_range(self, x: Any, y: Any, lo: str, hi: str) -> list[Document] | None:
        """Inside a scope: the documents with a == x, b == y and c in [lo, hi] as they stand here
        (``prefetch_ranges`` read them, every write since is noted), or None when that range was
        not read (the caller asks the store)."""
        ranges = getattr(self._local, "ranges", None)
        known = ranges.get((x, y)) if ranges else None
        if known is None or not (known[0] <= lo and hi <= known[1]) or self._ranged is None:
            return None
        a, b, c = self._ranged
        docs = self._local.docs
        out = [docs.get(i) for i in known[2]]
        return [d for d in out if d is not None and d.get(a) == x and d.get(b) == y and lo <= (d.get(c) or "") <= hi]

    def _note(self, doc: Document) -> None:
        """A document written inside the scope joins the range read for its pair (if any)."""
        if self._ranged is None:
            return
        ranges = getattr(self._local, "ranges", None)
        if ranges:
            known = ranges.get((doc.get(self._ranged[0]), doc.get(self._ranged[1])))
            if known is not None:
                known[2].add(doc["_id"])

    def remember_absent(self, doc_ids: Iterable[str]) -> None:
        """Inside a scope: the caller knows these keys have no document (no query for them)."""
        docs = self._docs()
        if docs is not None:
            for doc_id in doc_ids:
                docs.setdefault(doc_id, _ABSENT)

    def find_equal(self, fields: Document) -> list[Document]:
        """The documents whose ``fields`` equal the values given, as they stand inside the scope
        (``find_where`` with equality)."""
        return self.find_where(dict(fields), lambda d: all(d.get(k) == v for k, v in fields.items()))

    def find_where(self, filter: Document, matches: Callable[[Document], bool]) -> list[Document]:
        """The documents ``filter`` finds, as they stand inside the scope: the store's, each as
        remembered when it was read or written here since (a deferred write is not in the store
        yet), and those remembered here that the store does not hold yet; ``matches`` is
        ``filter`` said in Python, applied to every one of them (a remembered version may no
        longer match, or may match where the stored one did not). Outside a scope: the store's."""
        found: dict[str, Document | None] = {d["_id"]: d for d in self.coll.find(filter)}
        docs = self._docs()
        if docs is not None:
            for doc_id, doc in docs.items():
                if doc_id in found or doc is not None:
                    found[doc_id] = doc
        return [d for d in found.values() if d is not None and matches(d)]

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        self.coll.replace(doc, upsert=upsert)
        docs = self._docs()
        if docs is not None:
            if upsert or docs.get(doc["_id"]) is not None:
                docs[doc["_id"]] = doc
                self._note(doc)
            else:
                docs.pop(doc["_id"], None)

    def update(self, doc_id: str, fields: Document) -> bool:
        done = self.coll.update(doc_id, fields)
        docs = self._docs()
        if docs is not None:
            before = docs.get(doc_id)
            if done and before is not None:
                docs[doc_id] = {**before, **fields}
                self._note(docs[doc_id])
            else:
                docs.pop(doc_id, None)  # not known here: asked again when needed
                if getattr(self._local, "ranges", None):
                    self._local.ranges.clear()  # it may have moved into a range read: read again
        return done

    def defer(self, doc: Document, before: Document | None) -> bool:
        """Inside a scope: remember ``doc`` (upserted) as written, for ``take_deferred`` to write at
        the end; ``before`` is the document as the caller read it. False outside a scope (the
        caller writes it now)."""
        docs = self._docs()
        if docs is None:
            return False
        deferred = self._local.deferred
        if doc["_id"] not in deferred:
            deferred[doc["_id"]] = before
        docs[doc["_id"]] = doc
        self._note(doc)
        return True

    def take_deferred(self) -> list[tuple[Document | None, Document]]:
        """Write the deferred documents, each once as it ends; (before the scope, after) of each
        that changed, for the caller's tallies. Call before the scope ends.

        The documents that did not exist when first read (a new order's check row, a new flag) go
        in one ``insert_many``: over an ingest batch of ~50 messages that is one call instead of
        one each (should another writer have stored one meanwhile, they are upserted one by one,
        as before). The others are replaced one by one."""
        deferred, docs = getattr(self._local, "deferred", None), getattr(self._local, "docs", None)
        if not deferred:
            return []
        self._local.deferred = {}
        out: list[tuple[Document | None, Document]] = []
        for doc_id, before in deferred.items():
            after = docs[doc_id]
            if after is not None and after != before:
                out.append((before, after))
        write_out(self.coll, [after for before, after in out if before is not None],
                  [after for before, after in out if before is None])
        return out

    def take_deferred_if(self, write_if: Callable[[Document | None, Document], bool]
                         ) -> tuple[list[tuple[Document | None, Document]], list[str]]:
        """``take_deferred`` with each document written by ``write_if(before, after)``, a compare-and-set on the
        version read (``before``; None: none stored) that answers False when another process wrote it meanwhile --
        those deferred unchanged too (``after == before``: the caller's ``write_if`` compares them only). Returns
        (before, after) of each written that changed, and the ids of those not written: forgotten here, so that the
        next ``get`` reads the stored one, which the caller decides again from.

        The new ones go in one ``insert_many`` still -- itself conditional: it stores none when one exists (SQLite's
        savepoint; Mongo's ordered insert stops at it) -- and only when it is refused are the others written one by
        one; those the refused insert had stored already are told by its count (``DuplicateKey.inserted``), never by
        the stored document reading back equal: another process's identical row, stored meanwhile, had been taken
        for this call's and its tally moved twice (rv44f LOW 1)."""
        deferred, docs = getattr(self._local, "deferred", None), getattr(self._local, "docs", None)
        if not deferred or docs is None:
            return [], []
        self._local.deferred = {}
        changed = [(before, after) for doc_id, before in deferred.items() if (after := docs[doc_id]) is not None]
        new = [after for before, after in changed if before is None]
        mine: set[str] = set()  # the new ones the one ``insert_many`` stored
        if len(new) > 1:
            try:
                self.coll.insert_many(new)
                mine = {d["_id"] for d in new}
            except DuplicateKey as exc:  # (the first ``inserted`` are this call's, not one another stored equal)
                mine = {d["_id"] for d in new[:exc.inserted]}
        out: list[tuple[Document | None, Document]] = []
        lost: list[str] = []
        for before, after in changed:
            if (before is None and after["_id"] in mine) or write_if(before, after):
                if after != before:
                    out.append((before, after))
            else:
                lost.append(after["_id"])
                docs.pop(after["_id"], None)
                if getattr(self._local, "ranges", None):
                    self._local.ranges.clear()  # it may have moved out of a range read: read again
        return out, lost

    def delete(self, doc_id: str) -> bool:
        done = self.coll.delete(doc_id)
        docs = self._docs()
        if docs is not None:
            docs[doc_id] = _ABSENT
        return done
