"""Reads by key (``sqlite_fhir.keyed_rows``) never answer a key with another resource's row, on
either of their two shapes (fortieth round, pfix40).

Fewer than ``KEYS_LISTED`` keys are a ``VALUES`` list whose probe checks ``idh``, ``type`` and
``id``; more are one ``json_each`` statement that joins on ``idh`` alone and drops in Python a row
whose ``(type, id)`` was not asked for. A 64-bit collision cannot be found by chance, so one is
made on a real store written through the repository: a stored Patient's ``idh`` set to the hash of
an id nothing has. Both reads (``current_many``, ``_stored_rids``) must then find, for every
count, exactly what ``current`` finds one key at a time -- nothing for the absent id, and nothing
for the Patient whose row no longer carries its own hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import KEYS_LISTED
from engine.repository.sqlite_rows import id_hash
from engine.repository.sqlite_store import SqliteStore

BASE = "http://huren.test/fhir"


@pytest.fixture(scope="module")
def collided(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = SqliteStore(Path(tmp_path_factory.mktemp("pfix40")) / "huren.sqlite3")
    repo = FhirRepository(store, base_url=BASE)
    repo.write_many([{"resourceType": "Patient", "id": f"p{i:03d}", "active": True} for i in range(60)])
    with store.transaction(), store.lock:  # the collision: p000's row under the hash of "nobody"
        store.conn.execute("UPDATE fhir_resource SET idh = ? WHERE type = 'Patient' AND id = 'p000'",
                           (id_hash("Patient", "nobody"),))
    yield repo, store
    store.close()


@pytest.mark.parametrize("n", (1, 2, KEYS_LISTED - 1, KEYS_LISTED, KEYS_LISTED + 1, 40))
def test_a_colliding_row_answers_no_other_key(collided: Any, n: int) -> None:
    repo, store = collided
    backend = repo.backend
    keys = [("Patient", "nobody"), *(("Patient", f"p{i:03d}") for i in range(1, n))]
    one_by_one = {key: backend.current(*key) for key in keys}
    assert one_by_one[("Patient", "nobody")] is None
    with store.transaction(), store.lock:  # (as an ingest batch reads them: in its transaction)
        found = backend.current_many(keys)
        rids = backend._stored_rids(keys)
    expected = {key: rec for key, rec in one_by_one.items() if rec is not None}
    assert len(expected) == n - 1
    assert {k: (r.type, r.id, r.version, r.key) for k, r in found.items()} == \
        {k: (r.type, r.id, r.version, r.key) for k, r in expected.items()}
    assert rids == {k: r.key for k, r in expected.items()}
    assert backend.current_many([("Patient", "p000")]) == {}  # (its row no longer carries its own hash)
