"""Values computed once from an object that is never changed after loading (a site's mapping table,
a message template), looked up by the object's identity.

The converter compiles each mapping table and template it meets into closures, once. Keyed by
``id(table)`` alone a reloaded site's new tables would miss the cache -- right -- but the old
entries stayed for the life of the process: every SIGHUP reload, quarantine replay after a site
edit, or engine made in the same process (the test suite makes hundreds) left its compiled
closures behind, which the collector then walked on every full collection (a test worker grew
to ~1.8 GB, most of it these closures). Here each entry keeps its key alive (so its id cannot be
reused by another object while the entry stands) and the whole cache is emptied when it holds
``limit`` entries: the tables in use are compiled again on their next message, old ones go.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """A cache of values by their key object's identity, emptied when ``limit`` entries are held."""

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int) -> None:
        self._entries: dict[int, tuple[K, V]] = {}
        self.limit = limit

    def get(self, key: K) -> V | None:
        hit = self._entries.get(id(key))
        return hit[1] if hit is not None and hit[0] is key else None

    def put(self, key: K, value: V) -> V:
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)
