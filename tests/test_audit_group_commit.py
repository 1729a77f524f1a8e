"""Group commit of audit records: several requests' records in one transaction, each request
still learning whether its own record was written, numbering without gaps, on both backends."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi import Request

from engine.api.app import create_app
from engine.api.fast_read import FastRead
from engine.audit.group_commit import GroupCommitter
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.middleware import AuditMiddleware
from engine.audit.note import note
from engine.audit.segment import segment_path
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.repository.port import Store
from engine.settings import Settings
from tests.test_audit_log import event


def _hold_segment_lock(path: str, held: threading.Event, release: threading.Event) -> None:
    """Another writer (another ``--workers`` process) holding the segment's lock through its own
    open file: ``held`` once it has it, until ``release`` (closing the file releases the lock)."""
    other = os.open(segment_path(path), os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        held.set()
        release.wait(5)
    finally:
        os.close(other)


async def _until(done: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Return once ``done()`` holds, the loop serving meanwhile (its timers run). A state the test
    waits for is observed, not assumed after a fixed time: on two loaded cores a 2 ms timer or a
    worker thread can be late by far more than any sleep a test would take. ``timeout`` only stops
    a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.001)


def _waits_in_segment_lock(loop_thread: int) -> bool:
    """Whether a thread other than the loop's stands in ``Segment.acquire`` (waiting for the
    segment's ``flock``: a group's append sent to a worker thread)."""
    for ident, frame in sys._current_frames().items():
        if ident == loop_thread:
            continue
        while frame is not None:
            if frame.f_code.co_name == "acquire" and frame.f_code.co_filename.endswith(os.path.join("audit", "segment.py")):
                return True
            frame = frame.f_back
    return False


@pytest.fixture
def log(store: Store, backend_settings: Settings) -> AuditLog:
    s = backend_settings.with_(audit_checkpoint_every=8, audit_checkpoint_seconds=3600)
    return AuditLog(store, s, AuditKeys.load(s))


def test_record_many_appends_a_group_with_consecutive_numbers_and_due_checkpoints(log: AuditLog) -> None:
    log.record(event(0))
    results = log.record_many([event(i) for i in range(1, 12)])  # crosses size 8: a checkpoint is due
    assert [r.seq for r in results] == list(range(1, 12))
    assert log.size == 12
    assert [cp.size for cp in log.list_checkpoints()] == [12]
    stored = log.events()
    assert [e["id"] for e in stored] == [f"audit-{i}" for i in range(12)]
    assert stored[5]["entity"][0]["what"]["reference"] == "Patient/p0"
    assert verify_online(log).ok
    log.checkpoint()
    for leaf in (0, 7, 11):  # the group's nodes are the ones single appends would have written
        assert log.inclusion_proof(leaf, 12) and log.root_at(12) == log.root()


def test_a_record_that_cannot_be_canonicalised_fails_alone(log: AuditLog) -> None:
    bad = {**event(1), "extension": [{"valueDecimal": float("nan")}]}  # no JSON form at all
    results = log.record_many([event(0), bad, event(2)])
    assert [r.seq for r in (results[0], results[2])] == [0, 1]  # no gap where the bad one was
    assert isinstance(results[1], ValueError)
    assert log.size == 2 and verify_online(log).ok
    with pytest.raises(ValueError):
        log.record(bad)
    assert log.size == 2


def test_a_failed_group_transaction_writes_none_and_fails_every_waiter(store: Store,
                                                                         backend_settings: Settings) -> None:
    keys = AuditKeys.load(backend_settings)
    public_only = AuditKeys.from_public_pems(keys.name, [k.pem.encode() for k in keys.public.values()])
    log = AuditLog(store, backend_settings.with_(audit_checkpoint_every=2), public_only)
    committer = GroupCommitter(log)

    async def three() -> list[object]:
        return await asyncio.gather(*(committer.record(event(i)) for i in range(3)), return_exceptions=True)

    results = asyncio.run(three())
    assert all(isinstance(r, Exception) for r in results)  # the due checkpoint cannot be signed
    assert log.size == 0 and log.leaves.count() == 0 and log.nodes.count() == 0


def test_requests_finishing_together_share_one_commit(log: AuditLog) -> None:
    committer = GroupCommitter(log)

    async def burst() -> list[int]:
        return [a.seq for a in await asyncio.gather(*(committer.record(event(i)) for i in range(6)))]

    assert asyncio.run(burst()) == list(range(6))
    assert (committer.groups, committer.records) == (1, 6)
    assert asyncio.run(burst()) == list(range(6, 12))
    assert committer.groups == 2 and verify_online(log).ok


def test_a_busy_log_sends_the_group_to_a_worker_and_the_loop_keeps_queueing(settings: Settings) -> None:
    """The segment's lock held by another writer (its own open file, as another ``--workers``
    process holds it): the group waits in a worker thread, not on the event loop."""

    from engine.repository import open_store

    store = open_store(settings)  # SQLite: one connection guarded by a lock
    log = AuditLog(store, settings, AuditKeys.load(settings))
    committer = GroupCommitter(log)
    held, release = threading.Event(), threading.Event()

    async def scenario() -> list[int]:
        first = asyncio.ensure_future(committer.record(event(0)))
        await asyncio.sleep(0.05)  # the first group is waiting behind the batch in a worker
        assert not first.done() and log.size == 0
        later = [asyncio.ensure_future(committer.record(event(i))) for i in (1, 2, 3)]
        await asyncio.sleep(0.01)
        release.set()
        return [a.seq for a in await asyncio.gather(first, *later)]

    worker = threading.Thread(target=_hold_segment_lock, args=(store.path, held, release))
    worker.start()
    held.wait(5)
    try:
        assert asyncio.run(scenario()) == [0, 1, 2, 3]
    finally:
        release.set()
        worker.join()
    assert committer.groups == 2  # the three that arrived meanwhile went together
    assert verify_online(log).ok
    store.close()


def test_concurrent_requests_through_the_app_get_one_record_each(engine: Engine) -> None:
    app = create_app(engine)

    @app.get("/fhir/Observation/{oid}")
    async def read_obs(oid: str, request: Request) -> dict:
        await asyncio.sleep(0)
        obs = {"resourceType": "Observation", "id": oid, "subject": {"reference": f"Patient/p{oid}"}}
        note(request, action="read", resources=[obs])
        return obs

    app.router.routes.insert(0, app.router.routes.pop())  # the stand-in wins over the real /fhir router
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastRead]  # and over the fast path

    async def clients() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await asyncio.gather(*(c.get(f"/fhir/Observation/{i}") for i in range(24)))

    responses = asyncio.run(clients())
    assert [r.status_code for r in responses] == [200] * 24
    records = engine.audit.events()
    assert [r["id"] for r in records] == [f"audit-{i}" for i in range(24)]
    patients = sorted(r["entity"][0]["what"]["reference"] for r in records)
    assert patients == sorted(f"Patient/p{i}" for i in range(24))  # one record per request
    assert verify_online(engine.audit).ok


def test_a_lone_request_commits_one_loop_turn_later(settings: Settings) -> None:
    from engine.repository import open_store

    log = AuditLog(open_store(settings), settings, AuditKeys.load(settings))  # SQLite: appends on the loop
    committer = GroupCommitter(log)

    async def lone() -> int:
        task = asyncio.ensure_future(committer.record(event(0)))
        await asyncio.sleep(0)  # the task ran up to its await; the flush waits for the next turn
        assert log.size == 0 and not task.done()
        return (await task).seq

    assert asyncio.run(lone()) == 0
    assert (committer.groups, committer.records) == (1, 1)
    log.store.close()


def test_real_reads_that_never_await_still_share_a_commit(engine: Engine) -> None:
    """The read route runs to its response without awaiting, so a request cannot see the others in
    progress; they still share commits because the flush waits one loop turn."""
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "county hospital"})
    engine.repository.update({"resourceType": "Patient", "id": "p1"})
    engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                              "code": {"text": "Hb"}, "subject": {"reference": "Patient/p1"},
                              "effectiveDateTime": "2026-11-01", "performer": [{"reference": "Organization/org1"}]})
    headers = {"Authorization": "Bearer " + engine.auth.issue_system_token("t", "system/*.rs")}
    app = create_app(engine)

    async def clients() -> tuple[list[int], GroupCommitter]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            responses = await asyncio.gather(*(c.get("/fhir/Observation/o1", headers=headers) for _ in range(16)))
        stack = app.middleware_stack
        while not isinstance(stack, AuditMiddleware):
            stack = stack.app
        return [r.status_code for r in responses], stack._committer(engine.audit)

    before = engine.audit.size
    statuses, committer = asyncio.run(clients())
    assert statuses == [200] * 16 and engine.audit.size == before + 16
    assert committer.records == 16 and committer.groups < 16
    assert verify_online(engine.audit).ok


def test_requests_one_at_a_time_append_at_once_until_a_burst_groups_again(settings: Settings) -> None:
    """Lone mode: after LONE_AFTER groups of one in a row, a request alone appends its record at
    once (no loop turn); one request in PROBE_EVERY still goes through a group, and when others join
    it, grouping resumes. Every record is there once, in arrival order."""
    from engine.audit.group_commit import LONE_AFTER, PROBE_EVERY
    from engine.repository import open_store

    log = AuditLog(open_store(settings), settings, AuditKeys.load(settings))  # SQLite: appends on the loop
    committer = GroupCommitter(log)

    async def scenario() -> list[int]:
        seqs = [(await committer.record(event(i))).seq for i in range(LONE_AFTER)]  # each a group of one
        assert committer.inline == 0 and committer.groups == LONE_AFTER
        task = asyncio.ensure_future(committer.record(event(LONE_AFTER)))
        await asyncio.sleep(0)  # the task ran once: its record is appended, no turn waited
        assert task.done() and log.size == LONE_AFTER + 1 and committer.inline == 1
        seqs.append(task.result().seq)
        burst = PROBE_EVERY + 8  # the probe comes inside it: the requests after it join its group
        seqs += [a.seq for a in await asyncio.gather(*(committer.record(event(i)) for i in range(burst)))]
        assert committer.inline == PROBE_EVERY - 1 and not committer._lone
        groups = committer.groups
        seqs += [a.seq for a in await asyncio.gather(*(committer.record(event(i)) for i in range(5)))]
        assert committer.groups == groups + 1  # grouping again
        return seqs

    seqs = asyncio.run(scenario())
    assert seqs == list(range(len(seqs))) and log.size == len(seqs) == committer.records
    assert [e["id"] for e in log.events()] == [f"audit-{i}" for i in range(len(seqs))]
    assert verify_online(log).ok
    log.store.close()


def test_a_lone_request_on_a_busy_log_waits_in_a_worker_like_a_group(settings: Settings) -> None:
    """In lone mode the loop's appends keep the segment's lock a few milliseconds: another process
    asking for it gets it when the let-go timer armed by the appends fires, and a lone request
    meanwhile sends its record to a worker thread (as a group), not onto the event loop."""
    from engine.audit.group_commit import LONE_AFTER
    from engine.repository import open_store

    store = open_store(settings)
    log = AuditLog(store, settings, AuditKeys.load(settings))
    committer = GroupCommitter(log)
    held, release = threading.Event(), threading.Event()

    async def scenario() -> int:
        for i in range(LONE_AFTER):
            await committer.record(event(i))
        assert log.segment_kept and committer._let_go is not None  # kept past the appends, its let-go armed
        worker = threading.Thread(target=_hold_segment_lock, args=(store.path, held, release))
        worker.start()
        await _until(held.is_set, "the other writer got the lock")  # the loop lets go of it meanwhile
        assert not log.segment_kept and committer._let_go is None  # let go by that timer
        try:
            task = asyncio.ensure_future(committer.record(event(LONE_AFTER)))
            loop_thread = threading.get_ident()
            await _until(lambda: _waits_in_segment_lock(loop_thread), "a worker thread waits for the lock")
            assert not task.done() and log.size == LONE_AFTER  # waiting in a worker, the loop free
        finally:
            release.set()
        seq = (await task).seq
        worker.join()
        return seq

    assert asyncio.run(scenario()) == LONE_AFTER
    assert committer.inline == 0 and verify_online(log).ok
    store.close()


def test_a_second_log_on_the_same_file_takes_the_lock_a_stopped_loop_kept(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log whose loop has stopped with the segment's lock kept (its timer never fires) does not
    make a second log of the same process, on the same files, wait for ever: the second asks it to
    let go before waiting; every record of both is there once."""
    from engine.audit import group_commit
    from engine.repository import open_store

    monkeypatch.setattr(group_commit, "KEEP_SECONDS", 3600.0)  # the loop surely ends before its timer
    first = AuditLog(open_store(settings), settings, AuditKeys.load(settings))
    committer = GroupCommitter(first)

    async def some() -> None:
        for i in range(3):
            await committer.record(event(i))

    asyncio.run(some())  # the loop ends with the lock kept, its let-go timer never run
    assert first.segment_kept
    second = AuditLog(open_store(settings), settings, AuditKeys.load(settings))  # waits for the lock
    assert not first.segment_kept
    second.record(event(3))
    first.record(event(4))  # numbered after the other's record: the sync took it in
    assert [e["id"] for e in second.events()] == [f"audit-{i}" for i in range(5)]
    assert verify_online(second).ok
    first.store.close()
    second.store.close()


def test_a_kept_lock_is_let_go_before_the_log_waits_for_its_database(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the log's database while it waits for the segment's lock (its drain
    takes them in that order) gets the lock the loop kept as soon as this process waits for the
    database (a checkpoint): neither waits for the other for ever."""
    import fcntl
    import os
    import sqlite3

    from engine.audit import group_commit
    from engine.audit.segment import segment_path
    from engine.repository import open_store

    monkeypatch.setattr(group_commit, "KEEP_SECONDS", 3600.0)  # no timer comes to the rescue
    store = open_store(settings)
    log = AuditLog(store, settings, AuditKeys.load(settings))
    committer = GroupCommitter(log)

    async def some() -> None:
        for i in range(3):
            await committer.record(event(i))

    asyncio.run(some())
    assert log.segment_kept
    got_db, got_segment = threading.Event(), threading.Event()

    def other_process_drain() -> None:
        conn = sqlite3.connect(store.path, isolation_level=None, timeout=10)
        fd = os.open(segment_path(store.path), os.O_RDWR)
        try:
            conn.execute("BEGIN IMMEDIATE")
            got_db.set()
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the kept lock
            got_segment.set()
            conn.execute("ROLLBACK")
        finally:
            os.close(fd)
            conn.close()

    worker = threading.Thread(target=other_process_drain)
    worker.start()
    assert got_db.wait(5)
    cp = log.checkpoint(force=True)  # waits for the database: lets go of the segment's lock first
    worker.join(10)
    assert got_segment.is_set() and cp is not None and cp.size == 3
    assert verify_online(log).ok
    store.close()


def test_an_append_that_raises_after_keeping_the_lock_still_lets_it_go(settings: Settings) -> None:
    """A hook run after the record was written raises (the append kept the segment's lock first):
    the request learns of the error, and the let-go timer is armed all the same, so another process
    asking for the lock gets it when that timer fires instead of waiting for the next append."""
    from engine.audit.segment import segment_path
    from engine.repository import open_store

    store = open_store(settings)
    log = AuditLog(store, settings, AuditKeys.load(settings))
    committer = GroupCommitter(log)

    def broken(_appended: object) -> None:
        raise RuntimeError("hook failed")

    async def scenario() -> bool:
        await committer.record(event(0))
        await _until(lambda: committer._let_go is None, "the first let-go fired")
        assert not log.segment_kept and committer._let_go is None  # its let-go came: nothing kept
        log.after_append.append(broken)
        with pytest.raises(RuntimeError, match="hook failed"):
            await committer.record(event(1))
        assert log.segment_kept and committer._let_go is not None  # kept, and its let-go is coming
        other = os.open(segment_path(store.path), os.O_RDWR)

        def got_it() -> bool:  # another process's try for the lock, the loop free meanwhile
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            await _until(got_it, "another process got the lock")
            fcntl.flock(other, fcntl.LOCK_UN)
            return not log.segment_kept and committer._let_go is None  # let go by the armed timer
        finally:
            os.close(other)

    assert asyncio.run(scenario())
    log.after_append.remove(broken)
    assert [e["id"] for e in log.events()] == ["audit-0", "audit-1"]  # written before the hook ran
    store.close()
