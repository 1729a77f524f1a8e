"""The waiters of a group of audit records (twelfth round, written while measuring one future per
group): a request cancelled while its group is written (its client went away) neither cancels the
others nor loses its record, and a record that cannot be made fails alone, its group written.
Whatever shape the waiting takes (a future per request, as now, or one per group, measured and not
taken), these hold. Real logs (SQLite) and the real app over ASGI, as uvicorn calls it."""

from __future__ import annotations

import asyncio

import pytest

from engine.api.app import create_app
from engine.audit.group_commit import GroupCommitter
from engine.audit.keys import AuditKeys
from engine.audit.log import Appended, AuditLog
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.repository import open_store
from engine.settings import Settings
from tests.test_audit_log import event


@pytest.fixture
def log(settings: Settings) -> AuditLog:
    s = settings.with_(audit_checkpoint_seconds=3600)
    log = AuditLog(open_store(s), s, AuditKeys.load(s))
    yield log
    log.store.close()


def test_a_cancelled_waiter_neither_cancels_its_group_nor_loses_its_record(log: AuditLog) -> None:
    committer = GroupCommitter(log)

    async def three() -> list[object]:
        tasks = [asyncio.ensure_future(committer.record(event(i))) for i in range(3)]
        await asyncio.sleep(0)  # each task ran up to its await; the group is flushed a turn later
        assert log.size == 0
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, cancelled, third = asyncio.run(three())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert type(first) is Appended and type(third) is Appended and (first.seq, third.seq) == (0, 2)
    assert (committer.groups, committer.records) == (1, 3)
    assert log.size == 3 and [e["id"] for e in log.events()] == ["audit-0", "audit-1", "audit-2"]
    assert verify_online(log).ok


def test_a_record_that_cannot_be_made_fails_alone_in_its_group(log: AuditLog) -> None:
    committer = GroupCommitter(log)
    bad = {**event(1), "extension": [{"valueDecimal": float("nan")}]}  # no JSON form at all

    async def group() -> list[object]:
        return await asyncio.gather(committer.record(event(0)), committer.record(bad), committer.record(event(2)),
                                    return_exceptions=True)

    first, failed, third = asyncio.run(group())
    assert isinstance(failed, ValueError)
    assert (first.seq, third.seq) == (0, 1) and committer.groups == 1  # one group, no gap where it was
    assert log.size == 2 and verify_online(log).ok


def test_reads_whose_client_went_away_mid_group_leave_the_others_answered(engine: Engine) -> None:
    """Real reads through the app (raw ASGI, as uvicorn calls it): one of four concurrent requests
    is cancelled while its group is being written; the other three are answered 200 and all four
    records stand (the cancelled one was recorded before its response could leave)."""
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "county hospital"})
    engine.repository.update({"resourceType": "Patient", "id": "p1"})
    engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"},
                              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                              "performer": [{"reference": "Organization/org1"}]})
    token = engine.auth.issue_system_token("t", "system/*.rs")
    app = create_app(engine)

    async def read(statuses: list[int]) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000), "root_path": "",
                 "path": "/fhir/Observation/o1", "raw_path": b"/fhir/Observation/o1", "query_string": b"",
                 "headers": [(b"host", b"t"), (b"authorization", f"Bearer {token}".encode())]}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    async def four() -> tuple[list[list[int]], list[object]]:
        statuses: list[list[int]] = [[] for _ in range(4)]
        await read([])  # the app's start-up work out of the way: the four below run as one group
        before = engine.audit.size
        tasks = [asyncio.ensure_future(read(s)) for s in statuses]
        await asyncio.sleep(0)  # each ran up to its group's await
        assert engine.audit.size == before
        tasks[2].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert engine.audit.size == before + 4
        return statuses, results

    statuses, results = asyncio.run(four())
    assert statuses == [[200], [200], [], [200]]  # the cancelled request's response never left
    assert isinstance(results[2], asyncio.CancelledError) and results[:2] + results[3:] == [None] * 3
    assert verify_online(engine.audit).ok
