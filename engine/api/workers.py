"""``huren serve --workers N``: N server processes sharing one listening socket.

Why processes: a FHIR read is CPU-bound Python (routing, access checks, the audit record), and one
process runs one core's worth of it. SQLite in WAL mode lets readers in several processes run
alongside one writer, and the parts that are shared across processes already coordinate through
the database: audit appends claim their sequence number by a unique key and retry on a lost race
(``engine.audit.log``), the per-patient audit views record their progress in the same transaction
as the views (no view is written twice), and ingest group-commits per process.

The parent binds the socket once and forks the workers; each opens its own ``Engine`` after the
fork (an SQLite connection must never cross a fork) and serves the inherited socket with uvicorn,
so the kernel spreads connections over the workers. Only the first worker runs the MLLP listener:
an HL7 sender holds one long connection, and its message order must stay in one process. The
parent only waits: SIGTERM or SIGINT is passed to every worker, and a worker that dies takes the
others down with it (a supervisor restarts the service as a whole, no half-served port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from engine.settings import Settings

log = logging.getLogger("huren.workers")

ServeFn = Callable[..., Awaitable[None]]  # serve(engine, *, mllp: bool, sockets: list[socket.socket])


def bind(settings: Settings) -> socket.socket:
    """The listening socket every worker accepts on (bound before the fork, so all share it)."""
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on connections whose
    # socket says it is TCP, and a response written as head + body otherwise waits ~40 ms for the
    # client's delayed ACK (measured: 45 ms per keep-alive read instead of <1 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((settings.http_host, settings.http_port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_workers(settings: Settings, workers: int, serve: ServeFn, *, mllp: bool,
                open_engine: Callable[[Settings], Any]) -> int:
    """Fork ``workers`` processes serving one socket; returns the exit status once all have ended."""
    sock = bind(settings)
    children: dict[int, int] = {}  # pid -> worker number
    for number in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            # uvicorn re-raises SIGTERM/SIGINT once it has shut down; ending by SystemExit rather
            # than by the signal lets the engine close (final audit checkpoint, views flushed)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _exit_cleanly)
            try:
                with open_engine(settings) as engine:
                    asyncio.run(serve(engine, mllp=mllp and number == 0, sockets=[sock]))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:  # report, and exit without running the parent's cleanup
                traceback.print_exc(file=sys.stderr)
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        children[pid] = number
    sock.close()
    log.info("serving http://%s:%d with %d workers (pids %s)", settings.http_host, settings.http_port,
             workers, ", ".join(map(str, children)))

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        while children:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            number = children.pop(pid, None)
            code = os.waitstatus_to_exitcode(wait_status)
            if code != 0 and not (stopping and code in (-signal.SIGTERM, -signal.SIGINT)):
                status = 1
                log.error("worker %s (pid %d) ended with %d; stopping the others", number, pid, code)
                stop(signal.SIGTERM, None)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return status
