"""A Provenance's ``target`` rows keyed by the target's rid (storage layout 6) answer every search
exactly as the hashed rows did.

On SQLite a reference of a by-target parameter (``sqlite_rows.BY_TARGET``) to a resource stored
before it, or written in the same put, is the row ``(base + the target's rid, rid, mark)``,
appended where the batch's other such rows are; one to a resource not stored yet, to a Patient
(the compartment reads those as ``patient``) or to a URL stays hashed. Searches read both forms.
These tests run the same writes and searches on SQLite and MongoDB (mongomock; a real server
when ``HUREN_MONGODB_URI`` is set), whose layout has no such rows, and hold both to the answers
written out here: by ``Type/id`` and bare id, several values, two clauses (the correlated
check), a chain, ``_revinclude``, ``patient`` and the compartment, after a new version, a
deletion, on a store of layout 5 opened by this code, and around an expunge (whose rid the next
resource may get). SQLite's rows are also held to the layout's reading of the stored bodies
(``test_index10_put_rows``). A chain or ``_revinclude`` over more than 500 matches is answered
too (it was "too many terms in compound SELECT" on SQLite before this round).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from engine.repository import sqlite_fhir, sqlite_rows, sqlite_search
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.repository.sqlite_store import SqliteStore
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say

BASE = "http://huren.test/fhir"
LOINC = "http://loinc.org"


def _obs(oid: str, code: str = "718-7", pid: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{pid}"}}


def _prov(pid: str, *targets: str, recorded: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {"resourceType": "Provenance", "id": pid, "recorded": recorded,
            "agent": [{"who": {"reference": "Organization/lab"}}],
            "target": [{"reference": t} for t in targets]}


def _patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": pid}]}


def _found(repo: FhirRepository, rtype: str, *params: tuple[str, str], compartment: set[str] | None = None) -> set[str]:
    return {r["id"] for r in repo.search(rtype, list(params), compartment=compartment).resources}


def _keyed_rows(store: Store) -> int:
    """SQLite: the rows keyed by a target's rid (0 elsewhere)."""
    if not isinstance(store, SqliteStore):
        return 0
    _base, mark = sqlite_rows.target_key("Provenance", "target")
    return int(store.query("SELECT count(*) FROM ix_hash WHERE q = ?", (mark,))[0][0])


def _check_rows(store: Store, repo: FhirRepository, stored_after: set[tuple[str, str]] | None = None) -> None:
    """SQLite: every row as the layout's reading of the stored bodies says, the targets stored
    after the Provenance naming them (``stored_after``) hashed, the others keyed by rid."""
    if isinstance(store, SqliteStore):
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store),  # type: ignore[arg-type]
                                           stored_after or set())


def _story(repo: FhirRepository) -> None:
    """Provenances naming targets stored before, in the same put, later, never, deleted; a
    Patient and a URL."""
    repo.update(_patient("p1"))
    repo.update(_obs("A"))
    repo.update(_obs("D", code="2345-7"))
    repo.update(_prov("prov1", "Observation/A", "Observation/B", "Patient/p1", "Encounter/none",
                      "http://elsewhere.example/fhir/Device/dev-1"))
    repo.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _prov("prov2", "Observation/C", "Observation/A/_history/1"),
         "request": {"method": "PUT", "url": "Provenance/prov2"}},
        {"resource": _obs("C", code="2345-7"), "request": {"method": "PUT", "url": "Observation/C"}}]})
    repo.update(_obs("B"))
    repo.update(_prov("prov3", "Observation/D"))
    repo.delete("Observation", "D")


def _assert_answers(repo: FhirRepository) -> None:
    assert _found(repo, "Provenance", ("target", "Observation/A")) == {"prov1", "prov2"}
    assert _found(repo, "Provenance", ("target", "A")) == {"prov1", "prov2"}
    assert _found(repo, "Provenance", ("target", f"{BASE}/Observation/A")) == {"prov1", "prov2"}
    assert _found(repo, "Provenance", ("target", "Observation/B")) == {"prov1"}
    assert _found(repo, "Provenance", ("target", "B")) == {"prov1"}
    assert _found(repo, "Provenance", ("target", "Observation/C")) == {"prov2"}
    assert _found(repo, "Provenance", ("target:Observation", "C")) == {"prov2"}
    assert _found(repo, "Provenance", ("target", "Observation/D")) == {"prov3"}  # the target deleted since
    assert _found(repo, "Provenance", ("target", "Encounter/none")) == {"prov1"}
    assert _found(repo, "Provenance", ("target", "Patient/A")) == set()
    assert _found(repo, "Provenance", ("target", "Observation/nothing")) == set()
    assert _found(repo, "Provenance", ("target", "http://elsewhere.example/fhir/Device/dev-1")) == {"prov1"}
    assert _found(repo, "Provenance", ("target", "Observation/B,Observation/C")) == {"prov1", "prov2"}
    assert _found(repo, "Provenance", ("target", "Observation/A"), ("target", "Observation/C")) == {"prov2"}
    assert _found(repo, "Provenance", ("target", "Observation/A"), ("target", "B")) == {"prov1"}
    assert _found(repo, "Provenance", ("target:Observation.code", "2345-7")) == {"prov2"}  # D is deleted
    assert _found(repo, "Provenance", ("target", "Patient/p1")) == {"prov1"}
    assert _found(repo, "Provenance", ("patient", "p1")) == {"prov1"}
    assert _found(repo, "Provenance", ("patient", "Patient/p1")) == {"prov1"}
    assert _found(repo, "Provenance", ("recorded", "2024"), compartment={"p1"}) == {"prov1"}
    included = repo.search("Observation", [("_id", "A,C"), ("_revinclude", "Provenance:target")]).included
    assert {r["id"] for r in included} == {"prov1", "prov2"}


def test_target_searches_answer_the_same_on_both_backends(store: Store) -> None:
    repo = FhirRepository(store, base_url=BASE)
    _story(repo)
    _assert_answers(repo)
    # prov1's A row and both of prov2's are keyed by rid, prov3's too; prov1's B (stored after
    # it), its Patient, its Encounter (never stored) and its URL are hashed
    assert _keyed_rows(store) in (0, 4)
    _check_rows(store, repo, {("Observation", "B")})
    # a new version of prov1 naming B, now stored: its row re-keyed, the rest kept
    repo.update(_prov("prov1", "Observation/A", "Observation/B", "Patient/p1", "Encounter/none",
                      "http://elsewhere.example/fhir/Device/dev-1", recorded="2024-01-02T00:00:00Z"))
    assert _keyed_rows(store) in (0, 5)
    _assert_answers(repo)
    _check_rows(store, repo)


def test_a_layout_5_store_is_read_as_it_is_and_new_rows_are_keyed(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huren.sqlite3"
    with monkeypatch.context() as patch:  # layout 5 wrote every target row hashed
        for module in (sqlite_fhir, sqlite_rows, sqlite_search):  # each module that reads it
            patch.setattr(module, "BY_TARGET", {})
        store = SqliteStore(path)
        repo = FhirRepository(store, base_url=BASE)
        _story(repo)
        assert _keyed_rows(store) == 0
        store.execute("PRAGMA user_version = 5")
        store.close()
    store = SqliteStore(path)
    try:
        repo = FhirRepository(store, base_url=BASE)
        assert store.query("PRAGMA user_version")[0][0] == sqlite_fhir.LAYOUT == 9  # layout 9: perf41's tu
        assert _keyed_rows(store) == 0
        _assert_answers(repo)
        repo.update(_prov("prov4", "Observation/A", "Observation/C"))
        assert _keyed_rows(store) == 2
        assert _found(repo, "Provenance", ("target", "Observation/A")) == {"prov1", "prov2", "prov4"}
        assert _found(repo, "Provenance", ("target", "C")) == {"prov2", "prov4"}
    finally:
        store.close()


def test_an_expunged_target_leaves_no_row_keyed_by_its_rid(tmp_path: Any) -> None:
    """The rid of an expunged resource may be the next resource's (``max(rid) + 1``): the rows
    naming it by rid are hashed again, so the next resource is not found as the target and the
    target written again is."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        repo.write_many([_prov("prov", "Observation/X", "Observation/W"), _obs("W"), _obs("X")])
        assert _keyed_rows(store) == 2  # both in the same put, X given the last rid
        x_rid = store.query("SELECT rid FROM fhir_resource WHERE type = 'Observation' AND id = 'X'")[0][0]
        assert store.fhir.expunge("Observation", ["X"]) == 1
        assert _keyed_rows(store) == 1
        repo.update(_obs("Y"))
        assert store.query("SELECT rid FROM fhir_resource WHERE id = 'Y'")[0][0] == x_rid
        assert _found(repo, "Provenance", ("target", "Observation/Y")) == set()
        assert _found(repo, "Provenance", ("target", "Y")) == set()
        assert _found(repo, "Provenance", ("target", "Observation/X")) == {"prov"}
        assert _found(repo, "Provenance", ("target", "Observation/W")) == {"prov"}
        _check_rows(store, repo)
        repo.update(_obs("X"))
        assert _found(repo, "Provenance", ("target", "X")) == {"prov"}
        assert _found(repo, "Provenance", ("target:Observation.code", "718-7")) == {"prov"}
    finally:
        store.close()


def test_a_chain_or_revinclude_over_more_than_500_matches(store: Store) -> None:
    """One compound SELECT of SQLite holds at most 500 terms; a chain's or a _revinclude's
    matches are one alternative each (up to 1,000)."""
    repo = FhirRepository(store, base_url=BASE)
    repo.write_many([_obs(f"o{i}") for i in range(520)])
    repo.update(_prov("late", "Observation/o3", "Observation/o519"))
    result = repo.search("Observation", [("code", "718-7"), ("_count", "600"), ("_revinclude", "Provenance:target")])
    assert len(result.resources) == 520 and [r["id"] for r in result.included] == ["late"]
    assert _found(repo, "Provenance", ("target:Observation.code", "718-7")) == {"late"}
    assert _found(repo, "Observation", ("_id", ",".join(f"o{i}" for i in range(0, 520, 2))), ("_count", "600")) == {
        f"o{i}" for i in range(0, 520, 2)}


def test_a_provenance_expunged_with_one_it_names_leaves_no_row(tmp_path: Any) -> None:
    """Expunging two Provenances, one naming the other, in one call: unkeying the named one's rid
    rewrites the other's row to a hashed row, and that row must go with its resource. It stayed
    (the rows to delete were read before the rewrite), and the next resource given its rid was
    found as a target of ``Provenance/P2`` it never named (a reviewer's finding)."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        repo.update(_prov("P2", "Observation/none"))
        repo.update(_prov("P1", "Provenance/P2"))
        assert _keyed_rows(store) == 1
        assert store.fhir.expunge("Provenance", ["P1", "P2"]) == 2
        assert store.query("SELECT count(*) FROM ix_hash")[0][0] == 0
        repo.update(_prov("P3", "Observation/other"))
        repo.update(_prov("P1b", "Observation/other2"))
        assert _found(repo, "Provenance", ("target", "Provenance/P2")) == set()
        assert _found(repo, "Provenance", ("target", "P2")) == set()
        assert _found(repo, "Provenance", ("target", "Observation/other2")) == {"P1b"}
        _check_rows(store, repo)
    finally:
        store.close()


def test_two_chained_clauses_over_a_thousand_matches(store: Store) -> None:
    """A second clause is a filter whose alternatives (one per match of its chain) were one flat
    OR: over ~1,000 SQLite refused it ("Expression tree is too large (maximum depth 1000)"), a 500."""
    repo = FhirRepository(store, base_url=BASE)
    repo.write_many([_obs(f"o{i}") for i in range(1000)])
    repo.update(_prov("late", "Observation/o3", "Observation/o999"))
    chained = ("target:Observation.code", "718-7")
    assert _found(repo, "Provenance", chained, chained) == {"late"}
    assert _found(repo, "Provenance", chained, ("target", "Observation/o3")) == {"late"}
    assert _found(repo, "Provenance", chained, ("target", "Observation/o4")) == set()
