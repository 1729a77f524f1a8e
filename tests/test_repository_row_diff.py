"""A new version on SQLite writes only the index rows that changed, and leaves exactly the rows a
rebuild from the stored bodies gives: same tokens in another system, a reference to the same id
of another type, dates, strings and quantities changed or kept, deletion and re-creation, and
stores written by storage layouts 3 and 4 (converted when the repository binds)."""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

from engine.repository import sqlite_fhir, sqlite_search
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import LAYOUT
from engine.repository.sqlite_rows import _unpack
from engine.repository.sqlite_store import SqliteStore

LOINC = "http://loinc.org"
TABLES = ("ix_hash", "ix_date", "ix_string", "ix_quantity")


class _Undo(Exception):
    pass


def _state(store: SqliteStore) -> dict[str, Any]:
    out: dict[str, Any] = {t: set(store.conn.execute(f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608
    # the recorded row keys: (h, q) pairs, and the range rows as JSON
    out["keys"] = {rid: _unpack(blob) for rid, blob in store.conn.execute("SELECT rid, hkeys FROM fhir_resource")}
    out["sort"] = dict(store.conn.execute("SELECT rid, sortkeys FROM fhir_resource"))
    out["ranges"] = {rid: None if ranges is None else json.loads(ranges)
                     for rid, ranges in store.conn.execute("SELECT rid, ranges FROM fhir_resource")}
    return out


def _rebuilt(store: SqliteStore, repo: FhirRepository) -> dict[str, Any]:
    """The index a rebuild from the stored bodies writes (in a transaction rolled back after)."""
    found: dict[str, Any] = {}
    with pytest.raises(_Undo), store.transaction():
        for table in TABLES:
            store.conn.execute(f"DELETE FROM {table}")  # noqa: S608
        store.fhir._reindex(repo.indexer)
        found.update(_state(store))
        raise _Undo
    deleted = {rid for (rid,) in store.conn.execute("SELECT rid FROM fhir_resource WHERE deleted = 1")}
    for rid in deleted:  # the rebuild leaves a deleted resource's row as it is: no rows, no ranges
        assert found["keys"][rid] == set() and found["ranges"][rid] is None
    return found


def _observation(**changes: Any) -> dict[str, Any]:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "718-7"}, {"system": "urn:local", "code": "HGB"}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01T08:00:00+08:00",
           "valueQuantity": {"value": 131, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}
    return {**obs, **changes}


def _patient(**changes: Any) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "active": True, "gender": "female",
               "identifier": [{"system": "urn:mrn", "value": "0001"}],
               "name": [{"family": "张", "given": ["三"]}], "birthDate": "1980-01-01",
               "address": [{"city": "阜宁", "state": "江苏", "postalCode": "224400"}]}
    return {**patient, **changes}


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Any:
    store = SqliteStore(tmp_path / "huren.db")
    yield store, FhirRepository(store)
    store.close()


def test_each_new_version_leaves_the_rows_a_rebuild_gives(sqlite_repo: Any) -> None:
    store, repo = sqlite_repo
    versions = [
        _observation(),
        _observation(status="amended"),  # one token
        _observation(code={"coding": [{"system": "urn:other", "code": "718-7"}]}),  # same h, another q
        _observation(subject={"reference": "Group/p1"}),  # same id, another target type
        _observation(effectiveDateTime="2024-03-02", valueQuantity={"value": 1.50, "unit": "g/L"}),
        _observation(effectivePeriod={"start": "2024-03-01"}, effectiveDateTime=None),
        _observation(),
    ]
    for obs in versions:
        repo.update({k: v for k, v in obs.items() if v is not None})
        assert _state(store) == _rebuilt(store, repo)
    for patient in (_patient(), _patient(telecom=[{"system": "phone", "value": "13800000000"}]),
                    _patient(name=[{"family": "张", "given": ["四"]}], address=[{"city": "阜宁"}]),
                    _patient(name=[{"family": "张", "given": ["四"]}, {"text": "张四"}], active=False)):
        repo.update(patient)
        assert _state(store) == _rebuilt(store, repo)
    repo.delete("Observation", "o1")
    assert _state(store) == _rebuilt(store, repo)
    assert not store.query("SELECT 1 FROM ix_hash h JOIN fhir_resource r ON r.rid = h.rid WHERE r.id = 'o1'")
    repo.update(_observation(status="corrected"))  # re-created over the deleted row
    assert _state(store) == _rebuilt(store, repo)
    assert [r["id"] for r in repo.search("Observation", [("status", "corrected"), ("code", f"{LOINC}|718-7"),
                                                          ("patient", "p1"), ("date", "2024-03-01")]).resources] == ["o1"]


def test_a_status_change_writes_one_index_row(sqlite_repo: Any) -> None:
    """The version before's row of the old status goes, the new status's row comes, and nothing
    else of the index is touched: the history copy and the resource row are the other writes."""
    store, repo = sqlite_repo
    repo.update(_observation())
    before = store.conn.total_changes
    repo.update(_observation(status="amended"))
    assert store.conn.total_changes - before == 4  # history insert, resource update, one delete, one insert
    assert repo.search("Observation", [("status", "final")]).total == 0
    assert repo.search("Observation", [("status", "amended")]).total == 1


# the tables as layouts 3 and 4 declared them: range rows clustered on the resource (``rid``
# first) with lookup indexes beside; resources found by a UNIQUE (type, id), no ``ranges``
_RID_FIRST = """
CREATE TABLE fhir_resource_4 (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, hkeys BLOB, UNIQUE (type, id));
INSERT INTO fhir_resource_4 SELECT rid, type, id, version, updated, deleted, body, sortkeys, hkeys FROM fhir_resource;
DROP TABLE fhir_resource;
ALTER TABLE fhir_resource_4 RENAME TO fhir_resource;
CREATE INDEX fhir_resource_updated ON fhir_resource (type, updated);
DROP TABLE ix_date; DROP TABLE ix_string; DROP TABLE ix_quantity;
CREATE TABLE ix_date (rid INTEGER NOT NULL, hp INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
    PRIMARY KEY (rid, hp, lo, hi)) WITHOUT ROWID;
CREATE INDEX ix_date_lookup ON ix_date (hp, lo);
CREATE INDEX ix_date_end ON ix_date (hp, hi);
CREATE TABLE ix_string (rid INTEGER NOT NULL, hp INTEGER NOT NULL, norm TEXT NOT NULL, raw TEXT NOT NULL,
    PRIMARY KEY (rid, hp, norm, raw)) WITHOUT ROWID;
CREATE INDEX ix_string_lookup ON ix_string (hp, norm);
CREATE TABLE ix_quantity (rid INTEGER NOT NULL, hp INTEGER NOT NULL, value REAL NOT NULL,
    system TEXT NOT NULL, code TEXT NOT NULL, PRIMARY KEY (rid, hp, value, system, code)) WITHOUT ROWID;
CREATE INDEX ix_quantity_lookup ON ix_quantity (hp, value);
"""


@pytest.mark.parametrize("layout", [3, 4])
def test_stores_of_layouts_3_and_4_are_converted_on_bind(tmp_path: Path, layout: int) -> None:
    """A store written by layout 3 (``hkeys`` the ``h`` alone) or 4 (range rows keyed by ``rid``
    first) is converted when the repository binds: the index rebuilt from the stored bodies in
    one transaction, then every later version diffs against the rows it records."""
    path = tmp_path / "huren.db"
    store = SqliteStore(path)
    repo = FhirRepository(store)
    repo.update(_observation())
    repo.update(_observation(status="amended"))
    repo.update(_patient())
    store.conn.executescript(_RID_FIRST)
    store.conn.executemany("INSERT INTO ix_date VALUES (?, 1, 0, 1)",
                           [(rid,) for (rid,) in store.conn.execute("SELECT rid FROM fhir_resource")])
    if layout == 3:
        for rid, blob in store.query("SELECT rid, hkeys FROM fhir_resource"):
            hs = [h for h, _q in sorted(_unpack(blob))]
            store.conn.execute("UPDATE fhir_resource SET hkeys = ? WHERE rid = ?",
                               (struct.pack(f"<{len(hs)}q", *hs), rid))
    store.conn.execute(f"PRAGMA user_version = {layout}")
    store.close()
    store = SqliteStore(path)
    repo = FhirRepository(store)
    assert store.query("PRAGMA user_version")[0][0] == LAYOUT == 9
    assert [name for (name,) in store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                            "tbl_name = 'fhir_resource' ORDER BY name")] == [
        "fhir_resource_key", "fhir_resource_tu"]  # (type, id) found by its hash, no autoindex; layout 9: tu
    assert store.query("SELECT count(*) FROM fhir_resource WHERE idh IS NULL")[0][0] == 0
    assert _state(store) == _rebuilt(store, repo)
    assert not store.query("SELECT 1 FROM ix_date WHERE lo = 0 AND hi = 1")  # the old rows went
    assert repo.search("Observation", [("code", f"{LOINC}|718-7"), ("status", "amended"),
                                       ("date", "ge2024-03-01")]).total == 1
    assert repo.search("Patient", [("address-city", "阜宁"), ("birthdate", "1980")]).total == 1
    repo.update(_observation(code={"coding": [{"system": "urn:other", "code": "718-7"}]}))
    assert _state(store) == _rebuilt(store, repo)
    repo.delete("Patient", "p1")
    assert _state(store) == _rebuilt(store, repo)
    assert repo.search("Observation", [("code", "urn:other|718-7"), ("value-quantity", "131")]).total == 1
    assert store.query("SELECT count(*) FROM fhir_history")[0][0] == 3  # the versions before, kept
    store.close()


def test_a_range_row_is_one_btree_entry(sqlite_repo: Any) -> None:
    """The range tables are keyed for lookup alone (``ix_date`` keeps its index on the end of a
    range, which ``ge``/``gt``/``eb`` scan): their rows are found through the resource row's
    ``ranges``, so no index keyed by ``rid`` is written beside them."""
    store, _repo = sqlite_repo
    indexes = {table: [name for (name,) in store.query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))]
        for table in ("ix_date", "ix_string", "ix_quantity")}
    assert indexes == {"ix_date": ["ix_date_end"], "ix_string": [], "ix_quantity": []}


def test_two_resources_whose_keys_collide_are_both_stored_and_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``idh`` is a 64-bit hash of type and id: two ids can share it. Both resources must be
    stored (a UNIQUE key would refuse the second forever), and each read, version and search
    must find its own. Every id is given one hash here so that each write collides."""
    for module in (sqlite_fhir, sqlite_search):  # the writes and the searches
        monkeypatch.setattr(module, "id_hash", lambda rtype, id_: 7)
    store = SqliteStore(tmp_path / "huren.db")
    try:
        repo = FhirRepository(store)
        repo.update(_patient())
        repo.update(_patient(id="p2", gender="male", identifier=[{"system": "urn:mrn", "value": "0002"}]))
        repo.update(_observation())
        assert {i for (i,) in store.query("SELECT DISTINCT idh FROM fhir_resource")} == {7}
        assert repo.read("Patient", "p1")["gender"] == "female"
        assert repo.read("Patient", "p2")["gender"] == "male"
        repo.update(_patient(id="p2", gender="other", identifier=[{"system": "urn:mrn", "value": "0002"}]))
        assert repo.read("Patient", "p1")["meta"]["versionId"] == "1"
        assert repo.read("Patient", "p2")["meta"]["versionId"] == "2"
        assert repo.vread("Patient", "p2", "1")["gender"] == "male"
        assert [r["id"] for r in repo.search("Patient", [("gender", "other")]).resources] == ["p2"]
        assert repo.search("Observation", [("subject", "Patient/p1")]).total == 1
        assert store.query("SELECT count(*) FROM fhir_resource")[0][0] == 3
        assert _state(store) == _rebuilt(store, repo)
    finally:
        store.close()


def test_a_layout_5_store_is_refused_by_layout_4_readers(tmp_path: Path) -> None:
    """What an older huren checks before opening: the layout number it reads (its refusal)."""
    path = tmp_path / "huren.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LAYOUT > 4
    conn.close()


def test_a_final_result_after_the_preliminary_one_over_mllp(engine: Any, mllp: int) -> None:
    """The real path: a preliminary 12-result ORU^R01, then the final one for the same order
    over a real socket. Each result, the report and the order get a new version whose index
    rows are exactly what a rebuild gives, and the searches see the final status only."""
    from bench.ingest import oru_lab
    from bench.repository import resent_lab
    from tests.conftest import mllp_send

    store, repo = engine.store, engine.repository
    assert "MSA|AA" in mllp_send(mllp, resent_lab(oru_lab(7), "PRE000000007", "P", "20261101091500"))
    assert repo.search("DiagnosticReport", [("status", "preliminary")]).total == 1
    put_many, written = store.fhir.put_many, []

    def counted(items: Any) -> None:  # the rows the backend's puts change (it holds the store's lock)
        before = store.conn.total_changes
        put_many(items)
        written.append(store.conn.total_changes - before)

    store.fhir.put_many = counted
    assert "MSA|AA" in mllp_send(mllp, resent_lab(oru_lab(7), "FIN000000007", "F", "20261101101500"))
    assert store.query("SELECT count(*) FROM fhir_history WHERE type IN ('Observation', 'DiagnosticReport')")[0][0] == 13
    assert _state(store) == _rebuilt(store, repo)
    assert repo.search("DiagnosticReport", [("status", "preliminary")]).total == 0
    assert repo.search("DiagnosticReport", [("status", "final")]).total == 1
    assert repo.search("Observation", [("status", "final"), ("code", "http://loinc.org|6690-2")]).total == 1
    assert repo.search("Observation", [("status", "preliminary")]).total == 0
    assert sum(written) < 100  # the results, report and order: status rows; replacing every row was ~250

