"""linkfix37: rv37f's findings on link37, beyond its probes (tests/test_rv37f_probes.py).

- The storage port takes a ``$in`` of any length: SQLite binds a long one as one JSON array
  (``sqlite_store.IN_CHUNK``), so no caller can pass the connection's bound on variables (999 before
  SQLite 3.32, 32,766 after) -- the store still answers the same as MongoDB.
- The note of a report stored ahead of its result (``recognition_listed_ahead``) leaves with the
  report: written again without the result, or deleted; another report's note of it stays.

Real store on every backend; FHIR over TestClient into the real Engine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.index import LISTED_AHEAD
from engine.repository.port import Store
from engine.repository.sqlite_store import IN_CHUNK, SqliteStore
from engine.settings import Settings
from tests.test_evidence33_pairs import http  # noqa: F401 (the fixture)
from tests.test_link37_links import copied_alt, report
from tests.test_linkfix35_relink import FHIR

# SQLite's bound on variables before 3.32: a ``$in`` longer than it failed on such a build
OLD_LIMIT = 999


def bounded(store: Store) -> None:
    """A SQLite store's connections held to ``OLD_LIMIT`` variables a statement (this machine's
    build allows 250,000, which hid the fault); nothing to do for MongoDB."""
    if isinstance(store, SqliteStore):
        for conn in (store.conn, getattr(store._readers, "conn", None) or store._reader()):
            conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, OLD_LIMIT)


def test_a_long_in_is_answered_past_sqlites_bound_on_variables(store: Store) -> None:
    """600 documents; a ``$in`` of 1,500 keys (every other one stored, None among them, and a plain
    ``seq`` list of ints) under a 999-variable bound: the same documents, sort, limit, skip and count
    as the short form gives, inside a transaction and outside it."""
    coll = store.collection("linkfix37")
    coll.insert_many([{"_id": f"k{i:04d}", "seq": i, "tag": None if i % 5 == 0 else f"t{i % 7}"}
                      for i in range(600)])
    bounded(store)
    keys = [f"k{i:04d}" for i in range(0, 3000, 2)]
    assert len(keys) > max(IN_CHUNK, OLD_LIMIT)
    stored = [k for k in keys if int(k[1:]) < 600]
    got = coll.find({"_id": {"$in": keys}}, sort=[("_id", -1)])
    assert [d["_id"] for d in got] == sorted(stored, reverse=True)
    assert [d["_id"] for d in coll.find({"_id": {"$in": keys}}, sort=[("_id", 1)], limit=3, skip=2)] == stored[2:5]
    assert coll.count({"_id": {"$in": keys}}) == len(stored) == 300
    seqs = list(range(-400, 1100))  # ints: the same values ``?`` would bind
    assert coll.count({"seq": {"$in": seqs}}) == 600
    assert coll.count({"seq": {"$in": seqs}, "tag": {"$in": [None, "t1"]}}) == 120 + 86 - 17
    with store.transaction():  # through the writer's connection
        assert coll.count({"_id": {"$in": [*keys, None]}}) == 300
        assert coll.find({"_id": {"$in": [f"x{i}" for i in range(1500)]}}) == []


def test_a_short_in_still_binds_each_value(store: Store) -> None:
    """At or under ``IN_CHUNK`` values each is a ``?`` as before (the everyday reads' plan kept),
    and answers the same under the old bound."""
    coll = store.collection("linkfix37")
    coll.insert_many([{"_id": f"k{i:04d}", "seq": i} for i in range(20)])
    bounded(store)
    keys = [f"k{i:04d}" for i in range(IN_CHUNK)]
    assert coll.count({"_id": {"$in": keys}}) == 20
    assert [d["seq"] for d in coll.find({"seq": {"$in": [3, 1, True]}}, sort=[("seq", 1)])] == [1, 3]


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def notes(engine: Engine) -> list[dict[str, Any]]:
    return engine.store.collection(LISTED_AHEAD).find({})


def test_a_report_written_again_without_its_result_leaves_the_note(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Two FHIR reports list an ALT not stored yet: one note names both. R2 is written again listing
    nothing of it: R2 leaves the note, R5 stays. R5 deleted: the note is gone (nothing lists it)."""
    b1, _alt, about = copied_alt(engine, http)
    for rid in ("lf37-r2", "lf37-r5"):
        assert http.put(f"/fhir/DiagnosticReport/{rid}", json=report(rid, "肝功能", about, b1),
                        headers=FHIR).status_code == 201
    assert [n["reports"] for n in notes(engine)] == [["DiagnosticReport/lf37-r2", "DiagnosticReport/lf37-r5"]]
    again = {k: v for k, v in report("lf37-r2", "肝功能", about, b1).items() if k != "result"}
    assert http.put("/fhir/DiagnosticReport/lf37-r2", json=again, headers=FHIR).status_code == 200
    assert [n["reports"] for n in notes(engine)] == [["DiagnosticReport/lf37-r5"]]
    assert http.delete("/fhir/DiagnosticReport/lf37-r5").status_code in (200, 204)
    assert notes(engine) == []


def test_a_report_deleted_leaves_another_reports_note(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Two reports stored ahead of the ALT; one deleted: the other's name stays in the note (it still
    lists the ALT: its first version must still read it)."""
    b1, _alt, about = copied_alt(engine, http)
    for rid in ("lf37-r2", "lf37-r5"):
        assert http.put(f"/fhir/DiagnosticReport/{rid}", json=report(rid, "肝功能", about, b1),
                        headers=FHIR).status_code == 201
    assert http.delete("/fhir/DiagnosticReport/lf37-r2").status_code in (200, 204)
    assert [n["reports"] for n in notes(engine)] == [["DiagnosticReport/lf37-r5"]]
