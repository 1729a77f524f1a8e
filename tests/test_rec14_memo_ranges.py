"""``GroupMemo.prefetch_ranges`` / ``in_range`` (the check rows of the orders a result may be the
prior of, read once for an ingest batch) answer what a query of the store would, as the scope
holds it, on both backends: rows written in the scope and not stored yet, rows moved into or out
of a pair, rows deleted, and a row changed by an update the memo had not read."""

from __future__ import annotations

from typing import Any

from engine.recognition.memo import GroupMemo
from engine.repository.port import Store


def _row(rid: str, person: str, item: str, day: str) -> dict[str, Any]:
    return {"_id": rid, "person": person, "item": item, "day": day, "source": "order"}


def _ids(rows: list[dict[str, Any]] | None) -> list[str] | None:
    return None if rows is None else sorted(r["_id"] for r in rows)


def test_ranges_follow_every_write_of_the_scope(store: Store) -> None:
    coll = store.collection("ranges_test")
    coll.ensure_index(["person", "item", "day"])
    for row in (_row("o1", "P", "CBC", "2026-03-01"), _row("o2", "P", "CBC", "2026-03-05"),
                _row("o3", "P", "LFT", "2026-03-05"), _row("o4", "Q", "CBC", "2026-03-04"),
                _row("o5", "P", "CBC", "2026-03-20")):
        coll.insert(row)
    memo = GroupMemo(coll, ranged=("person", "item", "day"))
    with store.transaction(), memo.scope():
        memo.prefetch(["o9"])  # a new order's row: remembered absent, then written in the scope
        assert memo.defer(_row("o9", "P", "CBC", "2026-03-03"), None)
        memo.prefetch_ranges([("P", "CBC", "2026-03-01", "2026-03-08"), ("Q", "CBC", "2026-03-01", "2026-03-08")])
        calls = []
        real = coll.find
        coll.find = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[method-assign]
        try:
            assert _ids(memo.in_range("P", "CBC", "2026-03-01", "2026-03-08")) == ["o1", "o2", "o9"]
            assert _ids(memo.in_range("P", "CBC", "2026-03-02", "2026-03-04")) == ["o9"]
            assert memo.in_range("P", "CBC", "2026-03-01", "2026-03-21") is None  # wider than read
            assert memo.in_range("P", "LFT", "2026-03-01", "2026-03-08") is None  # not asked
            memo.defer({**memo.get("o4"), "person": "P"}, memo.get("o4"))  # an ID correction moves it
            memo.replace(_row("o6", "P", "CBC", "2026-03-06"))
            assert memo.delete("o1")
            assert _ids(memo.in_range("P", "CBC", "2026-03-01", "2026-03-08")) == ["o2", "o4", "o6", "o9"]
            assert _ids(memo.in_range("Q", "CBC", "2026-03-01", "2026-03-08")) == []
            assert calls == []  # all of it from what the scope read and wrote
        finally:
            del coll.find
        assert memo.update("o5", {"day": "2026-03-07"})  # not read in the scope: ranges read again
        assert memo.in_range("P", "CBC", "2026-03-01", "2026-03-08") is None
    assert memo.in_range("P", "CBC", "2026-03-01", "2026-03-08") is None  # outside a scope: the store's
