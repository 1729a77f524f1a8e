"""``huren serve``: uvicorn and the MLLP listener in one real process; recovery and --replay at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import frame
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.test_ingest_durability import adt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"huren serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"port {port} not listening")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop ``huren serve`` as an operator would (SIGTERM); a process that hangs fails the test."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.slow
def test_serve_runs_http_and_mllp_in_one_process(settings: Settings, tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_bytes(adt("SV1") + adt("SV2", facility="NOSUCH"))
    http_port, mllp_port = free_port(), free_port()
    env = os.environ | {"HUREN_DATA_DIR": str(settings.data_dir), "HUREN_HTTP_PORT": str(http_port),
                        "HUREN_MLLP_PORT": str(mllp_port)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--replay", str(feed)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(mllp_port, proc)
        wait_for_port(http_port, proc)
        with socket.create_connection(("127.0.0.1", mllp_port), timeout=10) as s:
            s.sendall(frame(adt("SV3")))
            data = b""
            while not data.endswith(b"\x1c\r"):
                data += s.recv(65536)
        assert ack_code_of(data[1:-2]) in ("AA", "AE") and b"MSA|A" in data and b"|SV3" in data
        r = httpx.get(f"http://127.0.0.1:{http_port}/admin/health", timeout=10)
        assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    finally:
        stop(proc)
    with Engine(settings) as engine:
        for control, facility in (("SV1", "FNXRMYY"), ("SV2", "NOSUCH"), ("SV3", "FNXRMYY")):
            doc = engine.ingestor.messages.get(message_id(facility, control))
            assert doc is not None, control
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "SV1"))["channel"] == "replay"
