"""A request's record is on file before its response starts (sixteenth round, written while
measuring appends made at once instead of in groups, and kept: it holds whatever way the record
travels). Requests one at a time go through groups of one, then lone mode (appended at once, the
segment's lock kept between them); at each response start the segment file, read through a file of
its own, already holds the request's record, and checkpoints due every 5 records still come. Real
log on SQLite, the real middleware called as uvicorn calls it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from starlette.datastructures import State

from engine.audit.group_commit import LONE_AFTER, GroupCommitter
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.middleware import AuditMiddleware
from engine.audit.note import note
from engine.audit.segment import HEADER, decode, segment_path
from engine.audit.verify import verify_online
from engine.repository import open_store
from engine.settings import Settings


def _segment_seqs(database: Path) -> list[int]:
    """The sequence numbers of the records in the segment file, read through a file of its own."""
    with open(segment_path(database), "rb") as f:
        return [row[0] for row in decode(f.read()[HEADER.size:])[0]]


def test_each_record_is_on_file_before_its_response_starts_and_checkpoints_still_come(settings: Settings) -> None:
    """The real middleware on the real log, called as uvicorn calls it, one request at a time (lone
    mode: the lock kept between them), a checkpoint due every 5 records."""
    s = settings.with_(audit_checkpoint_every=5, audit_checkpoint_seconds=3600)
    log = AuditLog(open_store(s), s, AuditKeys.load(s))
    caller = SimpleNamespace(kind="system", subject="his-a", client_id="his-a")
    seen: list[tuple[int, bool]] = []  # per answer: the log's size, and its last record on file

    async def read(scope: dict, receive: object, send: object) -> None:  # a FHIR read, as the route notes it
        scope["state"]["caller"] = caller
        note(SimpleNamespace(scope=scope), action="read", resources=["Observation/o1/_history/1"],  # type: ignore[arg-type]
             owners={"Observation/o1/_history/1": ["p1"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    audited = AuditMiddleware(read)
    owner = SimpleNamespace(state=State({"engine": SimpleNamespace(audit=log)}))  # Starlette's State, as an app has

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            on_file = _segment_seqs(log.store.path)  # (empty: a checkpoint moved them on)
            seen.append((log.size, not on_file or on_file[-1] == log.size - 1))

    async def reads() -> GroupCommitter:
        for _ in range(LONE_AFTER + 24):
            await audited({"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
                           "client": ("10.0.0.9", 5000), "app": owner, "state": {}}, receive, send)
        return next(iter(audited._committers.values()))

    committer = asyncio.run(reads())
    n = LONE_AFTER + 24
    assert committer.inline >= 16  # most of them appended at once (lone mode), the rest in groups
    assert all(on_file for _, on_file in seen)  # every answer left after its own record was on file
    assert [size for size, _ in seen] == list(range(1, n + 1))
    assert [cp.size for cp in log.list_checkpoints()] == list(range(5, n + 1, 5))  # due checkpoints signed
    assert [e["id"] for e in log.events()] == [f"audit-{i}" for i in range(n)]
    assert all(e["entity"][0]["what"]["reference"] == "Patient/p1" for e in log.events())
    assert verify_online(log).ok
    log.store.close()
