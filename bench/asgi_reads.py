"""Audited and plain FHIR reads of the real app in process, called over raw ASGI as uvicorn calls it,
on uvloop: the event loop's thread CPU per read, and a timed part callgrind can count alone.

    python bench/asgi_reads.py audited 20000 8      # or: plain; reads; concurrent callers

With ``CALLGRIND=1`` the timed reads run inside ``sys.call_tracing`` (used nowhere else), so
callgrind collects them alone, repeatably under any load (the user-space instructions of each
thread; thread 1 is the loop's):

    CALLGRIND=1 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing python bench/asgi_reads.py audited 2000 8

(twelfth round: 2,000 reads, 8 callers, 419.6 k instructions an audited read against 305.0 k plain.)

Under valgrind the code runs ~50x slower, so the segment's lock, kept 2 ms past the loop's appends
(``group_commit.KEEP_SECONDS``), would lapse after every request or two and each next group pay the
lock and the sync it spares a real server; with ``CALLGRIND=1`` it is kept 0.5 s (sixteenth round:
the round's start counts 413.2 k either way at 8 callers, but a change that appends at once while the
lock is kept is counted as it would run only so), or ``KEEP_SECONDS`` (``KEEP_SECONDS=0.1``: about a
real server's 2 ms cadence at valgrind's speed; nineteenth round).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# ``RESIDENT=1`` (forty-second round): a resident's token reads, her compartment looked up each request.
# ``READ_PATH`` (thirty-fifth round): another request than the fast read, e.g. a search through the router
# (``/fhir/Observation?subject=Patient/p1``): what ``bench/attr35_misses.py`` probes beside the read
PATH, _, QUERY = os.environ.get("READ_PATH", "/fhir/Observation/o1").encode().partition(b"?")


def main() -> None:
    import uvloop
    from http_reads import _app, seed

    from engine.audit.middleware import AuditMiddleware
    from engine.engine import Engine
    from engine.settings import Settings

    audited, n, clients = sys.argv[1] == "audited", int(sys.argv[2]), int(sys.argv[3])
    if os.environ.get("CALLGRIND"):
        from engine.audit import group_commit

        group_commit.KEEP_SECONDS = float(os.environ.get("KEEP_SECONDS", "0.5"))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        token = seed(data_dir, os.environ.get("RESIDENT", "0") not in ("", "0"))  # (``RESIDENT=1``: her token, see http_reads)
        engine = Engine(Settings(data_dir=data_dir))
        app = _app(engine, audited)
        headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode()),
                   (b"accept", b"application/fhir+json")]

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def one() -> None:
            scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                     "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000), "scheme": "http",
                     "method": "GET", "root_path": "", "path": PATH.decode(), "raw_path": PATH, "query_string": QUERY,
                     "headers": headers, "state": {}}
            statuses: list[int] = []

            async def send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)
            if statuses != [200]:
                raise SystemExit(f"unexpected statuses {statuses}")

        async def caller(k: int) -> None:
            for _ in range(k):
                await one()

        async def warm() -> None:
            await caller(300)
            await asyncio.gather(*(caller(200) for _ in range(clients)))

        async def timed() -> None:
            await asyncio.gather(*(caller(n // clients) for _ in range(clients)))

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(warm())
        wall, cpu = time.perf_counter(), time.thread_time()
        if os.environ.get("CALLGRIND"):
            sys.call_tracing(loop.run_until_complete, (timed(),))
        else:
            loop.run_until_complete(timed())
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        layer = app.middleware_stack
        while layer is not None and not isinstance(layer, AuditMiddleware):
            layer = getattr(layer, "app", None)
        groups = ""
        if layer is not None:
            for committer in layer._committers.values():
                groups = (f"; {committer.records} records in {committer.groups} groups "
                          f"({committer.inline} of them appended at once)")
        done = n // clients * clients
        print(f"{'audited' if audited else 'plain'} GET {PATH.decode()} over ASGI in process, {clients} callers: "
              f"{cpu / done * 1e6:.1f} µs CPU of the loop's thread a read, {wall / done * 1e6:.1f} µs wall{groups}")
        loop.close()
        engine.close()


if __name__ == "__main__":
    main()
