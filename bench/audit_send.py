"""The audit middleware's own cost a request, counted without the read: ``AuditMiddleware`` around a
stand-in app (it notes one Observation read, as the router does, then sends a start and a body), the
real engine's audit log under it, serial requests on uvloop (lone mode, as one caller). Thirty-third
round (perf33): what the record, the append and the middleware's ``send`` cost, apart from the
read's own SQLite, JSON and framework work, so a change to them is counted to ~0.1 k.

    CALLGRIND=1 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/shm/as.out \\
        python bench/audit_send.py 1000
    (then the ``summary:`` line of /dev/shm/as.out-01, divided by 1000)

Without ``CALLGRIND`` it prints the loop thread's CPU a request. Comparing two trees: run each tree's
copy of this file side by side, both byte-compiled first (``python -m compileall engine``: with
``PYTHONDONTWRITEBYTECODE`` set, a module imported lazily inside the counted part is compiled there).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import uvloop

    from engine.audit import group_commit
    from engine.audit.middleware import AuditMiddleware
    from engine.audit.note import AuditNote
    from engine.auth.caller import Caller
    from engine.engine import Engine
    from engine.settings import Settings

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    if os.environ.get("CALLGRIND"):
        group_commit.KEEP_SECONDS = 0.5  # (valgrind's pace: see bench/asgi_reads.py)
    caller = Caller(subject="bench", kind="system", scopes=("system/*.read",), client_id="bench")
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(data_dir=Path(tmp) / "data"))

        class App:  # what the middleware asks of ``scope["app"]``: the engine, on its state
            class state:  # noqa: N801
                pass

        App.state.engine = engine  # type: ignore[attr-defined]

        async def stand_in(scope: Any, receive: Any, send: Any) -> None:
            scope["state"]["caller"] = caller
            scope["state"]["audit_notes"].append(AuditNote(
                "read", ["Observation/o1"], ["p1"], "0", None, None, {"Observation/o1": ["p1"]}))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        app = AuditMiddleware(stand_in)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            return None

        async def requests(k: int) -> None:
            for _ in range(k):
                scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "headers": [],
                         "client": ("127.0.0.1", 1), "state": {"audit_notes": []}, "app": App, "query_string": b""}
                await app(scope, receive, send)

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(requests(300))  # warm: lone mode reached, caches filled
        cpu = time.thread_time()
        if os.environ.get("CALLGRIND"):
            sys.call_tracing(loop.run_until_complete, (requests(n),))
        else:
            loop.run_until_complete(requests(n))
        cpu = time.thread_time() - cpu
        print(f"audit middleware around a stand-in app, {n} serial requests: {cpu / n * 1e6:.1f} µs CPU of the "
              "loop's thread a request")
        loop.close()
        engine.close()


if __name__ == "__main__":
    main()
