"""Reads by key compile a statement only for counts below ``KEYS_LISTED`` (``sqlite_fhir.keyed_rows``).

An ingest batch reads the current versions of every resource it writes in one call
(``current_many``), and a put reads the rids of stored targets it keys rows by (``_stored_rids``).
Each was one statement of as many ``VALUES`` rows as keys (up to 500 or 300), so a batch whose
key count had not come lately compiled a statement anew (the sqlite3 module keeps 128 a
connection): ~7.8 k instructions a key under callgrind. perf40 read the keys in slices of 256, 64,
16, 4 and 1, which made small counts several statements (rv40j LOW 1); now (fortieth round, pfix40)
fewer than 16 keys are one ``VALUES`` list of their count and more are one statement of any count
(the ``idh`` hashes as one JSON array through ``json_each``, the rows' type and id checked after).
Held here on a real SQLite store written through the repository: at every edge the same versions
and rids are found as one key at a time finds them (stored, absent, repeated keys, two types
sharing an id), and SQLite's own trace shows one statement a read, of those shapes only (a hash
collision: ``tests/test_pfix40_key_reads.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import KEYS_LISTED
from engine.repository.sqlite_store import SqliteStore

BASE = "http://huren.test/fhir"
COUNTS = (1, 2, 3, 4, 5, 14, 15, 16, 17, 21, 63, 64, 65, 84, 85, 255, 256, 257, 341, 342, 600)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = SqliteStore(Path(tmp_path_factory.mktemp("perf40")) / "huren.sqlite3")
    repo = FhirRepository(store, base_url=BASE)
    # 400 Patients and, under the same ids, 40 Organizations (a key is its type and id); one deleted
    repo.write_many([{"resourceType": "Patient", "id": f"p{i:04d}", "active": True} for i in range(400)])
    repo.write_many([{"resourceType": "Organization", "id": f"p{i:04d}", "name": f"O{i}"} for i in range(40)])
    repo.delete("Patient", "p0007")
    yield repo, store
    store.close()


def _keys(n: int) -> list[tuple[str, str]]:
    """``n`` keys: stored Patients, stored Organizations under a Patient's id, absent ids, the
    deleted Patient, and a repeated key (read once)."""
    keys: list[tuple[str, str]] = []
    for i in range(n):
        kind = i % 5
        if kind == 3:
            keys.append(("Organization", f"p{(i * 7) % 60:04d}"))  # 40 stored, 20 absent
        elif kind == 4:
            keys.append(("Patient", f"absent{i}"))
        else:
            keys.append(("Patient", f"p{(i * 13) % 400:04d}"))
    keys[0] = ("Patient", "p0007")  # the deleted one: its current row is its deletion
    if n > 2:
        keys.insert(n // 2, keys[1])
    return keys


@pytest.mark.parametrize("n", COUNTS)
def test_current_many_and_stored_rids_find_what_one_key_at_a_time_finds(stored: Any, n: int) -> None:
    repo, store = stored
    backend = repo.backend
    keys = _keys(n)
    one_by_one = {key: backend.current(*key) for key in dict.fromkeys(keys)}
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)  # (SQLite's own trace: each statement as it ran)
    try:
        with store.transaction(), store.lock:  # (as an ingest batch reads them: in its transaction)
            found = backend.current_many(keys)
            rids = backend._stored_rids(list(dict.fromkeys(keys)))
    finally:
        store.conn.set_trace_callback(None)
    expected = {key: rec for key, rec in one_by_one.items() if rec is not None}
    assert expected[("Patient", "p0007")].deleted
    assert {k: (r.type, r.id, r.version, r.updated, r.deleted, r.body, r.key) for k, r in found.items()} == \
        {k: (r.type, r.id, r.version, r.updated, r.deleted, r.body, r.key) for k, r in expected.items()}
    assert rids == {k: r.key for k, r in expected.items()}
    reads = [s for s in statements if "fhir_resource r" in s]
    assert len(reads) == 2, reads  # one statement a read, whatever the count
    distinct = len(dict.fromkeys(keys))
    if distinct < KEYS_LISTED:  # a VALUES list of the count, every key once
        assert all("json_each" not in s and s.count("),(") + 1 == distinct for s in reads), reads
    else:  # one text for any count
        assert all("VALUES" not in s and "json_each(" in s for s in reads), reads
