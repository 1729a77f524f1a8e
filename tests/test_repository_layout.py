"""SQLite storage layout: superseded versions only in history, _lastUpdated from the resource row,
and a data directory of the earlier layout migrated on open (a newer one refused)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.errors import BadRequest
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_fhir import LAYOUT, LayoutError
from engine.repository.sqlite_store import SqliteStore

MRN = "urn:oid:2.16.156.10011.1.FNXRMYY.mrn"
LOINC = "http://loinc.org"

# layout 1, as huren wrote it before the hashed index: wide index rows, every version in history
LAYOUT_1 = """
CREATE TABLE fhir_resource (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, UNIQUE (type, id));
CREATE INDEX fhir_resource_type ON fhir_resource (type);
CREATE INDEX fhir_resource_updated ON fhir_resource (type, updated);
CREATE TABLE fhir_history (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL, body BLOB);
CREATE UNIQUE INDEX fhir_history_version ON fhir_history (type, id, version);
CREATE TABLE ix_token (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    system TEXT NOT NULL, code TEXT NOT NULL, PRIMARY KEY (rid, param, code, system)) WITHOUT ROWID;
CREATE INDEX ix_token_lookup ON ix_token (type, param, code, system);
CREATE TABLE ix_ref (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    rtype TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (rid, param, ref, rtype)) WITHOUT ROWID;
CREATE TABLE ix_date (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE INDEX ix_date_lookup ON ix_date (type, param, lo);
CREATE TABLE ix_string (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    norm TEXT NOT NULL, raw TEXT NOT NULL, PRIMARY KEY (rid, param, norm, raw)) WITHOUT ROWID;
CREATE TABLE ix_quantity (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    value REAL NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL,
    PRIMARY KEY (rid, param, value, system, code)) WITHOUT ROWID;
CREATE TABLE ix_uri (rid INTEGER NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL,
    uri TEXT NOT NULL, PRIMARY KEY (rid, param, uri)) WITHOUT ROWID;
CREATE TABLE ix_comp (rid INTEGER NOT NULL, pid TEXT NOT NULL, PRIMARY KEY (rid, pid)) WITHOUT ROWID;
"""


# layout 2, as huren wrote it before one hashed row per token: three hash rows per token in
# ix_hash(h, rid), history holding the superseded versions only
LAYOUT_2 = """
CREATE TABLE fhir_resource (
    rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated TEXT NOT NULL, deleted INTEGER NOT NULL, body BLOB, sortkeys TEXT, hkeys BLOB, UNIQUE (type, id));
CREATE INDEX fhir_resource_updated ON fhir_resource (type, updated);
CREATE TABLE fhir_history (
    type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, updated TEXT NOT NULL,
    deleted INTEGER NOT NULL, body BLOB);
CREATE UNIQUE INDEX fhir_history_version ON fhir_history (type, id, version);
CREATE TABLE ix_hash (h INTEGER NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (h, rid)) WITHOUT ROWID;
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
PRAGMA user_version = 2;
"""


def _patient(version: int, given: str, updated: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "meta": {"versionId": str(version), "lastUpdated": updated},
            "identifier": [{"system": MRN, "value": "0001"}], "name": [{"family": "张", "given": [given]}]}


def _observation(oid: str, updated: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "meta": {"versionId": "1", "lastUpdated": updated},
            "status": "final", "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01T08:00:00+08:00",
            "valueQuantity": {"value": 131, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}}


def _write_layout_1(path: Path) -> None:
    """A data directory as the earlier layout left it: two Patient versions, two Observations,
    every version copied in history, index rows in the old wide tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(LAYOUT_1)
    versions = [(_patient(1, "三", "2024-03-01T00:00:00.000Z"), False),
                (_patient(2, "四", "2024-03-02T00:00:00.000Z"), True),
                (_observation("o1", "2024-03-01T00:00:01.000Z"), True),
                (_observation("o2", "2024-03-01T00:00:02.000Z"), True)]
    for rid, (res, current) in enumerate(versions, 1):
        row = (res["resourceType"], res["id"], int(res["meta"]["versionId"]), res["meta"]["lastUpdated"], 0,
               orjson.dumps(res))
        conn.execute("INSERT INTO fhir_history VALUES (?, ?, ?, ?, ?, ?)", row)
        if current:
            conn.execute("INSERT INTO fhir_resource VALUES (?, ?, ?, ?, ?, ?, ?, '{}')", (rid, *row))
            conn.execute("INSERT INTO ix_token VALUES (?, ?, 'stale', '', 'x')", (rid, res["resourceType"]))
    conn.close()


def test_layout_1_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "huren.db"
    _write_layout_1(path)
    store = SqliteStore(path)
    assert store.fhir.legacy  # nothing is read or written until the repository binds (and migrates)
    repo = FhirRepository(store)
    assert store.query("PRAGMA user_version")[0][0] == LAYOUT
    tables = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"ix_token", "ix_ref", "ix_uri", "ix_comp"}
    # searches run on the rebuilt index (and the stale old rows are gone)
    assert [r["id"] for r in repo.search("Patient", [("identifier", f"{MRN}|0001")]).resources] == ["p1"]
    assert [r["id"] for r in repo.search("Patient", [("name", "张")]).resources] == ["p1"]
    assert sorted(r["id"] for r in repo.search("Observation", [("subject", "p1"), ("code", "718-7")]).resources) == [
        "o1", "o2"]
    assert [r["id"] for r in repo.search("Observation", [("_lastUpdated", "ge2024-03-01T00:00:02Z")]).resources] == [
        "o2"]
    assert repo.everything("p1").total == 3
    # every version still readable exactly; history holds only the superseded one
    assert repo.vread("Patient", "p1", "1")["name"][0]["given"] == ["三"]
    assert repo.vread("Patient", "p1", "2")["name"][0]["given"] == ["四"]
    assert [h["meta"]["versionId"] for h in repo.history("Patient", "p1")] == ["2", "1"]
    assert store.query("SELECT type, id, version FROM fhir_history") == [("Patient", "p1", 1)]
    # and it goes on working as layout 2
    repo.update({**_observation("o1", ""), "status": "amended"})
    assert [h["meta"]["versionId"] for h in repo.history("Observation", "o1")] == ["2", "1"]
    assert repo.search("Observation", [("status", "final")]).total == 1
    store.close()
    reopened = SqliteStore(path)  # migrated once: the next open is a plain layout-2 open
    assert not reopened.fhir.legacy
    assert FhirRepository(reopened).search("Observation", [("status", "amended")]).total == 1
    reopened.close()


def _write_layout_2(path: Path) -> None:
    """A data directory as layout 2 left it: Patient p1 at version 2 (version 1 in history), two
    Observations, and index rows of the old shape (stale, so a search on them would find nothing)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(LAYOUT_2)
    old = _patient(1, "三", "2024-03-01T00:00:00.000Z")
    conn.execute("INSERT INTO fhir_history VALUES ('Patient', 'p1', 1, ?, 0, ?)",
                 (old["meta"]["lastUpdated"], orjson.dumps(old)))
    rows = [_patient(2, "四", "2024-03-02T00:00:00.000Z"), _observation("o1", "2024-03-01T00:00:01.000Z"),
            {**_observation("o2", "2024-03-01T00:00:02.000Z"), "subject": {"reference": "Group/p1"}}]
    for rid, res in enumerate(rows, 1):
        conn.execute("INSERT INTO fhir_resource VALUES (?, ?, ?, ?, ?, 0, ?, '{}', ?)",
                     (rid, res["resourceType"], res["id"], int(res["meta"]["versionId"]), res["meta"]["lastUpdated"],
                      orjson.dumps(res), (rid * 7).to_bytes(8, "little")))
        conn.execute("INSERT INTO ix_hash VALUES (?, ?)", (rid * 7, rid))
    conn.close()


def test_layout_2_is_migrated_on_open(tmp_path: Path) -> None:
    """One hashed row per token after the migration: system|code, code, |code, typed and bare
    references and compartments all answer from the rebuilt rows; history stays as it was."""
    path = tmp_path / "huren.db"
    _write_layout_2(path)
    store = SqliteStore(path)
    assert store.fhir.legacy
    repo = FhirRepository(store)
    assert store.query("PRAGMA user_version")[0][0] == LAYOUT
    assert [r[1] for r in store.query("PRAGMA table_info(ix_hash)")] == ["h", "rid", "q"]
    assert store.query("SELECT count(*) FROM ix_hash WHERE h IN (7, 14, 21)")[0][0] == 0  # the stale rows went

    def found(rtype: str, *pairs: tuple[str, str]) -> list[str]:
        return sorted(r["id"] for r in repo.search(rtype, list(pairs)).resources)

    assert found("Patient", ("identifier", f"{MRN}|0001")) == ["p1"]
    assert found("Patient", ("identifier", "0001")) == ["p1"]
    assert found("Patient", ("identifier", "urn:other|0001")) == []
    assert found("Patient", ("name", "张四")) == ["p1"]
    assert found("Observation", ("code", f"{LOINC}|718-7")) == ["o1", "o2"]
    assert found("Observation", ("code", "|718-7")) == []
    assert found("Observation", ("subject", "p1")) == ["o1", "o2"]  # a bare id: any target type
    assert found("Observation", ("subject", "Patient/p1")) == ["o1"]
    assert found("Observation", ("subject:Group", "p1")) == ["o2"]
    assert found("Observation", ("value-quantity", "131"), ("date", "2024-03-01")) == ["o1", "o2"]
    assert repo.everything("p1").total == 2  # the Patient and o1 (o2's subject is a Group)
    assert [h["meta"]["versionId"] for h in repo.history("Patient", "p1")] == ["2", "1"]
    assert repo.vread("Patient", "p1", "1")["name"][0]["given"] == ["三"]
    repo.update({**_observation("o1", ""), "status": "amended"})  # the old rows go by the recorded keys
    assert found("Observation", ("status", "final")) == ["o2"]
    assert found("Observation", ("status", "amended"), ("code", f"{LOINC}|718-7")) == ["o1"]
    store.close()


def test_two_processes_opening_an_old_store_migrate_it_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two workers open the same layout-2 store: the first to bind migrates it, the second finds
    it migrated inside its own write transaction and rebuilds nothing."""
    path = tmp_path / "huren.db"
    _write_layout_2(path)
    first, second = SqliteStore(path), SqliteStore(path)
    assert first.fhir.legacy and second.fhir.legacy
    FhirRepository(first)
    rows = first.query("SELECT count(*) FROM ix_hash")[0][0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="huren.repository"):
        repo = FhirRepository(second)
    assert "migrated to layout" not in caplog.text and not second.fhir.legacy
    assert second.query("SELECT count(*) FROM ix_hash")[0][0] == rows
    assert [r["id"] for r in repo.search("Patient", [("identifier", f"{MRN}|0001")]).resources] == ["p1"]
    first.close()
    second.close()


def test_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huren.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LAYOUT + 1}")
    conn.close()
    with pytest.raises(LayoutError, match="newer huren"):
        SqliteStore(path)


def test_history_rows_only_for_superseded_versions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    repo.update(_observation("o1", ""))
    assert store.query("SELECT count(*) FROM fhir_history")[0][0] == 0  # a first version is written once
    repo.update({**_observation("o1", ""), "status": "amended"})
    repo.delete("Observation", "o1")
    assert store.query("SELECT version FROM fhir_history ORDER BY version") == [(1,), (2,)]
    assert [(v.version, v.deleted) for v in repo.versions("Observation", "o1")] == [(3, True), (2, False), (1, False)]
    assert repo.vread("Observation", "o1", "2")["status"] == "amended"
    store.close()


def test_last_updated_boundaries_to_the_millisecond(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    stamp = repo.update(_observation("o1", "")).resource["meta"]["lastUpdated"]  # e.g. ...T08:00:00.123Z

    def hits(value: str) -> int:
        return repo.search("Observation", [("_lastUpdated", value)]).total or 0

    exact = stamp[:-1]  # the instant at its own (millisecond) precision
    assert hits(exact + "Z") == 1 and hits("eq" + stamp) == 1
    assert hits("ge" + stamp) == 1 and hits("le" + stamp) == 1
    assert hits("gt" + stamp) == 0 and hits("lt" + stamp) == 0
    assert hits("sa" + stamp) == 0 and hits("eb" + stamp) == 0
    assert hits("eq" + stamp[:10]) == 1 and hits("ne" + stamp[:10]) == 0  # the day contains it
    assert hits("gt1900") == 1 and hits("lt1900") == 0 and hits("ge9000") == 0 and hits("lt9000") == 1
    store.close()


def test_mongodb_documents_of_the_earlier_layout_are_reindexed(caplog: pytest.LogCaptureFixture) -> None:
    """Documents written with three token keys per value and every version in history (the
    earlier MongoDB layout) answer the same searches, versions and history after the bind."""
    import mongomock

    from engine.repository.mongo_store import MongoStore

    client = mongomock.MongoClient()
    db = client["huren"]
    sep = "\x1f"
    p1, p2 = _patient(1, "三", "2024-03-01T00:00:00.000Z"), _patient(2, "四", "2024-03-02T00:00:00.000Z")
    o1 = _observation("o1", "2024-03-01T00:00:01.000Z")
    for res in (p1, p2, o1):
        key = f"{res['resourceType']}/{res['id']}"
        version = int(res["meta"]["versionId"])
        db["fhir_history"].insert_one({"_id": f"{key}/{version}", "type": res["resourceType"], "id": res["id"],
                                       "version": version, "updated": res["meta"]["lastUpdated"], "deleted": False,
                                       "body": orjson.dumps(res)})
    for res, tok in ((p2, [f"identifier{sep}{MRN}{sep}0001", f"identifier{sep}*{sep}0001"]),
                     (o1, [f"code{sep}{LOINC}{sep}718-7", f"code{sep}*{sep}718-7", f"code{sep}{LOINC}{sep}*"])):
        db["fhir_current"].insert_one({
            "_id": f"{res['resourceType']}/{res['id']}", "type": res["resourceType"], "id": res["id"],
            "version": int(res["meta"]["versionId"]), "updated": res["meta"]["lastUpdated"], "deleted": False,
            "body": orjson.dumps(res), "tok": tok, "ref": [], "comp": [], "has": [], "srt": {}})
    store = MongoStore(client, "huren")
    with caplog.at_level("WARNING", logger="huren.repository"):
        repo = FhirRepository(store)
    assert "rebuilding the FHIR index keys" in caplog.text
    assert db["fhir_meta"].find_one({"_id": "layout"})["version"] == 2

    def found(rtype: str, *pairs: tuple[str, str]) -> list[str]:
        return sorted(r["id"] for r in repo.search(rtype, list(pairs)).resources)

    assert found("Patient", ("identifier", f"{MRN}|0001")) == found("Patient", ("identifier", "0001")) == ["p1"]
    assert found("Observation", ("code", f"{LOINC}|718-7"), ("subject", "p1")) == ["o1"]
    assert found("Observation", ("subject", "Patient/p1"), ("value-quantity", "131")) == ["o1"]
    assert repo.everything("p1").total == 2
    assert [h["meta"]["versionId"] for h in repo.history("Patient", "p1")] == ["2", "1"]  # no version twice
    assert repo.vread("Patient", "p1", "2")["name"][0]["given"] == ["四"]
    repo.update({**_observation("o1", ""), "status": "amended"})  # version 2: version 1 stays in history
    assert [h["meta"]["versionId"] for h in repo.history("Observation", "o1")] == ["2", "1"]
    assert found("Observation", ("status", "amended")) == ["o1"] and found("Observation", ("status", "final")) == []
    caplog.clear()
    with caplog.at_level("WARNING", logger="huren.repository"):
        FhirRepository(store)  # marked: nothing rebuilt again
    assert "rebuilding" not in caplog.text


def test_mongodb_history_holds_superseded_versions_only() -> None:
    import mongomock

    from engine.repository.mongo_store import MongoStore

    store = MongoStore(mongomock.MongoClient(), "huren")
    repo = FhirRepository(store)
    repo.update(_observation("o1", ""))
    assert store.db["fhir_history"].count_documents({}) == 0  # a first version is written once
    assert repo.vread("Observation", "o1", "1")["status"] == "final"
    repo.update({**_observation("o1", ""), "status": "amended"})
    repo.delete("Observation", "o1")
    assert sorted(d["version"] for d in store.db["fhir_history"].find()) == [1, 2]
    assert [(v.version, v.deleted) for v in repo.versions("Observation", "o1")] == [(3, True), (2, False), (1, False)]
    assert repo.vread("Observation", "o1", "2")["status"] == "amended"


def test_one_index_row_per_token_and_reference(tmp_path: Path) -> None:
    """An Observation's equality rows: one per coded value and per reference, none for the
    ``system|`` form (not enabled), for ``patient`` beside ``subject`` or for its compartment, nor
    for a performer that is not a Patient (the shipped list leaves ``performer`` out; its Patient
    references still place the result in that Patient's compartment); an update replaces exactly
    its rows."""
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    obs = {**_observation("o1", ""), "performer": [{"reference": "Organization/org-a"}],
           "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                     "code": "laboratory"}]}]}
    obs["code"]["coding"].append({"system": "urn:local", "code": "HGB"})
    repo.update(obs)
    (rid,) = store.query("SELECT rid FROM fhir_resource WHERE id = 'o1'")[0]

    def rows() -> int:
        return store.query("SELECT count(*) FROM ix_hash WHERE rid = ?", (rid,))[0][0]

    # status, category, code x2; subject (the performing Organization has no row)
    assert rows() == 5
    assert store.query("SELECT count(*) FROM ix_date WHERE rid = ?", (rid,))[0][0] == 1
    assert store.query("SELECT count(*) FROM ix_quantity WHERE rid = ?", (rid,))[0][0] == 1
    repo.update({**obs, "status": "amended", "performer": [{"reference": "Patient/p9"}]})
    assert rows() == 6  # a self-reported result: its performer is a Patient, whose compartment holds it
    assert repo.search("Observation", [("status", "final")]).total == 0
    assert repo.search("Observation", [("status", "amended"), ("code", "urn:local|HGB"), ("patient", "p1")]).total == 1
    assert [r["id"] for r in repo.search("Observation", [], compartment=frozenset({"p9"})).resources] == ["o1"]
    assert repo.search("Observation", [], compartment=frozenset({"p8"})).total == 0
    with pytest.raises(BadRequest, match="performer"):
        repo.search("Observation", [("performer", "Organization/org-a")])
    repo.update({**obs, "performer": []})
    assert rows() == 5
    assert repo.search("Observation", [], compartment=frozenset({"p9"})).total == 0
    store.close()


def test_a_changed_search_parameter_list_rebuilds_the_rows(tmp_path: Path) -> None:
    """A store indexed under every R4 parameter, opened under the shipped list: the rows of the
    parameters it leaves out are gone (the performing laboratory's), the others rebuilt as they
    were, and the list's digest recorded, so opening it again rebuilds nothing."""
    from engine.repository.searchparams import SearchParams, definitions, load

    store = SqliteStore(tmp_path / "huren.db")
    every = FhirRepository(store, params=SearchParams(definitions()))
    every.update({**_observation("o1", ""), "performer": [{"reference": "Organization/org-a"}]})
    (rid,) = store.query("SELECT rid FROM fhir_resource WHERE id = 'o1'")[0]

    def rows() -> int:
        return store.query("SELECT count(*) FROM ix_hash WHERE rid = ?", (rid,))[0][0]

    assert rows() == 5  # status, code, combo-code, subject, performer
    FhirRepository(store)
    assert rows() == 3
    assert store.query("SELECT value FROM fhir_meta WHERE key = 'indexed-by'") == [(load().signature,)]
    store.conn.execute("UPDATE fhir_resource SET hkeys = NULL WHERE rid = ?", (rid,))  # a rebuild would restore it
    FhirRepository(store)
    assert store.query("SELECT hkeys FROM fhir_resource WHERE rid = ?", (rid,)) == [(None,)]
    store.close()
