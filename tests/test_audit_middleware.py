"""The audit middleware: one AuditEvent per request, written before the response leaves.

Routes here are small stand-ins for the FHIR router that call ``note()`` the way it does; the
middleware, the event shape and the log underneath are the real ones, over the real SQLite store.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.api.fast_read import FastRead
from engine.audit import record
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.note import note
from engine.audit.view import view_id
from engine.engine import Engine
from engine.errors import Forbidden
from engine.settings import Settings


class _Caller:
    def __init__(self, subject: str, kind: str) -> None:
        self.subject, self.kind = subject, kind


@pytest.fixture
def client(engine: Engine) -> TestClient:
    app = create_app(engine)

    @app.get("/fhir/Observation/{oid}")
    def read_obs(oid: str, request: Request) -> dict:
        request.state.caller = _Caller("his-a", "system")
        obs = {"resourceType": "Observation", "id": oid, "meta": {"versionId": "3"},
               "subject": {"reference": "Patient/p1"}}
        note(request, action="read", resources=[obs])
        return obs

    @app.get("/fhir/Observation")
    def search_obs(request: Request) -> dict:
        request.state.caller = _Caller("resident-9", "patient")
        found = [{"resourceType": "Observation", "id": f"o{i}", "subject": {"reference": f"Patient/p{i % 2}"}}
                 for i in range(4)]
        note(request, action="search", resources=found, query="Observation?code=718-7")
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found)}

    @app.get("/fhir/Secret/{sid}")
    def refused(sid: str) -> dict:
        raise Forbidden("not in your compartment")

    @app.get("/fhir/Crash/{cid}")
    def crash(cid: str) -> dict:
        raise RuntimeError("handler bug")

    # the stand-ins must win over the real /fhir router that create_app mounts first
    stand_ins = app.router.routes[-4:]
    del app.router.routes[-4:]
    app.router.routes[0:0] = stand_ins
    # and over the fast path that answers GET /fhir/{type}/{id} before the router
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastRead]
    return TestClient(app, raise_server_exceptions=False)


def events(engine: Engine) -> list[dict]:
    return engine.audit.events()


def test_a_read_is_recorded_with_patient_resource_agent_and_outcome(client: TestClient, engine: Engine) -> None:
    assert client.get("/fhir/Observation/o7").status_code == 200
    [ev] = events(engine)
    assert ev["resourceType"] == "AuditEvent" and ev["id"] == "audit-0"
    assert ev["type"]["code"] == "rest" and ev["subtype"][0]["code"] == "read" and ev["action"] == "R"
    assert ev["outcome"] == "0"
    requestor = next(a for a in ev["agent"] if a["requestor"])
    assert requestor["who"]["identifier"] == {"system": "urn:huren:client", "value": "his-a"}
    assert requestor["network"] == {"address": "testclient", "type": "2"}
    assert ev["source"]["type"][0]["code"] == "4"
    refs = [(e.get("what", {}).get("reference"), e["role"]["code"]) for e in ev["entity"]]
    assert ("Patient/p1", "1") in refs and ("Observation/o7/_history/3", "4") in refs


def test_a_search_names_each_patient_once_and_the_query(client: TestClient, engine: Engine) -> None:
    client.get("/fhir/Observation?code=718-7")
    [ev] = events(engine)
    patients = [e["what"]["reference"] for e in ev["entity"] if e["role"]["code"] == "1"]
    assert patients == ["Patient/p0", "Patient/p1"]
    [query] = [e for e in ev["entity"] if e["role"]["code"] == "24"]
    assert base64.b64decode(query["query"]).decode() == "Observation?code=718-7"
    assert ev["action"] == "E" and ev["subtype"][0]["code"] == "search"
    assert next(a for a in ev["agent"] if a["requestor"])["who"]["identifier"]["system"] == "urn:huren:resident"


def test_refused_and_unrouted_requests_are_recorded_too(client: TestClient, engine: Engine) -> None:
    assert client.get("/fhir/Secret/s1").status_code == 403
    assert client.get("/fhir/nosuchtype/abc/_history/2").status_code == 404  # matches no route
    refused, missing = events(engine)
    assert refused["outcome"] == "4" and refused["outcomeDesc"].startswith("HTTP 403")
    assert refused["entity"][0]["what"]["reference"] == "Secret/s1"
    assert missing["subtype"][0]["code"] == "vread" and missing["outcome"] == "4"
    assert next(a for a in missing["agent"] if a["requestor"])["who"] == {"display": "unauthenticated caller"}


def test_a_crashing_handler_is_recorded_as_major_failure(client: TestClient, engine: Engine) -> None:
    assert client.get("/fhir/Crash/c1").status_code == 500
    [ev] = events(engine)
    assert ev["outcome"] == "12" and "RuntimeError" in ev["outcomeDesc"]


def test_docs_are_not_audited(client: TestClient, engine: Engine) -> None:
    client.get("/openapi.json")
    assert events(engine) == []


def test_when_the_record_cannot_be_written_the_request_fails(
        client: TestClient, engine: Engine, settings: Settings) -> None:
    # A log whose signing key is unavailable cannot write its due checkpoint: the append fails.
    public_only = AuditKeys.from_public_pems(engine.audit.keys.name,
                                             [k.pem.encode() for k in engine.audit.keys.public.values()])
    engine.audit = AuditLog(engine.store, settings.with_(audit_checkpoint_every=1), public_only)
    resp = client.get("/fhir/Observation/o7")
    assert resp.status_code == 503  # refused, with an OperationOutcome: never answered unaudited
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome" and "audit record" in body["issue"][0]["diagnostics"]
    assert "Patient/p1" not in resp.text  # the data never left
    assert engine.audit.leaves.count() == 0  # nothing half-written


def test_residents_find_who_accessed_their_records(client: TestClient, engine: Engine) -> None:
    client.get("/fhir/Observation/o7")  # his-a reads p1's observation
    client.get("/fhir/Observation?code=718-7")  # touches p0 and p1
    mine = engine.repository.search("AuditEvent", [("patient", "p1")], compartment={"p1"})
    assert sorted(r["id"] for r in mine.resources) == sorted([view_id("audit-0", "p1"), view_id("audit-1", "p1")])
    search_view = engine.repository.read("AuditEvent", view_id("audit-1", "p1"))
    assert "p0" not in orjson.dumps(search_view).decode()  # names p1 and p1's resources only
    assert [e["what"]["reference"] for e in search_view["entity"] if "what" in e] == [
        "Patient/p1", "Observation/o1", "Observation/o3"]
    leaf = engine.audit.events(1, 1)[0]  # the signed record keeps everything
    assert {"Patient/p0", "Patient/p1"} <= {e.get("what", {}).get("reference") for e in leaf["entity"]}
    others = engine.repository.search("AuditEvent", [("patient", "p0")], compartment={"p3"})
    assert others.resources == []


def test_the_fhir_views_are_there_as_soon_as_their_records_commit(
        client: TestClient, engine: Engine, settings: Settings) -> None:
    """Derived on read from the log: no lag, and a record another process appended (another
    ``--workers`` process, or one killed before it could do anything more) is shown at once, once."""
    for _ in range(3):
        client.get("/fhir/Observation/o7")
    assert engine.repository.search("AuditEvent", [("patient", "p1")]).total == 3
    other = AuditLog(engine.audit_store, settings, engine.audit.keys)  # another process's log
    other.record(engine.audit.events(0, 1)[0] | {"outcome": "4"})
    assert engine.repository.read("AuditEvent", view_id("audit-3", "p1"))["outcome"] == "4"
    assert engine.repository.search("AuditEvent", [("patient", "p1")]).total == 4


def test_a_large_search_lists_every_patient_but_caps_resource_entities() -> None:
    from engine.audit.events import MAX_RESOURCE_ENTITIES, build_event, requestor_agent

    ev = build_event(action="search", origin="o", agents=requestor_agent(kind=None, subject=None, address=None),
                     patient_ids=[f"p{i}" for i in range(300)],
                     resources=[f"Observation/o{i}" for i in range(MAX_RESOURCE_ENTITIES + 25)])
    roles = [e.get("role", {}).get("code") for e in ev["entity"]]
    assert roles.count("1") == 300 and roles.count("4") == MAX_RESOURCE_ENTITIES
    assert {"type": "resources-not-listed", "valueString": "25"} in ev["entity"][-1]["detail"]


def test_the_one_resource_path_states_what_the_general_path_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nearly every request is one note naming at most one resource; its record is built without
    ``record.facts``' normalisations, which must change nothing: every such note, through both
    paths, gives the same signed bytes."""
    from types import SimpleNamespace

    from engine.audit import middleware
    from engine.audit.derived import facts_keys
    from engine.audit.note import AuditNote

    now_ms = 1796025600123  # 2026-11-30T08:00:00.123Z
    monkeypatch.setattr(middleware, "time_ns", lambda: now_ms * 1_000_000)
    callers = [SimpleNamespace(kind="system", subject="his-a", client_id="his-a"),
               SimpleNamespace(kind="auditor", subject="wang.li", client_id="desk", role="auditor", display="王丽"),
               None]
    notes = [AuditNote("read", ["Observation/o1/_history/2"], ["p1"], owners={"Observation/o1/_history/2": ["p1"]}),
             AuditNote("read", ["Patient/p1/_history/1"], ["p1"], owners={"Patient/p1/_history/1": ["p1"]}),
             AuditNote("vread", ["Patient/p2/_history/3"], ["p1"], owners={"Patient/p2/_history/3": ["p2"]}),
             AuditNote("read", ["Organization/org1/_history/1"]),
             AuditNote("delete", ["Observation/o1"], ["p1", "p1"], outcome="4"),
             AuditNote("update", ["Observation/o1/_history/3"], ["p1"], outcome="99",
                       owners={"Observation/o1/_history/3": []}),
             AuditNote("operation")]
    general_path = middleware._facts
    monkeypatch.setattr(record, "new_salt", lambda: "0" * 32)  # (each record's own random salt, fixed to compare)
    taken: list[int] = []
    monkeypatch.setattr(middleware, "_facts", lambda *a: taken.append(1) or general_path(*a))
    checked = 0
    for caller in callers:
        scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
                 "client": ("10.0.0.9", 5000), "state": {"caller": caller} if caller else {}}
        for n in notes:
            for status in (200, 201, 404, 500):
                # the start as an instant, or as the middleware takes it (milliseconds since 1970)
                for start in ("2026-11-30T08:00:00.100Z", "2026-11-30T08:00:00.123Z", now_ms - 23, now_ms):
                    fast = middleware.facts_for_request(scope, [n], status, start, "node")
                    general = general_path(scope, [n], status, middleware.instant_of(start) if type(start) is int
                                           else start, "node", None, caller, getattr(caller, "kind", None),
                                           middleware.requestor_of(caller, scope["client"]),
                                           "2026-11-30T08:00:00.123Z")
                    assert fast.data(7) == general.data(7), (n, status)
                    assert list(fast.keys) == facts_keys(general), (n, status)  # its search keys too
                    checked += 1
    assert checked == 3 * len(notes) * 16 and not taken  # every one of these took the one-resource path
