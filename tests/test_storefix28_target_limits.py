"""storefix28: searches over the rows keyed by a target's rid (``BY_TARGET``: a report's
``result``, a Provenance's ``target``) stay within SQLite's variable limit, and a search that
cannot is the client's 400 naming the limit, never a 500 (the review of perfstore28, finding 1).

A long bare-id list was one ``VALUES`` row per id and per stored type, three variables each:
``Provenance?target=<ids>`` passed the limit on a store of ~15 types (since layout 6). The keys
past a few are now one JSON text, one variable; a bare ``result`` id is one Observation key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import BadRequest
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore

OTHER_TYPES = ("ServiceRequest", "Specimen", "Encounter", "Practitioner", "Organization", "Location",
               "Condition", "Device", "Medication", "Group", "Library")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirRepository]:
    store = SqliteStore(Path(tmp_path_factory.mktemp("sf28")) / "huren.sqlite3")
    repo = FhirRepository(store, base_url="http://huren.test/fhir")
    # r0 written before its result was stored (its row hashed), r1.. after (keyed by rid)
    repo.write_many([{"resourceType": "DiagnosticReport", "id": "r0", "status": "final", "code": {"text": "CBC"},
                      "result": [{"reference": "Observation/o0"}]}], validated=True)
    repo.write_many([
        {"resourceType": "Patient", "id": "p1"},
        *({"resourceType": "Observation", "id": f"o{i}", "status": "final", "code": {"text": "Hb"},
           "subject": {"reference": "Patient/p1"}} for i in range(5)),
        *({"resourceType": "DiagnosticReport", "id": f"r{i}", "status": "final", "code": {"text": "CBC"},
           "subject": {"reference": "Patient/p1"}, "result": [{"reference": f"Observation/o{i}"}]}
          for i in range(1, 5)),
        *({"resourceType": t, "id": "z"} for t in OTHER_TYPES),
        {"resourceType": "Provenance", "id": "pv", "recorded": "2026-12-04T01:00:00Z",
         "target": [{"reference": "Specimen/z"}, {"reference": "Observation/o1"}],
         "agent": [{"who": {"reference": "Organization/z"}}]}], validated=True)
    yield repo
    store.close()


def _ids(repo: FhirRepository, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    return sorted(r["id"] for r in repo.search(rtype, [*params, ("_count", "1000")]).resources)


def _limit() -> int:
    with sqlite3.connect(":memory:") as conn:
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def test_a_long_bare_id_provenance_target_search_is_answered(repo: FhirRepository) -> None:
    types = len(repo.backend.store.query("SELECT DISTINCT type FROM fhir_resource")) - 1  # (Patient: hashed)
    ids = _limit() // (3 * types) + 200  # past the limit at three variables an id and type
    assert _ids(repo, "Provenance", [("target", ",".join(["z", *(f"x{i}" for i in range(ids))]))]) == ["pv"]


@pytest.mark.parametrize("padding", [0, 150])  # a VALUES table (few keys), one JSON variable (many)
def test_bare_and_typed_ids_find_the_same_reports_both_ways(repo: FhirRepository, padding: int) -> None:
    pad = [f"x{i}" for i in range(padding)]
    assert _ids(repo, "DiagnosticReport", [("result", ",".join(["o0", "o2", *pad]))]) == ["r0", "r2"]
    assert _ids(repo, "DiagnosticReport", [("result", ",".join(["Observation/o3", "o4", *pad]))]) == ["r3", "r4"]
    assert _ids(repo, "DiagnosticReport", [("subject", "Patient/p1"), ("result", ",".join(["o1", *pad]))]) == ["r1"]
    # a bare id names any type for a Provenance's target (its R4 targets: any resource)
    assert _ids(repo, "Provenance", [("target", ",".join(["z", *pad]))]) == ["pv"]
    assert _ids(repo, "Provenance", [("target", ",".join(["Specimen/z", *pad]))]) == ["pv"]
    assert _ids(repo, "Provenance", [("target", ",".join(["Device/z", *pad]))]) == []


def test_a_search_past_the_variable_limit_is_a_400_naming_it(repo: FhirRepository) -> None:
    store = repo.backend.store
    store.query("SELECT 1")
    conn = store._readers.conn  # this thread's read connection, lowered (every search binds from it)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 300)
    try:
        with pytest.raises(BadRequest) as raised:
            repo.search("DiagnosticReport", [("result", ",".join(f"Observation/x{i}" for i in range(400)))])
        assert raised.value.status == 400 and "limit of 300 SQL variables" in raised.value.diagnostics
    finally:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, _limit())


def test_moving_a_store_to_this_layout_logs_the_upgrade_rule(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "huren.sqlite3"
    store = SqliteStore(path)
    FhirRepository(store, base_url="http://huren.test/fhir").write_many([{"resourceType": "Patient", "id": "p1"}])
    store.execute("PRAGMA user_version = 6")  # the tables of layout 6 are layout 7's: only rows moved
    store.close()
    with caplog.at_level("WARNING", logger="huren.repository"):
        store = SqliteStore(path)
        try:
            FhirRepository(store, base_url="http://huren.test/fhir")
            assert store.query("PRAGMA user_version")[0][0] == 9  # this layout (writer31: 8; perf41: 9)
        finally:
            store.close()
    assert any("layout 6 moved to layout 9" in r.getMessage() and "must be stopped" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
