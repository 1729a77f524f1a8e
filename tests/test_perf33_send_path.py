"""The audit middleware's ``send`` hands the app the server's own awaitable wherever it holds nothing
back (thirty-third round): a body message, and a start whose record was appended at once (lone mode),
cost no coroutine of the middleware's; a start whose record waits for its group is sent only once the
group is written; a record that cannot be written still replaces the response with the 503 and
swallows its body, in lone mode as in a group.

The middleware, the engine and its audit log are the real ones; the app inside is a small stand-in
for a FHIR read (it notes what it read, as the router does), called over raw ASGI as uvicorn calls it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from engine.api.app import create_app
from engine.audit.group_commit import LONE_AFTER
from engine.audit.keys import AuditKeys
from engine.audit.middleware import AuditMiddleware
from engine.audit.note import note
from engine.engine import Engine


class _Caller:
    subject, kind, client_id = "his-a", "system", "his-a"


BODY = b'{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"}}'


class _Server:
    """What uvicorn gives the app: ``send`` returns an awaitable of its own (kept, to compare)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent: list[dict[str, Any]] = []
        self.made: list[Any] = []
        self.records_at_start: list[int] = []

    def send(self, message: dict[str, Any]) -> Any:
        async def sent() -> None:
            if message["type"] == "http.response.start":
                self.records_at_start.append(self.engine.audit.size)
            self.sent.append(message)
        made = sent()
        self.made.append(made)
        return made


def _serve(engine: Engine, reads: int, then: Any = None) -> tuple[_Server, list[tuple[bool, bool]]]:
    """``reads`` reads on one loop (one committer: lone mode can begin); ``then``: called after them,
    before one more read."""
    app = create_app(engine)
    seen: list[tuple[bool, bool]] = []
    server = _Server(engine)

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        request.state.caller = _Caller()
        note(request, action="read", resources=[{"resourceType": "Observation", "id": "o1",
                                                 "subject": {"reference": "Patient/p1"}}])
        for message in ({"type": "http.response.start", "status": 200,
                         "headers": [(b"content-type", b"application/fhir+json")]},
                        {"type": "http.response.body", "body": BODY}):
            before = len(server.made)
            awaitable = send(message)
            own = len(server.made) > before and awaitable is server.made[-1]
            seen.append((own, message["type"] == "http.response.start"))
            await awaitable

    middleware = AuditMiddleware(probe)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def many() -> None:
        for _ in range(reads):
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                     "path": "/fhir/Observation/o1", "raw_path": b"/fhir/Observation/o1", "query_string": b"",
                     "headers": [], "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
                     "scheme": "http", "root_path": "", "app": app, "state": {}}
            await middleware(scope, receive, server.send)

    async def both() -> None:
        await many()
        if then is not None:
            then()
            await many_one()

    async def many_one() -> None:
        nonlocal reads
        reads = 1
        await many()

    asyncio.run(both())
    return server, seen


def test_body_messages_and_lone_starts_get_the_servers_own_awaitable(engine: Engine) -> None:
    reads = LONE_AFTER + 6
    server, seen = _serve(engine, reads)
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"] * reads
    assert all(m["status"] == 200 for m in server.sent if m["type"] == "http.response.start")
    bodies = [own for own, start in seen if not start]
    starts = [own for own, start in seen if start]
    assert bodies == [True] * reads  # never a coroutine of the middleware's for a body message
    # the first groups wait a loop turn for their group (held back); then lone requests append at once
    assert starts[0] is False and starts[-1] is True
    # every start went out only after its own record was in the log
    assert server.records_at_start == list(range(1, reads + 1))
    events = engine.audit.events()
    assert len(events) == reads and all(e["outcome"] == "0" for e in events)


def test_a_record_that_cannot_be_written_is_refused_in_lone_mode_too(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """After lone mode began, the log loses its signing key and a checkpoint falls due at every
    record: the next request's record cannot be written, so its response is the 503 (its own body
    swallowed), as in a group (tests/test_audit_middleware.py), and the log says why with the
    error's traceback (logged where it was caught, not when the app awaits the 503)."""
    reads = LONE_AFTER + 3
    log = engine.audit

    def lose_the_key() -> None:
        log.keys = AuditKeys.from_public_pems(log.keys.name, [k.pem.encode() for k in log.keys.public.values()])
        log.settings = log.settings.with_(audit_checkpoint_every=1)

    server, seen = _serve(engine, reads, then=lose_the_key)
    starts = [m["status"] for m in server.sent if m["type"] == "http.response.start"]
    assert starts == [200] * reads + [503]
    assert seen[2 * reads - 2] == (True, True)  # the last good read's start: appended at once (lone mode)
    bodies = [m["body"] for m in server.sent if m["type"] == "http.response.body"]
    assert bodies[:-1] == [BODY] * reads
    assert b"audit record" in bodies[-1] and BODY not in bodies[-1]  # the 503's own; the read's swallowed
    assert log.size == reads  # nothing half-written
    [refusal] = [r for r in caplog.records if r.getMessage().startswith("audit: record failed")]
    assert refusal.exc_info is not None and refusal.exc_info[0] is not None
