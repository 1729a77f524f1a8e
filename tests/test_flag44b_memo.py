"""flag44b: ``GroupMemo.take_deferred_if`` tells the new rows its one ``insert_many`` stored by the insert's own count,
never by a row reading back equal (rv44f LOW 1).

On MongoDB an ordered ``insert_many`` stops at a duplicate key: the rows before it are stored, the rest are not. The
memo took any of the rest that read back equal to its own as "written by this call" -- so another process's identical
new flag, stored meanwhile, was counted as this call's too, and its tally moved a second time with no redo. Both
backends, the real collections: SQLite's refusal stores none (its savepoint), MongoDB's the ones before the duplicate.
"""

from __future__ import annotations

from engine.recognition.memo import GroupMemo
from engine.repository.port import DuplicateKey, Store


def _insert_only(coll: object) -> object:
    def write_if(before: dict | None, after: dict) -> bool:
        assert before is None
        return coll.replace_if(after, None)  # type: ignore[attr-defined]
    return write_if


def test_a_row_another_process_stored_the_same_is_not_taken_as_this_calls(store: Store) -> None:
    coll = store.collection("memo_flag44b")
    memo = GroupMemo(coll)
    rows = [{"_id": k, "status": "flagged", "n": 1} for k in ("a", "b", "c")]
    with store.transaction(), memo.scope():
        memo.remember_absent(["a", "b", "c"])
        for row in rows:
            assert memo.defer(row, None)
        coll.insert(dict(rows[1]))  # another process's identical new row, stored before this one's insert
        out, lost = memo.take_deferred_if(_insert_only(coll))
    assert [after["_id"] for _, after in out] == ["a", "c"] and lost == ["b"]
    assert {d["_id"] for d in coll.find({})} == {"a", "b", "c"}


def test_a_refused_insert_many_says_how_many_it_stored(store: Store) -> None:
    """``DuplicateKey.inserted`` is what the refused call left stored: on SQLite none (its savepoint rolled back), on
    MongoDB the ones before the duplicate (``nInserted``: "a" here)."""
    coll = store.collection("memo_flag44b_count")
    coll.insert({"_id": "b"})
    with store.transaction():
        try:
            coll.insert_many([{"_id": "a"}, {"_id": "b"}, {"_id": "c"}])
        except DuplicateKey as exc:
            inserted = exc.inserted
        else:
            raise AssertionError("a duplicate key was stored")
        held = sorted(d["_id"] for d in coll.find({}) if d["_id"] != "b")
    assert (inserted, held) == ((1, ["a"]) if hasattr(store, "undo") else (0, []))
