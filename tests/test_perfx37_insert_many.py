"""A put's rows go into SQLite as multi-row ``INSERT`` statements (``sqlite_fhir.insert_many``,
thirty-seventh round, perfx37) and store exactly what one ``executemany`` of single rows stored.

``insert_many`` splits the rows into statements of 64, 16 and 4 rows and single rows for the rest;
every count below crosses one of those edges. Held here, on real SQLite files: the same rows
stored (duplicates ignored under ``INSERT OR IGNORE`` as before, within a chunk and across chunks),
in the order given (a rowid table numbers them as a single-row loop did), and a conflict under a
plain ``INSERT`` still fails the statement and the caller's transaction leaves nothing. Through
the real repository: a resource whose index rows span every chunk size is stored row for row as
its body says (``test_index10_put_rows``' check), found by each of its values, and a new version
that drops some of them keeps exactly the rest.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import insert_many
from engine.repository.sqlite_store import SqliteStore
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say

COUNTS = (1, 3, 4, 5, 15, 16, 17, 20, 63, 64, 65, 84, 85, 86, 127, 150)
BASE = "http://huren.test/fhir"


def _hash_rows(n: int) -> list[tuple[int, int, int]]:
    """``ix_hash``-shaped rows, some repeated (one inside a 64-row chunk, one across chunks)."""
    rows = [((i * 0x9E3779B97F4A7C15) % (1 << 63) - (1 << 62), 100 + i // 7, i % 5) for i in range(n)]
    if n > 2:
        rows.insert(n // 2, rows[1])
    if n > 70:
        rows.append(rows[3])
    return rows


def _table(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE ix_hash (h INTEGER NOT NULL, rid INTEGER NOT NULL, q INTEGER NOT NULL, "
                 "PRIMARY KEY (h, rid, q)) WITHOUT ROWID")
    conn.execute("CREATE TABLE seen (a TEXT, b REAL, c BLOB)")
    return conn


@pytest.mark.parametrize("n", COUNTS)
def test_the_rows_stored_are_those_single_row_inserts_store(tmp_path: Path, n: int) -> None:
    many, single = _table(tmp_path / "many.sqlite3"), _table(tmp_path / "single.sqlite3")
    statements: list[str] = []
    rows = _hash_rows(n)
    many.set_trace_callback(statements.append)  # (SQLite's own trace: each statement as it ran)
    insert_many(many, "INSERT OR IGNORE INTO ix_hash", rows)
    many.set_trace_callback(None)
    single.executemany("INSERT OR IGNORE INTO ix_hash VALUES (?, ?, ?)", rows)
    assert many.execute("SELECT * FROM ix_hash ORDER BY h, rid, q").fetchall() == \
        single.execute("SELECT * FROM ix_hash ORDER BY h, rid, q").fetchall()
    assert many.execute("SELECT count(*) FROM ix_hash").fetchone()[0] == len(set(rows))
    # the statements SQLite ran: as few as the chunk sizes allow, every row once
    sizes = [s.count("), (") + 1 for s in statements]
    assert sum(sizes) == len(rows)
    assert set(sizes) <= {64, 16, 4, 1} and sizes == sorted(sizes, reverse=True)
    assert sizes.count(1) < 4 and sizes.count(4) < 4 and sizes.count(16) < 4
    # order kept: a rowid table numbers the rows as they were given (texts, floats, blobs, NULL)
    mixed: list[tuple[Any, ...]] = [(f"张{i}", i / 3, bytes([i % 256]) if i % 4 else None) for i in range(n)]
    insert_many(many, "INSERT INTO seen", mixed)
    assert many.execute("SELECT a, b, c FROM seen ORDER BY rowid").fetchall() == mixed
    many.close()
    single.close()


def test_a_conflict_under_plain_insert_still_fails_and_the_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        store.conn.execute("CREATE TABLE ix_two (h INTEGER NOT NULL, rid INTEGER NOT NULL, q INTEGER NOT NULL, "
                           "PRIMARY KEY (h, rid, q)) WITHOUT ROWID")
        rows = _hash_rows(90)  # a row repeated inside the first 64-row statement, one across
        with pytest.raises(sqlite3.IntegrityError), store.transaction():
            insert_many(store.conn, "INSERT INTO ix_two", rows)
        assert store.query("SELECT count(*) FROM ix_two") == [(0,)]
    finally:
        store.close()


def _patient(n: int, pid: str = "many") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "active": True,
            "identifier": [{"system": f"urn:test:id:{i % 3}", "value": f"V{i:03d}"} for i in range(n)],
            "name": [{"family": f"F{i}", "given": [f"G{i}"]} for i in range(n // 4)],
            "managingOrganization": {"reference": "Organization/lab"}}


def test_a_resource_whose_rows_span_every_chunk_is_stored_and_found_by_each_value(tmp_path: Path) -> None:
    """85 identifiers (64 + 16 + 4 + 1 ``ix_hash`` rows and a few more), 21 names (string rows in
    chunks too): stored row for row as the body says, each identifier finds the Patient; a new
    version with 20 of them keeps those rows and drops the others."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        repo.write_many([_patient(85), _patient(3, "few")])
        view = SimpleNamespace(repository=repo, store=store)
        _assert_stored_as_their_bodies_say(view)  # type: ignore[arg-type]
        for i in (3, 15, 63, 64, 79, 80, 83, 84):
            found = repo.search("Patient", [("identifier", f"urn:test:id:{i % 3}|V{i:03d}")]).resources
            assert [r["id"] for r in found] == ["many"], i
        assert {r["id"] for r in repo.search("Patient", [("identifier", "V001")]).resources} == {"many", "few"}
        assert [r["id"] for r in repo.search("Patient", [("family", "F20")]).resources] == ["many"]
        repo.write_many([_patient(20)])
        _assert_stored_as_their_bodies_say(view)  # type: ignore[arg-type]
        assert [r["id"] for r in repo.search("Patient", [("identifier", "V019")]).resources] == ["many"]
        assert repo.search("Patient", [("identifier", "urn:test:id:2|V020")]).resources == []
        assert repo.search("Patient", [("family", "F20")]).resources == []
    finally:
        store.close()
