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
