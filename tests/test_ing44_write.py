"""The write path's cuts of the forty-fourth round (ing44) store what they replaced.

(1) ``SqliteFhirBackend._target_rids`` gives every resource of a put its rid in one pass and
records it for the transaction's later puts whether or not the put holds a by-target type (a
report's ``result``, a Provenance's ``target``), where ``put_many`` had recorded the rids of a put
without one a second time; a by-target reference to a resource later in the same put is still
keyed by the rid that resource gets. (2) ``versioning.versioned`` makes the two-key ``meta`` at
once for a resource without one (what the converter makes), and keeps every key where it was.
(3) ``put_many`` writes the sort keys with ``orjson`` itself (``_sort_keys`` written out).

Guards, not fixes: behaviour is unchanged, so each of these passes before the cuts too (checked:
they pass on main 31eb0c24). Real bytes through the real path: write groups through the real
repository on a real SQLite store, SQLite's own statement trace saying which statements ran, and
every stored row held to the layout's reading of its body (``test_index10_put_rows``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine import fhirjson
from engine.repository import sqlite_rows
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say

BASE = "http://huren.test/fhir"


def _obs(oid: str, value: float = 13.5) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-01T08:00:00+08:00",
            "valueQuantity": {"value": value, "unit": "g/dL"}, "id": oid}


def _report(rid: str, *results: str) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
            "subject": {"reference": "Patient/p1"}, "result": [{"reference": r} for r in results], "id": rid}


def _prov(pid: str, *targets: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "id": pid, "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"reference": "Organization/lab"}}], "target": [{"reference": t} for t in targets]}


def test_a_put_without_a_by_target_type_records_its_rids_for_the_later_puts(tmp_path: Path) -> None:
    """Observations alone (no by-target type), one of them a new version of a stored one, then a
    Provenance naming them in a later write group of the same transaction: its rows are keyed by
    the rids the first put gave (and the updated one's own), with no statement asking the store."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        repo.write_many([_obs("A")])
        statements: list[str] = []
        with store.transaction():
            repo.write_many([_obs("A", 14.0), _obs("B"), _obs("C")])
            store.conn.set_trace_callback(statements.append)
            try:
                repo.write_many([_prov("p", "Observation/A/_history/2", "Observation/B", "Observation/C")])
            finally:
                store.conn.set_trace_callback(None)
        asked = [s for s in statements if "r.rid FROM" in s]
        assert asked == [], asked
        base, mark = sqlite_rows.target_key("Provenance", "target")
        rids = dict(store.query("SELECT id, rid FROM fhir_resource WHERE type = 'Observation'"))
        prov = store.query("SELECT rid FROM fhir_resource WHERE type = 'Provenance' AND id = 'p'")[0][0]
        keyed = {h for h, in store.query("SELECT h FROM ix_hash WHERE q = ? AND rid = ?", (mark, prov))}
        assert keyed == {base + rids["A"], base + rids["B"], base + rids["C"]}
        for target in ("Observation/A", "Observation/B", "C"):
            assert [r["id"] for r in repo.search("Provenance", [("target", target)]).resources] == ["p"]
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store))  # type: ignore[arg-type]
    finally:
        store.close()


def test_a_report_before_its_results_in_one_put_names_them_by_the_rids_they_get(tmp_path: Path) -> None:
    """A report first, its two results after it in the same write group, and a result stored
    before: every ``result`` row is keyed by the result's rid (given in the same pass, or read
    once from the store), and the report is found by each result."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        repo.write_many([_obs("old")])
        repo.write_many([_report("r", "Observation/X", "Observation/Y", "Observation/old"), _obs("X"), _obs("Y")])
        base, mark = sqlite_rows.target_key("DiagnosticReport", "result")
        rids = dict(store.query("SELECT id, rid FROM fhir_resource WHERE type = 'Observation'"))
        report = store.query("SELECT rid FROM fhir_resource WHERE type = 'DiagnosticReport'")[0][0]
        keyed = {h for h, in store.query("SELECT h FROM ix_hash WHERE q = ? AND rid = ?", (mark, report))}
        assert keyed == {base + rids["X"], base + rids["Y"], base + rids["old"]}
        for result in ("Observation/X", "Observation/Y", "Observation/old"):
            assert [r["id"] for r in repo.search("DiagnosticReport", [("result", result)]).resources] == ["r"]
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store))  # type: ignore[arg-type]
    finally:
        store.close()


def test_stored_bodies_keep_the_key_order_with_and_without_a_meta(tmp_path: Path) -> None:
    """A version's body is its type, id and ``meta`` first, then its other elements in their own
    order; a ``meta`` the writer sent keeps its own keys first, ``versionId`` and ``lastUpdated``
    after them (or where they were); the resource handed to the write is left as it was."""
    store = SqliteStore(tmp_path / "huren.sqlite3")
    try:
        repo = FhirRepository(store, base_url=BASE)
        bare = _obs("bare")
        tagged = {**_obs("tagged"), "meta": {"tag": [{"system": "urn:t", "code": "x"}]}}
        stated = {**_obs("stated"), "meta": {"versionId": "9", "tag": [{"system": "urn:t", "code": "y"}]}}
        sent = [fhirjson.dumps(r) for r in (bare, tagged, stated)]
        repo.write_many([bare, tagged, stated])
        assert [fhirjson.dumps(r) for r in (bare, tagged, stated)] == sent
        for rid, meta_keys in (("bare", ["versionId", "lastUpdated"]), ("tagged", ["tag", "versionId", "lastUpdated"]),
                               ("stated", ["versionId", "tag", "lastUpdated"])):
            body = repo.read_raw("Observation", rid).body
            assert body is not None
            stored = fhirjson.loads(body)
            assert list(stored) == ["resourceType", "id", "meta", "status", "code", "subject", "effectiveDateTime",
                                    "valueQuantity"]
            assert list(stored["meta"]) == meta_keys
            assert stored["meta"]["versionId"] == "1"
        # a new version: its meta made anew, the body otherwise as sent
        repo.write_many([_obs("bare", 14.0)])
        again = fhirjson.loads(repo.read_raw("Observation", "bare").body or b"")
        assert list(again) == ["resourceType", "id", "meta", "status", "code", "subject", "effectiveDateTime",
                               "valueQuantity"]
        assert again["meta"]["versionId"] == "2" and list(again["meta"]) == ["versionId", "lastUpdated"]
    finally:
        store.close()
