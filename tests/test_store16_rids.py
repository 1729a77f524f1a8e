"""The rids a SQLite put gives, counted on within a transaction (``SqliteFhirBackend._first_rid``).

``put_many`` read ``SELECT max(rid)`` in every put; now it reads it once a transaction
(``store.generation``, which changes at every BEGIN and every rollback) and counts on. These
tests hold the cases where a counted rid could go wrong to what the store answers: a nested
block rolled back between two puts of one transaction (its rids were never stored), another
connection on the same file writing between two transactions of this one, an expunge inside
the transaction before the next put, and a Provenance naming a resource put after the rollback
(its row keyed by that resource's rid). Every stored row is also held to the layout's reading
of the stored bodies (``test_index10_put_rows``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import NotFound
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say

BASE = "http://huren.test/fhir"
LOINC = "http://loinc.org"


def _obs(oid: str, code: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-05T10:00:00+08:00"}


def _found(repo: FhirRepository, rtype: str, *params: tuple[str, str]) -> set[str]:
    return {r["id"] for r in repo.search(rtype, list(params)).resources}


def _rids(store: SqliteStore) -> dict[str, int]:
    return {id_: rid for rid, id_ in store.query("SELECT rid, id FROM fhir_resource")}


def _check(store: SqliteStore, repo: FhirRepository) -> None:
    _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store))  # type: ignore[arg-type]


def test_a_rolled_back_block_between_puts_of_one_transaction(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.sqlite3")
    repo = FhirRepository(store, base_url=BASE)
    try:
        with store.transaction():
            repo.update(_obs("x", "1-1"))
            with pytest.raises(RuntimeError), store.transaction():
                repo.update(_obs("y", "2-2"))
                raise RuntimeError("the nested block fails")
            repo.update(_obs("z", "3-3"))
            repo.update({"resourceType": "Provenance", "id": "pv", "recorded": "2024-03-05T10:00:00Z",
                         "target": [{"reference": "Observation/z"}, {"reference": "Observation/x"}]})
        with pytest.raises(NotFound):
            repo.read("Observation", "y")
        assert _found(repo, "Observation", ("code", "3-3")) == {"z"}
        assert _found(repo, "Observation", ("code", "2-2")) == set()
        assert _found(repo, "Observation", ("code", "1-1")) == {"x"}
        assert _found(repo, "Provenance", ("target", "Observation/z")) == {"pv"}
        assert _found(repo, "Provenance", ("target", "Observation/x")) == {"pv"}
        assert _found(repo, "Provenance", ("target", "y")) == set()
        rids = _rids(store)
        assert len(set(rids.values())) == len(rids) == 3
        _check(store, repo)
    finally:
        store.close()


def test_another_connection_writes_between_transactions(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "h.sqlite3"), SqliteStore(tmp_path / "h.sqlite3")
    one, two = FhirRepository(first, base_url=BASE), FhirRepository(second, base_url=BASE)
    try:
        with first.transaction():
            one.update(_obs("a", "1-1"))
            one.update(_obs("b", "2-2"))
        with second.transaction():
            two.update(_obs("c", "3-3"))
        with first.transaction():
            one.update(_obs("d", "4-4"))
        rids = _rids(first)
        assert sorted(rids, key=rids.__getitem__) == ["a", "b", "c", "d"]
        for repo in (one, two):
            assert {code: _found(repo, "Observation", ("code", code)) for code in ("1-1", "2-2", "3-3", "4-4")} == {
                "1-1": {"a"}, "2-2": {"b"}, "3-3": {"c"}, "4-4": {"d"}}
        _check(first, one)
    finally:
        second.close()
        first.close()


def test_an_expunge_inside_the_transaction_before_the_next_put(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.sqlite3")
    repo = FhirRepository(store, base_url=BASE)
    try:
        repo.update(_obs("old", "1-1"))
        with store.transaction():
            repo.update(_obs("last", "2-2"))
            assert store.fhir.expunge("Observation", ["last"]) == 1
            repo.update(_obs("new", "3-3"))
        with pytest.raises(NotFound):
            repo.read("Observation", "last")
        assert _found(repo, "Observation", ("code", "2-2")) == set()
        assert _found(repo, "Observation", ("code", "3-3")) == {"new"}
        assert _found(repo, "Observation", ("date", "2024-03-05")) == {"old", "new"}
        _check(store, repo)
    finally:
        store.close()
