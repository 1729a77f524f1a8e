"""The storage port's contract, run against every backend (SQLite, mongomock, real MongoDB if set)."""

from __future__ import annotations

import threading

import pytest

from engine.repository import open_store
from engine.repository.port import Collection, DuplicateKey, Store
from engine.settings import Settings


def _messages(store: Store) -> Collection:
    coll = store.collection("messages")
    coll.ensure_index(["status", "seq"])
    coll.ensure_index(["control_id"], unique=True)
    return coll


def _seed(coll: Collection) -> None:
    coll.insert_many(
        [
            {"_id": f"m{i}", "seq": i, "status": "quarantined" if i % 3 == 0 else "done",
             "control_id": f"C{i}", "meta": {"facility": "FNXRMYY" if i < 5 else "FNZYY"}}
            for i in range(10)
        ]
    )


def test_collection_satisfies_protocol(store: Store) -> None:
    assert isinstance(store.collection("messages"), Collection)


def test_insert_get_replace_update_delete(store: Store) -> None:
    coll = _messages(store)
    coll.insert({"_id": "a", "seq": 1, "status": "received", "raw": "MSH|^~\\&|", "control_id": "X1"})
    assert coll.get("a") == {"_id": "a", "seq": 1, "status": "received", "raw": "MSH|^~\\&|", "control_id": "X1"}
    assert coll.get("missing") is None
    with pytest.raises(DuplicateKey):
        coll.insert({"_id": "a", "seq": 2, "control_id": "X2"})
    coll.replace({"_id": "a", "seq": 5, "status": "done", "control_id": "X1"})
    assert coll.get("a") == {"_id": "a", "seq": 5, "status": "done", "control_id": "X1"}
    coll.replace({"_id": "b", "seq": 6, "control_id": "X3"})  # upsert
    assert coll.get("b")["seq"] == 6
    coll.replace({"_id": "c", "seq": 7, "control_id": "X4"}, upsert=False)
    assert coll.get("c") is None
    assert coll.update("a", {"status": "quarantined", "reason": "bad PID"}) is True
    assert coll.get("a")["reason"] == "bad PID" and coll.get("a")["seq"] == 5
    assert coll.update("zzz", {"status": "x"}) is False
    assert coll.delete("a") is True
    assert coll.delete("a") is False
    assert coll.get("a") is None


def test_unique_index_rejects_duplicates(store: Store) -> None:
    coll = _messages(store)
    coll.insert({"_id": "a", "control_id": "SAME"})
    with pytest.raises(DuplicateKey):
        coll.insert({"_id": "b", "control_id": "SAME"})
    with pytest.raises(DuplicateKey):
        coll.replace({"_id": "c", "control_id": "SAME"})
    with pytest.raises(DuplicateKey):
        coll.insert_many([{"_id": "d", "control_id": "D"}, {"_id": "d", "control_id": "E"}])


def test_filter_operators_sort_limit_skip(store: Store) -> None:
    coll = _messages(store)
    _seed(coll)
    ids = lambda docs: [d["_id"] for d in docs]  # noqa: E731
    assert ids(coll.find({"status": "quarantined"}, sort=[("seq", 1)])) == ["m0", "m3", "m6", "m9"]
    assert ids(coll.find({"seq": {"$gte": 7}}, sort=[("seq", -1)])) == ["m9", "m8", "m7"]
    assert ids(coll.find({"seq": {"$gt": 2, "$lt": 5}}, sort=[("seq", 1)])) == ["m3", "m4"]
    assert ids(coll.find({"seq": {"$lte": 1}}, sort=[("seq", 1)])) == ["m0", "m1"]
    assert ids(coll.find({"seq": {"$in": [1, 8, 42]}}, sort=[("seq", 1)])) == ["m1", "m8"]
    assert len(coll.find({"status": {"$ne": "done"}})) == 4
    assert ids(coll.find({"meta.facility": "FNXRMYY", "status": "done"}, sort=[("seq", 1)])) == [
        "m1", "m2", "m4"]
    assert ids(coll.find({"_id": "m2"})) == ["m2"]
    assert ids(coll.find({"_id": {"$in": ["m2", "m5"]}}, sort=[("_id", 1)])) == ["m2", "m5"]
    assert ids(coll.find(sort=[("seq", 1)], limit=3, skip=2)) == ["m2", "m3", "m4"]
    assert ids(coll.find({"status": "done"}, sort=[("seq", -1)], limit=2)) == ["m8", "m7"]
    assert coll.count() == 10
    assert coll.count({"status": "quarantined"}) == 4
    assert coll.count({"missing_field": None}) == 10
    assert coll.count({"status": {"$in": ["done", None]}}) == 6


def test_values_round_trip_as_json(store: Store) -> None:
    coll = store.collection("audit_leaves")
    doc = {"_id": "1", "n": 3, "f": 1.5, "flag": True, "none": None, "list": [1, "a", {"b": 2}],
           "nested": {"中文": "阜宁县人民医院"}}
    coll.insert(doc)
    assert coll.get("1") == doc
    assert [d["_id"] for d in coll.find({"flag": True})] == ["1"]


def test_transaction_commits_together(store: Store) -> None:
    a, b = store.collection("messages"), store.collection("quarantine")
    with store.transaction():
        a.insert({"_id": "m1", "status": "received"})
        with store.transaction():  # nested joins the outer one
            b.insert({"_id": "q1", "reason": "PID-3 missing"})
        assert a.get("m1") is not None and b.get("q1") is not None
    assert a.get("m1") is not None and b.get("q1") is not None


def test_transaction_rolls_back_everything_on_error(store: Store) -> None:
    if getattr(store, "transactions", True) is False:
        pytest.skip("this MongoDB deployment (standalone or mongomock) has no multi-document transactions")
    a, b = store.collection("messages"), store.collection("quarantine")
    a.insert({"_id": "keep", "status": "received"})
    with pytest.raises(RuntimeError), store.transaction():
        a.insert({"_id": "m1", "status": "received"})
        with store.transaction():
            b.insert({"_id": "q1", "reason": "x"})
        a.update("keep", {"status": "changed"})
        raise RuntimeError("boom")
    assert a.get("m1") is None and b.get("q1") is None
    assert a.get("keep")["status"] == "received"


def test_sqlite_nested_failure_rolls_back_only_inner_block(settings: Settings) -> None:
    store = open_store(settings)
    coll = store.collection("messages")
    with store.transaction():
        coll.insert({"_id": "outer"})
        with pytest.raises(ValueError), store.transaction():
            coll.insert({"_id": "inner"})
            raise ValueError("inner failed")
    assert coll.get("outer") is not None and coll.get("inner") is None
    store.close()


def test_sqlite_is_one_wal_file_shared_by_threads(settings: Settings) -> None:
    store = open_store(settings)
    assert settings.sqlite_path.exists()
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"  # type: ignore[attr-defined]
    coll = store.collection("messages")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                with store.transaction():
                    coll.insert({"_id": f"t{n}-{i}", "n": n})
                    coll.update(f"t{n}-{i}", {"done": True})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert coll.count({"done": True}) == 200
    store.close()
    reopened = open_store(settings)
    assert reopened.collection("messages").count() == 200
    reopened.close()


def test_rejects_unsafe_names(store: Store) -> None:
    coll = store.collection("messages")
    with pytest.raises(ValueError):
        coll.insert({"no_id": 1})
    if not hasattr(store, "transactions"):
        with pytest.raises(ValueError):
            store.collection("bad name; drop table")
        with pytest.raises(ValueError):
            coll.find({"a') OR 1=1 --": 1})


def test_sqlite_readers_are_not_blocked_by_an_open_write_transaction(settings: Settings) -> None:
    store = open_store(settings)
    coll = store.collection("messages")
    coll.insert({"_id": "committed", "n": 1})
    seen: dict[str, object] = {}
    with store.transaction():
        coll.insert({"_id": "pending", "n": 2})
        assert coll.get("pending") is not None  # the writer sees its own pending write

        def reader() -> None:
            seen["committed"] = coll.get("committed")
            seen["pending"] = coll.get("pending")

        t = threading.Thread(target=reader)
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "a reader waited for the writer's transaction"
    assert seen["committed"] == {"_id": "committed", "n": 1}
    assert seen["pending"] is None  # not committed yet when it read
    assert coll.get("pending") is not None
    store.close()
