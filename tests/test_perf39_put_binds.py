"""A SQLite put's first versions (thirty-ninth round, perf39): their rows go into flat lists as the put
makes them (``sqlite_fhir.insert_flat``, no tuple a row and no pass flattening them again), and the
blobs of their resource rows (the body, ``hkeys``; a later version's UPDATE too) are bound as ``bytearray``, which the sqlite3
module binds as it is, where a ``bytes`` value first costs a look-up in its adapter registry and the
``__adapt__``/``__conform__`` protocol (CPython's ``_need_adapt``). The same rows and the same BLOBs
are stored; a body is read back as the ``bytes`` it was.

Real bytes through the real path: a lab message through the ingest pipeline into an Engine's SQLite
store and write groups through the real repository on a real store, the writer connection's
statements recorded as they run, every stored row then held to the layout's reading of its body
(``test_index10_put_rows``' check).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine import fhirjson
from engine.engine import Engine
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import insert_flat, insert_many
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say

BASE = "http://huren.test/fhir"
PUT_TABLES = ("fhir_resource", "ix_hash", "ix_date", "ix_string", "ix_quantity")


class _Recording:
    """The writer connection, its INSERT and UPDATE statements' parameters on the put's tables recorded."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "bound", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def _note(self, sql: str, rows: list[Any]) -> None:
        if sql.startswith(("INSERT", "UPDATE")) and any(f" {t} " in sql or f" {t}(" in sql for t in PUT_TABLES):
            self.bound.extend((sql.split(" VALUES")[0], v) for row in rows for v in row)

    def execute(self, sql: str, *args: Any) -> Any:
        self._note(sql, list(args[:1]))
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, seq: Any) -> Any:
        rows = list(seq)
        self._note(sql, rows)
        return self._conn.executemany(sql, rows)


def _bytes_bound(recording: _Recording) -> list[tuple[str, int]]:
    return [(head, len(v)) for head, v in recording.bound if type(v) is bytes]


def test_insert_flat_writes_what_insert_many_and_single_rows_write() -> None:
    """Every chunk edge from 1 to 150 rows (64, 16, 4 and single rows): the flat list's rows are
    the rows, in order, with texts, floats, blobs (``bytes`` and ``bytearray``), NULL and
    duplicates ignored as a single-row ``INSERT OR IGNORE`` ignores them."""
    conn = sqlite3.connect(":memory:")
    for table in ("flat", "many", "one"):
        conn.execute(f"CREATE TABLE {table} (a INTEGER, b TEXT, c REAL, d BLOB, UNIQUE (a, b))")
    for n in range(1, 151):
        rows = [(i % 97, f"t{i % 89}", i / 7, bytes([i % 256]) * (i % 5) if i % 3 else None) for i in range(n)]
        rows[n // 2] = (*rows[n // 2][:3], bytearray(b"\x00\x01"))
        for table in ("flat", "many", "one"):
            conn.execute(f"DELETE FROM {table}")
        insert_flat(conn, "INSERT OR IGNORE INTO flat", 4, [v for row in rows for v in row])
        insert_many(conn, "INSERT OR IGNORE INTO many", rows)
        conn.executemany("INSERT OR IGNORE INTO one VALUES (?, ?, ?, ?)", rows)
        one = conn.execute("SELECT rowid, a, b, c, d, typeof(d) FROM one ORDER BY rowid").fetchall()
        assert conn.execute("SELECT rowid, a, b, c, d, typeof(d) FROM flat ORDER BY rowid").fetchall() == one, n
        assert conn.execute("SELECT rowid, a, b, c, d, typeof(d) FROM many ORDER BY rowid").fetchall() == one, n
    conn.close()


def _obs(oid: str, pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2024-01-01T08:00:00+08:00",
            "valueQuantity": {"value": 13.5, "unit": "g/dL"}}


def test_write_groups_bind_no_bytes_and_store_their_bodies_as_bytes(tmp_path: Path) -> None:
    """Write groups of first versions (a Patient with names and identifiers, results, a
    Provenance naming them) and of later versions in one transaction: no parameter of the put's
    statements is ``bytes``; every row is as the bodies say, and each body reads back as the
    ``bytes`` ``fhirjson`` writes, by the repository and by SQL alike."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        recording = _Recording(store.conn)
        store._conn = recording  # type: ignore[assignment] -- (``conn`` is a property over it)
        patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "张", "given": ["三"]}],
                   "identifier": [{"system": f"urn:x:{i}", "value": str(i)} for i in range(9)],
                   "birthDate": "1980-01-01"}
        with store.transaction():
            repo.write_many([patient, _obs("A"), _obs("B")])
            repo.write_many([{"resourceType": "Provenance", "id": "prov", "recorded": "2024-01-01T00:00:00Z",
                              "agent": [{"who": {"reference": "Organization/lab"}}],
                              "target": [{"reference": "Observation/A"}, {"reference": "Observation/B"},
                                         {"reference": "Patient/p1"}]}])
            repo.write_many([{**_obs("A"), "valueQuantity": {"value": 14.0, "unit": "g/dL"}}, _obs("C")])
        assert len(recording.bound) > 60
        assert any(head.startswith("UPDATE fhir_resource") for head, _v in recording.bound)  # A's second version
        assert _bytes_bound(recording) == []
        store._conn = recording._conn  # type: ignore[assignment]
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store))  # type: ignore[arg-type]
        for rtype, rid in (("Patient", "p1"), ("Observation", "A"), ("Observation", "C"), ("Provenance", "prov")):
            rec = repo.backend.current(rtype, rid)
            assert type(rec.body) is bytes
            assert rec.body == fhirjson.dumps(fhirjson.loads(rec.body))
            body, kind = store.conn.execute("SELECT body, typeof(body) FROM fhir_resource WHERE type = ? AND id = ?",
                                            (rtype, rid)).fetchone()
            assert (type(body), kind, body) == (bytes, "blob", rec.body)
        assert [r["id"] for r in repo.search("Observation", [("value-quantity", "14.0")]).resources] == ["A"]
        assert {r["id"] for r in repo.search("Provenance", [("target", "Observation/B")]).resources} == {"prov"}
    finally:
        store.close()


def test_a_lab_message_through_the_pipeline_binds_no_bytes_and_its_rows_are_as_its_bodies_say(
        settings: Settings) -> None:
    """Two 12-OBX ORU^R01 through the ingest pipeline, ACKed AA: the put's statements bound no
    ``bytes`` (the bodies and ``hkeys`` of ~34 resource rows went as ``bytearray``), and every
    stored row, ``hkeys``, ``ranges`` and sort key is what the layout's reading of the stored body
    makes of it."""
    with Engine(settings) as engine:
        recording = _Recording(engine.store.conn)
        engine.store._conn = recording  # type: ignore[assignment]
        try:
            outcomes = engine.ingestor.process([(oru_lab(39_000 + i), "mllp", "127.0.0.1:1") for i in range(2)])
        finally:
            engine.store._conn = recording._conn  # type: ignore[assignment]
        assert [ack_code_of(o.ack) for o in outcomes] == ["AA", "AA"]
        resource_rows = [v for head, v in recording.bound if "fhir_resource" in head]
        assert len(resource_rows) >= 2 * 15 * 12
        assert _bytes_bound(recording) == []
        assert sum(type(v) is bytearray for v in resource_rows) >= 2 * 2 * 15
        assert _assert_stored_as_their_bodies_say(engine) >= 2 * 15  # type: ignore[arg-type]


def test_insert_flat_refuses_values_that_are_not_whole_rows() -> None:
    """A list one value short of whole rows is refused, not written with its tail dropped and a later row's
    columns shifted (rv39h LOW, by reading: no writer sends one today)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c)")
    with pytest.raises(ValueError, match="not rows of 3"):
        insert_flat(conn, "INSERT INTO t", 3, [1, 2, 3, 4, 5])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
