"""A store whose index kept ``patient`` beside ``subject`` (or only ``patient``) is re-indexed once.

Before ``patient`` was kept under ``subject`` (``SearchParams.narrowed``) an Observation had a
``patient`` row of its own. Such a store was indexed under another search parameter list (its
recorded digest differs), so opening it rebuilds the index from the stored bodies: the ``patient``
row goes, the ``subject`` row the narrow searches read is there, and every ``patient`` search
answers. Here the old index is made to hold the ``patient`` row *instead of* ``subject``'s, so a
store not rebuilt would answer ``patient=`` with nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.repository.fhir import FhirRepository
from engine.repository.searchparams import load
from engine.repository.sqlite_rows import qualifier_hash, ref_hash
from engine.repository.sqlite_store import SqliteStore

OBS = {"resourceType": "Observation", "id": "o1", "status": "final",
       "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
       "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-01"}
PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "张"}]}


def _answers(repo: FhirRepository) -> dict[str, Any]:
    def found(*pairs: tuple[str, str]) -> list[str]:
        return sorted(r["id"] for r in repo.search("Observation", list(pairs)).resources)

    return {"patient": found(("patient", "p1")), "typed": found(("patient:Patient", "p1")),
            "subject": found(("subject", "Patient/p1")), "chain": found(("patient.name", "张")),
            "missing": found(("patient:missing", "false")),
            "everything": sorted(r["id"] for r in repo.everything("p1").resources)}


EXPECTED = {"patient": ["o1"], "typed": ["o1"], "subject": ["o1"], "chain": ["o1"], "missing": ["o1"],
            "everything": ["o1", "p1"]}


def test_sqlite_index_with_patient_rows_is_rebuilt_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    repo.update(PATIENT)
    repo.update(OBS)
    (rid,) = store.query("SELECT rid FROM fhir_resource WHERE id = 'o1'")[0]
    subject = (ref_hash("Observation", "subject", "p1"), qualifier_hash("Patient"))
    patient = (ref_hash("Observation", "patient", "p1"), qualifier_hash("Patient"))
    # the old index: the reference under patient, not under subject, and another list's digest
    store.conn.execute("DELETE FROM ix_hash WHERE h = ? AND rid = ? AND q = ?", (subject[0], rid, subject[1]))
    store.conn.execute("INSERT INTO ix_hash VALUES (?, ?, ?)", (patient[0], rid, patient[1]))
    store.conn.execute("UPDATE fhir_meta SET value = 'an earlier list' WHERE key = 'indexed-by'")
    store.close()

    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    assert _answers(repo) == EXPECTED

    def row(key: tuple[int, int]) -> int:
        return store.query("SELECT count(*) FROM ix_hash WHERE h = ? AND rid = ? AND q = ?", (key[0], rid, key[1]))[0][0]

    assert (row(subject), row(patient)) == (1, 0)
    assert store.query("SELECT value FROM fhir_meta WHERE key = 'indexed-by'") == [(load().signature,)]
    store.close()


def test_mongodb_documents_with_patient_keys_are_rebuilt_once() -> None:
    import mongomock

    from engine.repository.mongo_store import MongoStore

    client = mongomock.MongoClient()
    repo = FhirRepository(MongoStore(client, "huren"))
    repo.update(PATIENT)
    repo.update(OBS)
    db = client["huren"]
    doc = db["fhir_current"].find_one({"_id": "Observation/o1"})
    sep = "\x1f"
    assert f"subject{sep}p1{sep}Patient" in doc["ref"]
    assert not any(k.startswith(f"patient{sep}") for k in doc["ref"])
    db["fhir_current"].update_one({"_id": "Observation/o1"}, {"$set": {"ref": [f"patient{sep}p1{sep}Patient"]}})
    db["fhir_meta"].update_one({"_id": "layout"}, {"$set": {"index": "an earlier list"}})

    repo = FhirRepository(MongoStore(client, "huren"))
    assert _answers(repo) == EXPECTED
    assert db["fhir_current"].find_one({"_id": "Observation/o1"})["ref"] == [f"subject{sep}p1{sep}Patient"]
    assert db["fhir_meta"].find_one({"_id": "layout"})["index"] == load().signature
