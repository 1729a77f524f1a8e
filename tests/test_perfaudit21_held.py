"""No response starts before its audit record is in the log, when many requests finish together and
their records go in groups (the group's future awaited in the middleware's send), for a whole
response, a streamed one, and one the app completed before it failed (it still goes out). Called over
raw ASGI as uvicorn calls the app, with the real middleware stack, log and store; the log verifies.
(A guard for the read path's changes: sending the start before awaiting the group fails it.)"""

from __future__ import annotations

import asyncio

import orjson
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, StreamingResponse

from engine.api.app import create_app
from engine.api.fast_read import FastRead
from engine.audit.note import note
from engine.audit.verify import verify_online
from engine.engine import Engine


class _Caller:
    def __init__(self, subject: str, kind: str) -> None:
        self.subject, self.kind = subject, kind


def _boom() -> None:
    raise RuntimeError("after the response")


def _app(engine: Engine):  # noqa: ANN202
    app = create_app(engine)

    @app.get("/fhir/Observation/{oid}")
    async def read_obs(oid: str, request: Request) -> dict:
        request.state.caller = _Caller("his-a", "system")
        obs = {"resourceType": "Observation", "id": oid, "subject": {"reference": "Patient/p1"}}
        note(request, action="read", resources=[obs])
        return obs

    @app.get("/fhir/Binary/{bid}")
    async def streamed(bid: str, request: Request) -> StreamingResponse:
        request.state.caller = _Caller("his-a", "system")
        note(request, action="read", resources=[{"resourceType": "Binary", "id": bid}])

        async def parts():  # noqa: ANN202
            for i in range(3):
                await asyncio.sleep(0)
                yield f"part{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/fhir/Basic/{bid}")
    async def then_fails(bid: str, request: Request) -> JSONResponse:
        request.state.caller = _Caller("his-a", "system")
        note(request, action="read", resources=[{"resourceType": "Basic", "id": bid}])
        return JSONResponse({"id": bid}, background=BackgroundTask(_boom))

    stand_ins = app.router.routes[-3:]
    del app.router.routes[-3:]
    app.router.routes[0:0] = stand_ins
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastRead]
    return app


def _scope(path: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000), "scheme": "http", "method": "GET",
            "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": [(b"host", b"t")], "state": {}}


def test_no_response_leaves_before_its_record(engine: Engine) -> None:
    app = _app(engine)
    starts: list[tuple[int, int]] = []  # (records in the log when a response started, responses started)
    bodies: dict[str, bytes] = {}
    failures: list[str] = []

    async def one(path: str) -> None:
        asked = [False]

        async def receive() -> dict:  # the request, then nothing until the client goes (it stays)
            if asked[0]:
                await asyncio.Event().wait()
            asked[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                starts.append((engine.audit.size, len(starts) + 1))
                bodies[path] = b""  # (this round's)
                assert message["status"] == 200, message
            else:
                bodies[path] = bodies.get(path, b"") + message.get("body", b"")

        try:
            await app(_scope(path), receive, send)
        except RuntimeError as exc:
            failures.append(f"{path}: {exc}")

    paths = [f"/fhir/Observation/o{i}" for i in range(40)] + [f"/fhir/Binary/b{i}" for i in range(8)] + \
        [f"/fhir/Basic/x{i}" for i in range(4)]

    async def main() -> None:
        for _ in range(3):  # several rounds of everyone at once: groups, then (maybe) lone mode
            await asyncio.gather(*(one(p) for p in paths))

    asyncio.run(main())
    n = 3 * len(paths)
    assert len(starts) == n
    # each response started with at least as many records written as responses started so far,
    # its own among them
    assert all(size >= k for size, k in starts), [s for s in starts if s[0] < s[1]][:5]
    assert engine.audit.size == n
    assert bodies["/fhir/Binary/b3"] == b"part0;part1;part2;"
    assert orjson.loads(bodies["/fhir/Observation/o7"])["id"] == "o7"
    assert orjson.loads(bodies["/fhir/Basic/x1"]) == {"id": "x1"}  # sent, though the app failed after it
    assert len(failures) == 3 * 4 and all("after the response" in f for f in failures)
    report = verify_online(engine.audit)
    assert report.ok, report
