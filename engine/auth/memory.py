"""An in-process ``Collection`` for the auth state when the engine runs without a store.

The engine normally hands ``AuthService`` its ``Store`` (SQLite or MongoDB), and revocations,
authorization codes, refresh tokens and lock-outs are then shared by every worker and survive
restarts. This class exists so ``AuthService`` can also be used on its own (a CLI verb, a
benchmark) — single-process, lost on exit. It implements the subset of the ``Collection``
protocol (engine/repository/port.py) that the auth code uses, with the same semantics.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from typing import Any

from engine.repository.port import Document, DuplicateKey

_OPS = {
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$ne": lambda a, b: a != b,
    "$in": lambda a, b: a in b,
}


def _get(doc: Document, dotted: str) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _matches(doc: Document, flt: Document | None) -> bool:
    for key, cond in (flt or {}).items():
        value = _get(doc, key)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            if not all(_OPS[op](value, arg) for op, arg in cond.items()):
                return False
        elif value != cond:
            return False
    return True


class MemoryCollection:
    def __init__(self, name: str) -> None:
        self.name = name
        self._docs: dict[str, Document] = {}
        self._lock = threading.Lock()

    def ensure_index(self, fields: Sequence[str], *, unique: bool = False) -> None:
        return None

    def insert(self, doc: Document) -> None:
        with self._lock:
            if doc["_id"] in self._docs:
                raise DuplicateKey(doc["_id"])
            self._docs[doc["_id"]] = copy.deepcopy(doc)

    def insert_many(self, docs: Sequence[Document]) -> None:
        for d in docs:
            self.insert(d)

    def get(self, doc_id: str) -> Document | None:
        d = self._docs.get(doc_id)
        return copy.deepcopy(d) if d is not None else None

    def replace(self, doc: Document, *, upsert: bool = True) -> None:
        with self._lock:
            if upsert or doc["_id"] in self._docs:
                self._docs[doc["_id"]] = copy.deepcopy(doc)

    def update(self, doc_id: str, fields: Document) -> bool:
        with self._lock:
            if doc_id not in self._docs:
                return False
            self._docs[doc_id].update(copy.deepcopy(fields))
            return True

    def delete(self, doc_id: str) -> bool:
        with self._lock:
            return self._docs.pop(doc_id, None) is not None

    def find(self, filter: Document | None = None, *, sort: Sequence[tuple[str, int]] = (),
             limit: int | None = None, skip: int = 0) -> list[Document]:
        rows = [copy.deepcopy(d) for d in self._docs.values() if _matches(d, filter)]
        for key, direction in reversed(list(sort)):
            rows.sort(key=lambda d, k=key: (_get(d, k) is None, _get(d, k)), reverse=direction < 0)
        rows = rows[skip:]
        return rows if limit is None else rows[:limit]

    def count(self, filter: Document | None = None) -> int:
        return sum(1 for d in self._docs.values() if _matches(d, filter))


class MemoryStore:
    """Just enough of ``Store`` for ``AuthService``: named collections, a no-op transaction."""

    def __init__(self) -> None:
        self._collections: dict[str, MemoryCollection] = {}

    def collection(self, name: str) -> MemoryCollection:
        return self._collections.setdefault(name, MemoryCollection(name))

    def transaction(self):  # noqa: ANN201 - contextlib type
        import contextlib

        return contextlib.nullcontext()

    def close(self) -> None:
        self._collections.clear()
