"""Earlier versions' whole-record AuditEvent copies are gone after a start, on both backends.

Such a copy (``AuditEvent/audit-<seq>``) names every patient its interaction touched; a start of
this version expunges it (current row, history, index rows: a FHIR delete would leave it readable
through ``_history``), once; the record's per-patient views are derived from the log instead.
"""

from __future__ import annotations

import orjson
import pytest

from engine.audit.events import build_event, requestor_agent
from engine.audit.legacy import MARKER, purge_legacy_copies
from engine.audit.log import VIEW_PROGRESS
from engine.audit.verify import verify_online
from engine.audit.view import RECORD_DETAIL, views_of
from engine.audit.who_looked import who_looked
from engine.engine import Engine
from engine.errors import NotFound
from engine.repository.query import Query
from engine.settings import Settings

HIS = requestor_agent(kind="system", subject="his-a", address="10.0.0.9")


def _earlier_version(engine: Engine) -> int:
    """Make ``engine``'s data what an earlier version left: signed records, each also stored whole
    as ``AuditEvent/audit-<seq>`` (one of them updated once, so it has history), and one stored
    per-patient view, as the version after kept them; no views derived on read."""
    engine.audit.close()
    repository, engine.audit.repository = engine.audit.repository, None
    routed, engine.repository.backend = engine.repository.backend, engine.store.fhir
    engine.audit.record(build_event(action="search", origin="o", agents=HIS, patient_ids=["pa", "pb"],
                                    resources=["Observation/1", "Observation/2"],
                                    owners={"Observation/1": ["pa"], "Observation/2": ["pb"]},
                                    query="Observation?name=李四"))
    engine.audit.record(build_event(action="read", origin="o", agents=HIS, patient_ids=["pa"],
                                    resources=["Observation/1"], owners={"Observation/1": ["pa"]}))
    engine.audit.record(build_event(action="token-issue", origin="o", agents=HIS))
    for seq in range(engine.audit.size):
        engine.repository.update(engine.audit.events(seq, 1)[0])
    engine.repository.update({**engine.audit.events(0, 1)[0], "outcomeDesc": "v2"})  # history
    # ... and the next version's stored per-patient view of one (those are derived on read now)
    engine.repository.update(views_of(engine.audit.events(1, 1)[0])[0])
    assert len(engine.repository.store.fhir.history("AuditEvent", "audit-0")) == 2
    assert "Patient/pa" in engine.store.fhir.current("AuditEvent", "audit-0").body.decode()  # pb's leak
    engine.store.collection(VIEW_PROGRESS).delete(MARKER)  # this version never ran here
    engine.audit.repository = repository
    engine.repository.backend = routed
    return engine.audit.size


def _assert_migrated(engine: Engine, size: int) -> None:
    fhir = engine.repository.store.fhir
    assert [r.id for r in fhir.search(Query("AuditEvent"))] == []  # nothing stored is left, views derived
    for seq in (0, 1):  # they named patients: no trace of the copy, current or history
        assert fhir.current("AuditEvent", f"audit-{seq}") is None
        assert fhir.history("AuditEvent", f"audit-{seq}") == []
        with pytest.raises(NotFound):
            engine.repository.read("AuditEvent", f"audit-{seq}")
    # the record without patients has its view under that id now, and nothing older
    assert [RECORD_DETAIL in r.body.decode() for r in fhir.history("AuditEvent", "audit-2")] in ([], [True])
    found = engine.repository.search("AuditEvent", [("patient", "pb"), ("_count", "50")], compartment={"pb"})
    text = orjson.dumps(found.resources).decode()
    assert found.total == 1 and "Patient/pa" not in text and "李四" not in text
    mine = engine.repository.search("AuditEvent", [("patient", "pa"), ("_count", "50")], compartment={"pa"})
    assert mine.total == 2 and "Patient/pb" not in orjson.dumps(mine.resources).decode()
    assert sorted(a.what for a in who_looked(engine.repository, {"pa"})) == ["read", "search"]
    assert engine.repository.search("AuditEvent", [("_count", "50")]).total == 4  # pa 2, pb 1, the token 1
    assert verify_online(engine.audit).ok and engine.audit.size == size  # the signed log as it was


def test_old_copies_are_expunged_and_replaced_by_views_once(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        size = _earlier_version(engine)
        assert purge_legacy_copies(engine.audit, engine.repository, VIEW_PROGRESS) == 4
        _assert_migrated(engine, size)
        assert purge_legacy_copies(engine.audit, engine.repository, VIEW_PROGRESS) == 0  # idempotent
        _assert_migrated(engine, size)


def test_a_start_migrates_before_anything_can_search(settings: Settings) -> None:
    with Engine(settings) as engine:
        size = _earlier_version(engine)
    with Engine(settings) as engine:  # the start itself did it
        _assert_migrated(engine, size)
        assert engine.store.collection(VIEW_PROGRESS).get(MARKER)["stored"] is False
    with Engine(settings) as engine:  # and a second start changes nothing
        _assert_migrated(engine, size)


def test_expunge_removes_current_history_and_index_rows(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        repo = engine.repository
        repo.update({"resourceType": "Organization", "id": "o1", "name": "a"})
        repo.update({"resourceType": "Organization", "id": "o1", "name": "b"})
        repo.update({"resourceType": "Organization", "id": "o2", "name": "b"})
        assert repo.store.fhir.expunge("Organization", ["o1", "nope"]) == 1
        assert repo.store.fhir.history("Organization", "o1") == []
        assert [r["id"] for r in repo.search("Organization", [("name", "b")]).resources] == ["o2"]
        repo.update({"resourceType": "Organization", "id": "o1", "name": "c"})  # the id can be used again
        assert repo.read("Organization", "o1")["meta"]["versionId"] == "1"
