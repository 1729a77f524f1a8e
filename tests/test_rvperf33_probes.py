"""Review probes of perf33 (thirty-third round, rvperf33): the revocation check as a primary-key probe
(``Collection.holds``) and the audit middleware's ``send`` that hands the app the server's own awaitable.

Real bytes through the real path: the app over TestClient on the real store (SQLite and mongomock),
and, where a server's behaviour must be played (a client that goes away, a handler that dies
mid-stream, a task cancelled while its record waits for its group), the real ``AuditMiddleware`` and
the real engine's audit log called over raw ASGI as uvicorn calls them.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from engine.api.app import create_app
from engine.audit.group_commit import LONE_AFTER
from engine.audit.middleware import AuditMiddleware
from engine.audit.note import note
from engine.audit.record import Sealed
from engine.engine import Engine
from engine.settings import Settings

PATIENT = {"resourceType": "Patient", "id": "rv33p1", "name": [{"text": "张三"}], "gender": "male"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _served(engine: Engine, http: TestClient) -> dict[str, str]:
    """A system token that can read and write, and one patient stored under it."""
    headers = _bearer(engine.auth.issue_system_token("rv33-client", "system/*.cruds"))
    r = http.put("/fhir/Patient/rv33p1", json=PATIENT, headers=headers)
    assert r.status_code in (200, 201), r.text
    return headers


# ---- the revocation check -----------------------------------------------------------------------

def test_revoked_token_refused_at_once_on_both_backends(backend_settings: Settings) -> None:
    """The read (``FastRead``), a search (the router) and introspection all see a revocation at
    once, on SQLite and on MongoDB (mongomock): ``holds`` answers as ``get`` did."""
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as http:
        headers = _served(engine, http)
        rs_secret = engine.auth.registry.add("rv33-rs", scopes=["system/*.rs"], kind="system")
        token = headers["Authorization"].split()[1]
        for _ in range(2):  # accepted, and remembered by the signature check's cache
            assert http.get("/fhir/Patient/rv33p1", headers=headers).status_code == 200
            assert http.get("/fhir/Patient?_id=rv33p1", headers=headers).status_code == 200
        assert http.post("/auth/introspect", data={"token": token}, auth=("rv33-rs", rs_secret)).json()["active"]
        claims = engine.auth.decode(token)
        engine.auth.revoke_jti(claims["jti"], claims["exp"])
        for path in ("/fhir/Patient/rv33p1", "/fhir/Patient?_id=rv33p1", "/fhir/Patient/rv33p1/_history/1"):
            r = http.get(path, headers=headers)
            assert r.status_code == 401, (path, r.status_code, r.text)
            assert "rv33p1" not in r.text and "张三" not in r.text
            assert "revoked" in r.json()["issue"][0]["diagnostics"]
        assert http.post("/auth/introspect", data={"token": token},
                         auth=("rv33-rs", rs_secret)).json() == {"active": False}
        # an unrevoked token of the same client is untouched (the probe is by this token's jti)
        other = _bearer(engine.auth.issue_system_token("rv33-client", "system/*.cruds"))
        assert http.get("/fhir/Patient/rv33p1", headers=other).status_code == 200


def _break_revocation_table(engine: Engine) -> None:
    """A real store failure under the check: the revocation table is gone (another connection
    dropped it), so the probe's SELECT raises ``sqlite3.OperationalError``."""
    conn = sqlite3.connect(engine.store.path)
    try:
        conn.execute('DROP TABLE "doc_auth_revoked"')
        conn.commit()
    finally:
        conn.close()


def test_store_error_in_revocation_check_never_lets_the_request_through(settings: Settings) -> None:
    """Fail closed: when the revocation probe itself fails, no route answers with the record (the
    read through ``FastRead``, a search, a vread), the failed request is audited once, and
    introspection never calls the token active."""
    with Engine(settings) as engine, TestClient(create_app(engine), raise_server_exceptions=False) as http:
        headers = _served(engine, http)
        rs_secret = engine.auth.registry.add("rv33-rs", scopes=["system/*.rs"], kind="system")
        token = headers["Authorization"].split()[1]
        assert http.get("/fhir/Patient/rv33p1", headers=headers).status_code == 200
        _break_revocation_table(engine)
        for path in ("/fhir/Patient/rv33p1", "/fhir/Patient?_id=rv33p1", "/fhir/Patient/rv33p1/_history/1"):
            before = engine.audit.size
            r = http.get(path, headers=headers)
            assert r.status_code >= 400, (path, r.status_code)
            assert "rv33p1" not in r.text and "张三" not in r.text
            assert engine.audit.size == before + 1  # the failed request is recorded, once
            assert engine.audit.events()[-1]["outcome"] != "0"
        r = http.post("/auth/introspect", data={"token": token}, auth=("rv33-rs", rs_secret))
        assert not (r.status_code == 200 and r.json().get("active")), r.text


def test_store_error_in_revocation_check_answers_503_operation_outcome(settings: Settings) -> None:
    with Engine(settings) as engine, TestClient(create_app(engine), raise_server_exceptions=False) as http:
        headers = _served(engine, http)
        _break_revocation_table(engine)
        for path in ("/fhir/Patient/rv33p1", "/fhir/Patient?_id=rv33p1"):
            r = http.get(path, headers=headers)
            assert r.status_code in (401, 503), (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/fhir+json")
            assert r.json()["resourceType"] == "OperationOutcome"


# ---- the audit middleware: every response recorded once, before it leaves ------------------------

def test_every_kind_of_response_through_the_app_is_audited_once_with_its_outcome(settings: Settings) -> None:
    """200, 304, HEAD, 404, 401, 403 and a 400 through the real app: one record each, its outcome and
    ``HTTP <status>`` as the response says (many in a row: the committer reaches lone mode, where
    the start goes out through the server's own awaitable)."""
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        headers = _served(engine, http)
        etag = http.get("/fhir/Patient/rv33p1", headers=headers).headers["etag"]
        narrow = _bearer(engine.auth.issue_system_token("rv33-narrow", "system/Observation.rs"))
        cases: list[tuple[str, str, dict[str, str], int, str]] = [
            ("GET", "/fhir/Patient/rv33p1", headers, 200, "0"),
            ("GET", "/fhir/Patient/rv33p1", {**headers, "If-None-Match": etag}, 304, "0"),
            ("HEAD", "/fhir/Patient/rv33p1", headers, 200, "0"),
            ("GET", "/fhir/Patient/rv33-none", headers, 404, "4"),
            ("GET", "/fhir/Patient/rv33p1", {}, 401, "4"),
            ("GET", "/fhir/Patient/rv33p1", narrow, 403, "4"),
            ("GET", "/fhir/Patient?birthdate=notadate", headers, 400, "4"),
        ]
        for _ in range(LONE_AFTER + 2):
            for method, path, h, status, outcome in cases:
                before = engine.audit.size
                r = http.request(method, path, headers=h)
                assert r.status_code == status, (method, path, r.status_code, r.text)
                if method == "HEAD" or status == 304:
                    assert r.content == b""
                assert engine.audit.size == before + 1, (method, path)
                event = engine.audit.events(before)[0]
                assert event["outcome"] == outcome and event["outcomeDesc"] == f"HTTP {status}", (method, path, event)


class _Server:
    """What uvicorn gives the app: ``send`` an awaitable, noting the log's size at each start; it
    may fail the body, as a socket whose client went away does."""

    def __init__(self, engine: Engine, fail_body: bool = False) -> None:
        self.engine, self.fail_body = engine, fail_body
        self.sent: list[tuple[str, int]] = []

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and self.fail_body:
            raise OSError("client went away")
        self.sent.append((message["type"], self.engine.audit.size))


def _scope(app: Any) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "path": "/fhir/Observation/o1", "raw_path": b"/fhir/Observation/o1", "query_string": b"",
            "headers": [], "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
            "scheme": "http", "root_path": "", "app": app, "state": {}}


class _Caller:
    subject, kind, client_id = "his-a", "system", "his-a"


def _reading_app(then: str) -> Any:
    """A stand-in for a FHIR read (notes what it read, as the router does); after its start it
    ``then`` sends its body, or raises mid-stream."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        request.state.caller = _Caller()
        note(request, action="read", resources=[{"resourceType": "Observation", "id": "o1",
                                                 "subject": {"reference": "Patient/p1"}}])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if then == "raise":
            raise RuntimeError("the body's generator died mid-stream")
        await send({"type": "http.response.body", "body": b"{}", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    return app


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize("then", ["raise", "disconnect"])
def test_a_response_that_fails_after_its_start_is_audited_once(engine: Engine, then: str) -> None:
    """A handler raising mid-stream, or a client gone before the body: one record a request (the
    start's, made before the start went out), in group mode and in lone mode, and the error reaches
    the server."""
    app = create_app(engine)
    middleware = AuditMiddleware(_reading_app(then))
    server = _Server(engine, fail_body=then == "disconnect")
    reads = LONE_AFTER + 4

    async def run() -> list[str]:
        errors = []
        for _ in range(reads):
            try:
                await middleware(_scope(app), _receive, server.send)
            except (RuntimeError, OSError) as exc:
                errors.append(type(exc).__name__)
        return errors

    errors = asyncio.run(run())
    assert errors == ["RuntimeError" if then == "raise" else "OSError"] * reads
    assert engine.audit.size == reads
    starts = [size for kind, size in server.sent if kind == "http.response.start"]
    assert starts == list(range(1, reads + 1))  # each start after its own record
    assert all(e["outcome"] == "0" and e["outcomeDesc"] == "HTTP 200" for e in engine.audit.events())


def test_a_request_cancelled_while_its_record_waits_for_its_group_sends_nothing(engine: Engine) -> None:
    """The client goes away (the server cancels the request's task) while its start waits for the
    group's write: the record stands (written once), and nothing of the response goes out."""
    app = create_app(engine)
    middleware = AuditMiddleware(_reading_app("body"))
    server = _Server(engine)

    async def run() -> None:
        task = asyncio.ensure_future(middleware(_scope(app), _receive, server.send))
        await asyncio.sleep(0)  # the task ran to its start, which now waits for the group (not lone yet)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(5):  # the group's write comes a loop turn later
            await asyncio.sleep(0)

    asyncio.run(run())
    assert server.sent == []
    assert engine.audit.size == 1
    [event] = engine.audit.events()
    assert event["outcomeDesc"] == "HTTP 200"


# ---- Sealed as a tuple ----------------------------------------------------------------------------

def test_a_sealed_record_survives_copy_and_pickle() -> None:
    sealed = Sealed(b'{"act":"read"', b',"node":"n"}', ("p:p1",), "2026-12-04T21:00:00.000Z")
    for made in (copy.copy(sealed), pickle.loads(pickle.dumps(sealed))):
        assert type(made) is Sealed and made.data(7) == sealed.data(7) and made.keys == sealed.keys
