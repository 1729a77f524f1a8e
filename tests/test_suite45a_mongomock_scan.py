"""mongomock's scan by a field's equality finds what the whole matcher finds, testing only the documents it may
(suite45a; ``tests/conftest.py`` ``_first_equality``: the stand-in's speed, never the store's queries)."""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from mongomock.filtering import _Filterer

from tests.conftest import _first_equality

DOCS: list[dict[str, Any]] = [
    {"_id": "a", "type": "Patient", "deleted": False, "n": 1, "tags": ["x", "y"]},
    {"_id": "b", "type": "Patient", "deleted": True, "n": 0},
    {"_id": "c", "type": "Observation", "deleted": False, "n": 1, "tags": "x"},
    {"_id": "d", "deleted": 0, "n": True, "type": ["Patient", "Group"]},
    {"_id": "e", "type": ("Patient",), "deleted": 1, "sub": {"type": "Patient"}},
    {"_id": "f", "type": "", "deleted": None, "tags": []},
    {"_id": "g", "type": "patient", "deleted": False, "tags": [["x"]]},
]
FILTERS: list[dict[str, Any]] = [
    {"type": "Patient"}, {"type": "Patient", "deleted": False}, {"deleted": False}, {"deleted": True},
    {"type": ""}, {"tags": "x"}, {"type": "Group"}, {"type": "nothing"},
    {"$and": [{"deleted": False}, {"type": "Patient"}]}, {"$and": [{"$and": [{"type": "Patient"}]}, {"n": 1}]},
    {"type": "Patient", "n": {"$gte": 1}}, {"type": "Patient", "sub.type": "Patient"},
    {"n": 1}, {"sub.type": "Patient"}, {"type": {"$in": ["Patient"]}}, {"$or": [{"type": "Patient"}]},
]


@pytest.fixture
def collection() -> Any:
    coll = mongomock.MongoClient().db.things
    coll.insert_many([dict(d) for d in DOCS])
    return coll


@pytest.mark.parametrize("query", FILTERS, ids=[str(f) for f in FILTERS])
def test_a_scan_finds_what_the_whole_matcher_finds_in_the_stores_order(collection: Any, query: dict) -> None:
    scan = type(collection)._iter_documents.scan
    assert [d["_id"] for d in collection.find(query)] == [d["_id"] for d in scan(collection, query)]


def test_only_documents_meeting_the_first_equality_are_tested_whole(collection: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    tested: list[str] = []
    apply = _Filterer.apply

    def counting(self: _Filterer, search: Any, document: Any) -> bool:
        tested.append(document.get("_id"))
        return apply(self, search, document)

    monkeypatch.setattr(_Filterer, "apply", counting)
    assert [d["_id"] for d in collection.find({"type": "Patient", "n": 1})] == ["a", "d"]  # (True == 1, as Mongo's)
    assert tested == ["a", "b", "d", "e"]  # the strings equal to it, the arrays holding it
    assert _first_equality({"n": 1}) is None and _first_equality({"_id": "a"}) is None


def _outcome(run: Any) -> Any:
    try:
        return [d["_id"] for d in run()]
    except mongomock.OperationFailure as exc:
        return type(exc)


@pytest.mark.parametrize("query", [{"type": "Patient", "n": {"$bogus": 1}}, {"type": "nothing", "n": {"$bogus": 1}},
                                   {"n": {"$bogus": 1}, "type": "Patient"}, {"$and": []}])
def test_a_bad_operator_is_refused_as_the_scan_refuses_it(collection: Any, query: dict) -> None:
    """Refused where the scan reaches it, on a full collection and an empty one alike (an operator after a first test
    no document passes is never reached, by either)."""
    empty = mongomock.MongoClient().db.empty
    for coll in (collection, empty):
        scan = type(coll)._iter_documents.scan
        assert _outcome(lambda c=coll: c.find(query)) == _outcome(lambda c=coll, s=scan: s(c, query))
    assert _outcome(lambda: collection.find({"type": "Patient", "n": {"$bogus": 1}})) is mongomock.OperationFailure
