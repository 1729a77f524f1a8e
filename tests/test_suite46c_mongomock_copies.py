"""mongomock's rebuild of each document it is given and copy of each it answers (``tests/conftest.py``,
``_mongomock_copies_plain_values_as_they_are``) give what mongomock's own code gives: the Mongo contract cases
test the store against mongomock, so the stand-in's speed-up must not change one value, one type, or leave one
container shared with the caller. Each document is run through the fast path and through the code it stands
before, and the two answers are compared -- types included, at every level -- then a round trip through a
collection shows the stored and answered documents are the caller's own copies."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

import mongomock
import pytest
from bson import Int64, Timestamp
from mongomock import collection, helpers


class Level(IntEnum):
    HIGH = 2


class Tagged(dict):
    """A dict subclass: handed to mongomock's own code (it makes it a plain dict)."""


DOCS: list[Any] = [
    {"_id": "Patient/x", "doc": {"resourceType": "Patient", "id": "x", "active": True, "deceasedBoolean": False,
                                 "multipleBirthInteger": 2, "x": 1.5, "n": None, "name": [{"given": ["三", "小"]}]},
     "version": 3, "deleted": False, "raw": b"\x00\x01"},
    {"_id": "t", "at": datetime(2026, 1, 2, 3, 4, 5, 678901), "aware": datetime(2026, 1, 2, 3, 4, 5, 999999,
                                                                             tzinfo=timezone(timedelta(hours=8))),
     "list": [datetime(2026, 1, 1, tzinfo=UTC), {"deep": [datetime(2026, 2, 2, 2, 2, 2, 2500)]}]},
    {"_id": "o", "ordered": OrderedDict([("b", 1), ("a", [OrderedDict([("z", None)])])]), "tuple": (1, "two", [3]),
     "nested_tuple": [(1, 2), ((3,),)], "ts": Timestamp(5, 6), "big": Int64(7), "level": Level.HIGH,
     "tagged": Tagged(k=[Tagged(j=1)])},
    {"_id": "e", "empty": {}, "none": [], "deep": [[[[]]]], "keys": {"": "", "a.b": {"$c": 1}}},
    ["a", {"b": [1, 2.0, True, None]}],
    "plain", 3, None,
]


def _shape(value: Any) -> Any:
    """The value with the type of each part spelled out beside it, so that equal answers are equal types too."""
    if isinstance(value, dict):
        return (type(value).__name__, [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_shape(v) for v in value])
    return (type(value).__name__, value)


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _containers(v))]
    return []


def test_the_fast_paths_are_installed() -> None:
    assert getattr(helpers.patch_datetime_awareness_in_document, "plain_kept", False)
    assert getattr(collection._copy_field, "plain_kept", False)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: repr(d)[:40])
def test_a_document_is_rebuilt_as_mongomock_rebuilds_it(doc: Any) -> None:
    fast, own = helpers.patch_datetime_awareness_in_document, helpers.patch_datetime_awareness_in_document.original
    got = fast(doc)
    helpers.patch_datetime_awareness_in_document = own  # its recursion all its own, as installed mongomock has it
    try:
        want = own(doc)
    finally:
        helpers.patch_datetime_awareness_in_document = fast
    if isinstance(doc, dict) and "ts" in doc:  # a Timestamp(5, 6) is kept; only Timestamp(0, 0) becomes "now"
        assert got["ts"] == Timestamp(5, 6)
    assert _shape(got) == _shape(want)
    assert not set(_containers(got)) & set(_containers(doc))  # no dict or list shared with what was given


@pytest.mark.parametrize("container", [dict, OrderedDict])
@pytest.mark.parametrize("doc", DOCS, ids=lambda d: repr(d)[:40])
def test_an_answer_is_copied_as_mongomock_copies_it(doc: Any, container: type) -> None:
    fast, own = collection._copy_field, collection._copy_field.original
    got = fast(doc, container)
    collection._copy_field = own
    try:
        want = own(doc, container)
    finally:
        collection._copy_field = fast
    assert _shape(got) == _shape(want)
    assert not set(_containers(got)) & set(_containers(doc))


def test_a_round_trip_keeps_each_value_and_shares_nothing_with_the_caller() -> None:
    things = mongomock.MongoClient().db.things
    sent = {"_id": "r", "doc": {"name": [{"given": ["a"]}], "n": None, "ok": True, "v": 1.25},
            "at": datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=8)))}
    things.insert_one(sent)
    sent["doc"]["name"][0]["given"].append("changed after the insert")
    got = things.find_one({"_id": "r"})
    assert got["doc"] == {"name": [{"given": ["a"]}], "n": None, "ok": True, "v": 1.25}
    assert got["at"] == datetime(2026, 3, 3, 21, 6, 7, 890000) and got["at"].tzinfo is None  # naive UTC, to the ms
    got["doc"]["name"][0]["given"].append("changed in an answer")
    assert things.find_one({"_id": "r"})["doc"]["name"] == [{"given": ["a"]}]
    things.replace_one({"_id": "r"}, {"doc": {"when": datetime(2026, 1, 1, 0, 0, 0, 1999)}})
    assert things.find_one({"_id": "r"}) == {"_id": "r", "doc": {"when": datetime(2026, 1, 1, 0, 0, 0, 1000)}}
