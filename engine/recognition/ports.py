"""What recognition's once-per-store passes ask of the store and of the results index, declared once.

Why one module: ``billed_lines`` (payfix18, moneylast19) and ``repricing`` (moneyfix27) each declared
the same ``_Store`` and ``_Index`` Protocols and the same paged walk over a collection; a member added
to one copy (a pass needing one more store call) left the other describing a store that no longer
matched what the passes are handed. Both, and ``upgrade``, take them from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from engine.repository.port import Collection, Documents

PAGE = 2000  # rows a once-per-store pass reads at a time (a province's rows never all in memory)


# The recognition store a pass reads and writes (``engine.store``'s): its collections and the write
# transaction every pass re-reads a row under -- the storage port's own ``Documents`` (the part of
# ``port.Store`` without the FHIR backend), not a second declaration of it (twenty-ninth round).
Store = Documents


class Index(Protocol):
    """The results index (``engine.recognition.index.ResultIndex``) as the passes read it: one entry
    by its "Type/id"."""

    def get(self, ref: str) -> dict[str, Any] | None: ...


def each_by_id(coll: Collection) -> Iterator[dict[str, Any]]:
    """Every row of ``coll`` by ``_id``, a page at a time: a store's rows are never all held in
    memory, and a row written meanwhile past the page is still met."""
    last = ""
    while page := coll.find({"_id": {"$gt": last}}, sort=[("_id", 1)], limit=PAGE):
        last = page[-1]["_id"]
        yield from page
