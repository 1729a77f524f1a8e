"""``GroupMemo``: a collection's documents by key, remembered for one write group of the hook.

Why: the recognition hook of one lab message asks the same few keys again and again (the order's
check row when the order is written, when each of its results is decided, when the outcome is
set; each result's index entry), and each ask was a query. Inside ``GroupMemo.scope()`` the
documents read or written by key through the memo are remembered for this thread, and the index
entries of all the results of a write group are fetched in one query (``prefetch``); outside a
scope every call goes straight to the collection. Writes go to the collection first, then to the
memo, so the memo never holds what the store does not; the scope ends with the hook call that
opened it (a write the hook itself makes nests in it and shares it).

Documents handed out are the ones remembered: callers build new documents (``{**old, ...}``)
rather than changing one in place, as they always did with what ``get`` returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.repository.port import Collection, Document

_ABSENT = None  # remembered: no document with this key


class GroupMemo:
    """Key lookups of ``collection`` remembered per thread inside ``scope()`` (see module docstring).

    Everything but ``get``, ``get_many``, ``replace``, ``update`` and ``delete`` is the collection's own.
    """

    def __init__(self, collection: Collection) -> None:
        self.coll = collection
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:  # find, count, insert, insert_many, ensure_index, name
        return getattr(self.coll, name)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Remember key lookups until the outermost scope of this thread ends."""
        outer = getattr(self._local, "docs", None)
        if outer is not None:
            yield
            return
        self._local.docs = {}
        try:
            yield
        finally:
            self._local.docs = None

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

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        self.coll.replace(doc, upsert=upsert)
        docs = self._docs()
        if docs is not None:
            if upsert or docs.get(doc["_id"]) is not None:
                docs[doc["_id"]] = doc
            else:
                docs.pop(doc["_id"], None)

    def update(self, doc_id: str, fields: Document) -> bool:
        done = self.coll.update(doc_id, fields)
        docs = self._docs()
        if docs is not None:
            before = docs.get(doc_id)
            if done and before is not None:
                docs[doc_id] = {**before, **fields}
            else:
                docs.pop(doc_id, None)  # not known here: asked again when needed
        return done

    def delete(self, doc_id: str) -> bool:
        done = self.coll.delete(doc_id)
        docs = self._docs()
        if docs is not None:
            docs[doc_id] = _ABSENT
        return done
