"""Group commit of audit records on the event loop: requests that finish together share one write
(on SQLite one ``write()`` to the log's segment file, on MongoDB one insert).

Every audited request must have its record written before its response leaves, and each write
has a cost of its own (locks, the sync with other workers, the system call; a transaction on
MongoDB) besides its records'. Databases amortise exactly this with *group commit*: whoever
arrives while a commit is being prepared or is in flight joins the next one. Here each request
puts its event in the queue and awaits its own future; one flush per event-loop turn takes
everything queued and writes it with ``AuditLog.record_many`` (consecutive sequence numbers, one
write), then resolves
every future — with the ``Appended`` record, or with the exception that kept it out, which the
middleware turns into a 500. The flush always waits one loop turn, so the requests whose bytes
arrived together (they run in that turn) join the group; under load the commit is also shared by
the requests that finished while the previous flush ran in a worker thread.

The flush runs on the loop itself when the log is free (no thread hop: cheaper than the append
for SQLite); when the log is busy (a drain, another worker's write, an ingest batch's records) or
the store has no local lock (MongoDB), it runs in a worker thread and the loop keeps serving — requests finishing
meanwhile queue up for the next group. At most one flush is in flight, which keeps the records in
arrival order and lets the groups grow under load.

**Lone requests.** When requests come one at a time (one connection, a quiet server), every group
is one record, and the loop turn buys nothing: the request still pays the future, its task's
suspension and two more turns of the loop. After ``LONE_AFTER`` groups of one in a row the
committer appends a request's record at once, on the loop, when nothing is queued or in flight
(so the order of the records stays their arrival order); every ``PROBE_EVERY``-th such request goes
through a group anyway, and a group that then gathers more than one record (the requests arrive
together again) ends lone mode. Why not always at once: a route that never awaits runs to its
response before the next request's task starts, so with 8 connections every group would be one
record, each paying the group's fixed cost (lock, sync, ``write()``): measured over HTTP +25-35 µs
of server CPU a read at 8 connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.concurrency import run_in_threadpool

from engine.audit.log import Appended, AuditLog

KEEP_SECONDS = 0.002  # how long the segment's lock is kept past an append on the loop (Segment.keep)
LONE_AFTER = 8  # groups of one record in a row before lone requests are appended at once
PROBE_EVERY = 32  # in lone mode, one request in this many goes through a group: are others arriving?


class GroupCommitter:
    """Batches ``AuditLog`` appends from the coroutines of one event loop."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it serves (set at first record)
        self._queue: list[tuple[dict[str, Any], asyncio.Future[Appended]]] = []
        self._scheduled = False
        self._busy = False  # a flush is running in a worker thread
        self.groups = 0  # flushes done and records written through them (for the benchmark)
        self.records = 0
        self.inline = 0  # of which appended at once, without a group (lone mode)
        self._singles = 0  # groups of one record in a row
        self._lone = False  # lone mode: a request alone appends its record at once
        self._probe = 0  # lone requests since the last one sent through a group
        self._let_go: asyncio.TimerHandle | None = None  # lets go of the segment's lock kept by appends

    async def record(self, event: dict[str, Any]) -> Appended:
        """Append ``event`` with the next group (in lone mode, when nothing else is queued or in
        flight, at once); returns once it is written, raises if it was not."""
        pending = self.submit(event)
        return pending if type(pending) is Appended else await pending  # type: ignore[misc]

    def submit(self, event: Any, loop: asyncio.AbstractEventLoop | None = None) -> Appended | asyncio.Future[Appended]:
        """``record`` without a coroutine of its own: the record appended at once (lone mode), or
        the future its group will settle, which the caller awaits (the audit middleware, once per
        request: a coroutine frame less than awaiting ``record``). Raises what kept a record
        appended at once out. ``loop``: the running loop, when the caller knows it (the middleware:
        ``asyncio.get_running_loop`` is a ``getpid()`` system call on Python 3.11, two a request
        when asked here and there)."""
        if loop is None:
            loop = asyncio.get_running_loop()
        if self._lone and not self._queue and not self._scheduled and not self._busy:
            self._probe += 1
            if self._probe < PROBE_EVERY:
                try:
                    results = self.log.try_record_many([event], keep=True)
                finally:  # (also when it raised after keeping the lock: the timer must still come)
                    if self._let_go is None:  # (``_arm_let_go``'s test, its call spared while a let-go is due)
                        self._arm_let_go(loop)
                if results is not None:  # (None: the log is busy; the group's worker thread waits)
                    self.groups += 1
                    self.records += 1
                    self.inline += 1
                    result = results[0]
                    if isinstance(result, Exception):
                        raise result
                    return result
            else:
                self._probe = 0
        self.loop = loop
        future: asyncio.Future[Appended] = loop.create_future()
        self._queue.append((event, future))
        if not self._scheduled and not self._busy:
            # always one loop turn later: a route that never awaits runs to its response before the
            # next request's task even starts, so "no other request in progress" cannot be seen from
            # here, and committing at once made every group one record (measured: 1.0 records per
            # commit with 8 connections). The turn costs a few µs; the requests whose bytes arrived
            # with this one run meanwhile and join the group.
            self._scheduled = True
            loop.call_soon(self._flush, loop)
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """The group: on the loop ``loop`` (the one it was scheduled on, so not asked again)."""
        self._scheduled = False
        batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            results = self.log.try_record_many([event for event, _ in batch], keep=True)
        except Exception as exc:  # the transaction failed: none of these records was written
            self._settle(batch, exc)
            return
        finally:  # (also when it raised after keeping the lock: the timer must still come)
            self._arm_let_go(loop)
        if results is None:  # store busy or remote: wait in a worker thread, not on the loop
            self._busy = True
            loop.create_task(self._flush_in_thread(batch))
            return
        self._deliver(batch, results)

    async def _flush_in_thread(self, batch: list[tuple[dict[str, Any], asyncio.Future[Appended]]]) -> None:
        try:
            results = await run_in_threadpool(self.log.record_many, [event for event, _ in batch])
        except Exception as exc:
            self._settle(batch, exc)
        else:
            self._deliver(batch, results)
        finally:
            self._busy = False
            if self._queue and not self._scheduled:  # the next group gathered meanwhile
                self._scheduled = True
                loop = asyncio.get_running_loop()
                loop.call_soon(self._flush, loop)

    def _arm_let_go(self, loop: asyncio.AbstractEventLoop) -> None:
        """After an append from the loop ``loop``: if it left the segment's lock kept and no let-go
        is pending, schedule one (whether the append returned or raised after keeping it)."""
        if self._let_go is None and self.log.segment_kept:
            self._keep_briefly(loop)

    def _keep_briefly(self, loop: asyncio.AbstractEventLoop) -> None:
        """The appends keep the segment's lock (``AuditLog.try_record_many(keep=True)``): let go of
        it ``KEEP_SECONDS`` from now (later if the log is busy then), so another process (a second
        worker, ``huren audit``) waits at most about that long."""
        def let_go() -> None:
            self._let_go = None
            if not self.log.let_go_segment():
                self._let_go = loop.call_later(KEEP_SECONDS, let_go)

        self._let_go = loop.call_later(KEEP_SECONDS, let_go)

    def _deliver(self, batch: list[tuple[dict[str, Any], asyncio.Future[Appended]]],
                 results: list[Appended | Exception]) -> None:
        self.groups += 1
        self.records += len(batch)
        if len(batch) == 1:
            self._singles += 1
            self._lone = self._lone or self._singles >= LONE_AFTER
        else:
            self._singles = 0
            self._lone = False
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the request was cancelled (client went away); its record stands
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    @staticmethod
    def _settle(batch: list[tuple[dict[str, Any], asyncio.Future[Appended]]], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
