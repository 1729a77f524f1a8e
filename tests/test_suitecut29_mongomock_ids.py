"""mongomock's ``_id`` look-up (``tests/conftest.py``, ``_mongomock_finds_by_id``) finds what its scan
finds: the Mongo contract cases test the store against mongomock, so the stand-in's speed-up must not
change one answer. Each filter is run through ``find`` (the look-up) and through the scan it replaced,
on one collection holding ``_id``s of several types and documents inserted out of ``_id`` order."""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from mongomock.collection import Collection

DOCS = [{"_id": "b", "version": 2, "person": "p1"}, {"_id": "a", "version": 1, "person": "p2"},
        {"_id": 7, "version": 1}, {"_id": "7", "version": 3}, {"_id": {"k": "a"}, "version": 1},
        {"_id": "c", "version": 1, "tags": ["x", "y"]}]

FILTERS: list[dict[str, Any]] = [
    {"_id": "a"}, {"_id": "zz"}, {"_id": "7"}, {"_id": 7}, {"_id": "b", "version": 2}, {"_id": "b", "version": 3},
    {"_id": "c", "tags": "y"}, {"_id": "a", "person": {"$in": ["p1", "p2"]}},
    {"_id": {"$in": ["c", "a", "zz", "b"]}}, {"_id": {"$in": []}}, {"_id": {"$in": ["7", 7]}},
    {"_id": {"$in": ["a", "b"]}, "version": 1}, {"_id": {"$in": ["a"], "$ne": "b"}}, {"_id": {"k": "a"}},
    {"version": 1}, {},
]


@pytest.fixture(scope="module")
def collection() -> Collection:
    coll = mongomock.MongoClient().db.things
    coll.insert_many([dict(d) for d in DOCS])
    return coll


def test_the_look_up_is_installed() -> None:
    assert getattr(Collection._iter_documents, "finds_by_id", False)


@pytest.mark.parametrize("query", FILTERS, ids=repr)
def test_the_look_up_finds_what_the_scan_finds_in_its_order(collection: Collection, query: dict[str, Any]) -> None:
    scanned = list(Collection._iter_documents.scan(collection, query))
    found = list(collection.find(query))
    assert found == scanned
    assert [d["_id"] for d in collection.find(query, sort=[("version", -1)])] == \
        [d["_id"] for d in sorted(scanned, key=lambda d: -d["version"])]


def _outcome(run: Any) -> Any:
    try:
        return [d["_id"] for d in run()]
    except mongomock.OperationFailure as e:
        return type(e)


@pytest.mark.parametrize("query", [{"_id": "zz", "version": {"$bogus": 1}}, {"_id": "a", "version": {"$bogus": 1}},
                                   {"version": {"$bogus": 1}, "_id": "a"}, {"version": {"$bogus": 1}, "_id": "zz"}],
                         ids=repr)
def test_a_bad_operator_is_refused_where_the_scan_refuses_it(collection: Collection, query: dict[str, Any]) -> None:
    scanned = _outcome(lambda: list(Collection._iter_documents.scan(collection, query)))
    assert _outcome(lambda: list(collection.find(query))) == scanned
    empty = mongomock.MongoClient().db.empty
    assert _outcome(lambda: list(empty.find(query))) == _outcome(
        lambda: list(Collection._iter_documents.scan(empty, query)))


def test_writes_by_id_touch_the_one_document(collection: Collection) -> None:
    coll = mongomock.MongoClient().db.writes
    coll.insert_many([dict(d) for d in DOCS])
    assert coll.update_one({"_id": "a", "version": 1}, {"$set": {"version": 5}}).modified_count == 1
    assert coll.update_one({"_id": "a", "version": 1}, {"$set": {"version": 6}}).modified_count == 0
    assert coll.delete_many({"_id": {"$in": ["b", "c", "zz"]}}).deleted_count == 2
    assert sorted(str(d["_id"]) for d in coll.find({})) == sorted(["a", "7", "7", str({"k": "a"})])
    assert coll.find_one({"_id": "a"})["version"] == 5
