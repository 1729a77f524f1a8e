"""A real huren HTTP server in a process of its own, for the audit tests that kill or wait on one.

Two tests (``test_audit12_checkpoints``: the seal within seconds; ``test_audit_segment``: kill -9
mid-stream) each wrote the same dozen lines: a free port, ``uvicorn.run`` of the app in a child
process, a wait until it accepts connections, the process ended afterwards. One helper now; the
server reads its settings from the environment as a deployed one does (``Settings.from_env``), the
caller's ``HUREN_*`` variables left out so only the data directory and the ports are set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60  # how long a server may take to accept connections


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(data_dir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A uvicorn server process on the app of an ``Engine`` over ``data_dir``, accepting
    connections on the port yielded with the process; ended (SIGTERM) at the block's end if the
    caller did not end it (a test may kill it with SIGKILL inside)."""
    port = free_port()
    server = ("import uvicorn\nfrom engine.engine import Engine\n"
              "from engine.api.app import create_app\nfrom engine.settings import Settings\n"
              f"uvicorn.run(create_app(Engine(Settings.from_env())), host='127.0.0.1', port={port}, "
              "log_level='warning')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUREN_")}
    proc = subprocess.Popen([sys.executable, "-c", server], cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(data_dir),
                                 "HUREN_MLLP_PORT": "0", "HUREN_HTTP_PORT": "0"})
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
                time.sleep(0.1)  # (polling a port that is not open yet: nothing to observe instead)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
