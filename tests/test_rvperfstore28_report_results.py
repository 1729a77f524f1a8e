"""Review of perfstore28 (storage layout 7: a DiagnosticReport's ``result`` rows keyed by the
results' rids): what the review found, each a test that fails on ff672cf8.

A search by bare ids (``result=o1,o2,...``) reads the keyed rows through one ``VALUES`` row per id
and per resource type the store holds (``SqliteSearch._by_target``), three SQL variables each. A
long list (a client's POST ``_search``, its body unbounded) on a store of ~15 types passes
SQLite's variable limit: ``sqlite3.OperationalError: too many SQL variables`` escapes as a 500,
where the code before (layout 6: the report's rows hashed, two variables an id) answered 200.
The same limit was already reachable for ``Provenance?target=`` since layout 6.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings

FHIR = "application/fhir+json"
# resource types a county store holds besides the lab feed's (each one more VALUES row an id)
OTHER_TYPES = ("Provenance", "ServiceRequest", "Specimen", "Encounter", "Practitioner", "Organization",
               "Location", "Condition", "Device", "Medication", "Group", "Library")


@pytest.fixture
def http(settings: Settings) -> Iterator[tuple[Engine, TestClient]]:
    eng = Engine(settings)
    try:
        with TestClient(create_app(eng), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rv", "system/*.cruds")
            yield eng, client
    finally:
        eng.close()


def test_a_long_bare_id_result_search_is_answered_not_a_500(http: tuple[Engine, TestClient]) -> None:
    eng, client = http
    eng.repository.write_many([
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"},
         "subject": {"reference": "Patient/p1"}},
        {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "CBC"},
         "subject": {"reference": "Patient/p1"}, "result": [{"reference": "Observation/o1"}]},
        *({"resourceType": t, "id": "z"} for t in OTHER_TYPES)], validated=True)
    types = len(eng.store.query("SELECT DISTINCT type FROM fhir_resource"))
    with sqlite3.connect(":memory:") as conn:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    ids = limit // (3 * types) + 200  # past the limit keyed (3 an id and type), far below it hashed (2 an id)
    assert 2 * ids < limit // 2
    body = "result=" + ",".join(["o1", *(f"x{i}" for i in range(ids))])
    answer = client.post("/fhir/DiagnosticReport/_search", content=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200, answer.text[:300]
    found: Any = answer.json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["r1"]


# --- an older huren still running beside this one ---------------------------------------------
# An older release refuses a layout-7 store only when it opens it (``LayoutError``); a worker of
# that release already running when this one opens the store (a rolling upgrade; the layout code
# itself expects "a second worker" on the file) keeps reading the report rows hashed only. What
# this release writes keyed, it no longer finds: its ``result_labels`` rise searches
# ``DiagnosticReport?result=Observation/<id>`` for the reports citing a result just labelled R, and
# misses every report this release wrote, which then stays unlabelled beside its R result.
OLD_WORKER = """
import sys
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
store = SqliteStore(sys.argv[1])
repo = FhirRepository(store, base_url="http://huren.test/fhir")
print(store.query("PRAGMA user_version")[0][0], flush=True)
sys.stdin.readline()  # this release opens the store and writes meanwhile
print(",".join(r["id"] for r in repo.search("DiagnosticReport", [("result", "Observation/o1")]).resources),
      flush=True)
store.close()
"""


@pytest.mark.xfail(strict=True, reason=(
    "the lead's rule (storefix28): every process of an older release must be stopped before a release "
    "with a new storage layout opens the store (huren serve restarts all its workers together; the "
    "layout change is logged as a warning); released layout-6 code checks the layout only at open, "
    "and writing both row forms would double the rows layout 7 removed"))
def test_an_older_worker_running_beside_this_one_still_finds_the_reports_it_writes(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from engine.repository.fhir import FhirRepository
    from engine.repository.sqlite_store import SqliteStore
    from tests.test_perfstore28_report_results import _code_before

    base = _code_before(tmp_path)
    path = tmp_path / "huren.sqlite3"
    old = subprocess.Popen([sys.executable, "-c", OLD_WORKER, str(path)], cwd=base, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, "PYTHONPATH": str(base)})
    try:
        assert old.stdout is not None and old.stdin is not None
        assert old.stdout.readline().strip() == "6"  # the older worker has the store open
        store = SqliteStore(path)
        try:
            repo = FhirRepository(store, base_url="http://huren.test/fhir")
            repo.write_many([
                {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"}},
                {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "CBC"},
                 "result": [{"reference": "Observation/o1"}]}])
            assert [r["id"] for r in repo.search("DiagnosticReport", [("result", "Observation/o1")]).resources] == ["r1"]
        finally:
            store.close()
        old.stdin.write("\n")
        old.stdin.flush()
        assert old.stdout.readline().strip() == "r1"
    finally:
        old.kill()
        old.wait(timeout=30)
