"""An ingest batch reads each order's check row from the store once.

The batch preview (``BatchScope._preview``) reads two sets of check rows: those of the orders each
result may be the prior of (person, item, from the result's day to its window's end: one range
query) and, by id, those of the batch's own orders and of the other orders of each test (a
returning resident's earlier order of the same test that day). The second set lies mostly inside
the first: the range of each result starts at its day, the day of its test's other orders. Read
by id first, every such row came back twice and was parsed twice (the bench's third of returning
residents: ~100 rows a batch). The ranges are read first now, and the read by id asks only for
the rows they did not hold.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine


def test_a_batch_of_returning_residents_reads_each_check_row_once(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = engine.ingestor.process([(oru_lab(n), "bench", "127.0.0.1:1") for n in range(1, 11)])
    assert all(b"MSA|AA|" in o.ack for o in first)
    coll = engine.recognition.checks.coll
    read: Counter[str] = Counter()
    find = coll.find

    def counted(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        found = find(*args, **kwargs)
        read.update(d["_id"] for d in found)
        return found

    monkeypatch.setattr(coll, "find", counted)
    # the same ten residents again, the same test on the same day at the same institution
    again = engine.ingestor.process([(oru_lab(n + 499), "bench", "127.0.0.1:1") for n in range(1, 11)])
    assert all(b"MSA|AA|" in o.ack for o in again)
    assert engine.ingestor.stats.redone_batches == 0
    earlier = {d["_id"] for d in find({"_id": {"$in": sorted(read)}})}
    assert len(earlier) == 10, read  # the earlier orders' rows were read: their tests were decided
    assert max(read.values()) == 1, read
