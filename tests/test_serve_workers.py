"""``huren serve --workers 2``: two processes answer on one port, every read audited exactly once.

The real command in a subprocess on a real data directory: reads over real HTTP from several
keep-alive connections, two worker processes under the parent, and after SIGTERM one signed audit
log holding exactly one record per read (the workers append to it concurrently) that verifies.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_up(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not start")


def _reads(port: int, token: str, count: int) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = []
    try:
        for _ in range(count):
            conn.request("GET", "/fhir/Observation/o1", headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            body = resp.read()
            statuses.append(resp.status)
            assert orjson.loads(body).get("id") == "o1", (resp.status, body[:400])
    finally:
        conn.close()
    return statuses


def _seed(settings: Settings) -> tuple[str, int, int]:
    """The result the reads fetch; a token for it, the log's size and p1's views so far."""
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
        engine.repository.update({"resourceType": "Patient", "id": "p1"})
        engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                                  "code": {"text": "Hb"}, "subject": {"reference": "Patient/p1"},
                                  "effectiveDateTime": "2026-11-01", "performer": [{"reference": "Organization/org1"}]})
        token = engine.auth.issue_system_token("his", "system/*.rs")
        return token, engine.audit.size, engine.repository.search("AuditEvent", [("patient", "p1")]).total


def test_two_workers_serve_one_port_and_audit_every_read_once(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = _free_port()
    settings = Settings(data_dir=data, http_port=port)  # tokens name the server (its base URL) they are for
    token, before, _ = _seed(settings)
    env = {**os.environ, "HUREN_DATA_DIR": str(data), "HUREN_HTTP_PORT": str(port), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--workers", "2", "--no-mllp"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        _wait_up(port, proc)
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(proc.pid)) == 2
        with ThreadPoolExecutor(6) as pool:
            statuses = [s for batch in pool.map(lambda _: _reads(port, token, 40), range(6)) for s in batch]
        assert statuses == [200] * 240
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode() if proc.stderr else ""
    with Engine(settings) as engine:
        records = [engine.audit.events(seq, 1)[0] for seq in range(before, engine.audit.size)]
        reads = [r for r in records if r["subtype"][0]["code"] == "read"
                 and any(e.get("what", {}).get("reference", "").startswith("Observation/o1") for e in r["entity"])]
        assert len(reads) == 240
        assert [int(r["id"].removeprefix("audit-")) for r in records] == list(range(before, engine.audit.size))
        assert verify_online(engine.audit).ok


def test_views_lost_to_kill_9_are_rebuilt_at_the_next_start_once(tmp_path: Path) -> None:
    """The per-patient views are written after the response, in the background: a server killed
    inside that lag has every read's signed record but not its view. The next start shows each of
    them, by itself (no new record, no search asking), and exactly once."""
    data = tmp_path / "var"
    port = _free_port()
    settings = Settings(data_dir=data, http_port=port)
    token, before, views_before = _seed(settings)
    env = {**os.environ, "HUREN_DATA_DIR": str(data), "HUREN_HTTP_PORT": str(port), "PYTHONPATH": str(ROOT),
           "HUREN_AUDIT_CHECKPOINT_SECONDS": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--no-mllp"], cwd=ROOT, env=env,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_up(port, proc)
        assert _reads(port, token, 30) == [200] * 30
    finally:
        proc.kill()  # SIGKILL: no shutdown, no final flush of the views
        proc.wait(timeout=30)
    with Engine(settings) as engine:
        reads = engine.audit.size - before
        assert reads == 30  # every answered read has its signed record
        # every one shown once, derived from the log (nothing to catch up after the kill)
        assert engine.repository.search("AuditEvent", [("patient", "p1")]).total - views_before == reads
