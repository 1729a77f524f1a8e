"""Guards kept from the review of labels20 (rv-labels20's probes that held): a client bound by
``huren client add --institution`` while ``huren serve --workers 2`` runs is refused by both
workers at once (labels20's ``cgen``; the racy-clean re-read of labelsmend20 must not lose it).
Real CLI in subprocesses, real HTTP, the real store."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.engine import Engine
from engine.settings import Settings
from tests.test_serve_workers import _children, _free_port, _wait_up

ROOT = Path(__file__).resolve().parent.parent
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().rsplit(" ", 1)[-1]


def _get(port: int, path: str, headers: dict[str, str], count: int) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    got = []
    try:
        for _ in range(count):
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            got.append(resp.status)
    finally:
        conn.close()
    return got


def test_binding_a_client_reaches_both_workers(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = _free_port()
    settings = Settings(data_dir=data, http_port=port)
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "zhang"})
        engine.repository.update({"resourceType": "DocumentReference", "id": "restricted", "status": "current",
                                  "subject": {"reference": "Patient/zhang"},
                                  "securityLabel": [{"coding": [{"system": CONF, "code": "R"}]}],
                                  "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]})
    env = {**os.environ, "HUREN_DATA_DIR": str(data), "HUREN_HTTP_PORT": str(port), "PYTHONPATH": str(ROOT)}
    secret = _cli(env, "client", "add", "his-township", "--scope", "system/*.rs")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--workers", "2", "--no-mllp"],
                            cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_up(port, proc)
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(proc.pid)) == 2
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        basic = base64.b64encode(f"his-township:{secret}".encode()).decode()
        conn.request("POST", "/auth/token", body="grant_type=client_credentials",
                     headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        token = json.loads(resp.read())["access_token"]
        conn.close()
        h = {"Authorization": f"Bearer {token}"}
        with ThreadPoolExecutor(6) as pool:
            before = [s for b in pool.map(lambda _: _get(port, "/fhir/DocumentReference/restricted", h, 10), range(6))
                      for s in b]
        assert before == [200] * 60
        _cli(env, "client", "add", "his-township", "--scope", "system/*.rs", "--institution", "FNYLWSY")
        with ThreadPoolExecutor(6) as pool:
            after = [s for b in pool.map(lambda _: _get(port, "/fhir/DocumentReference/restricted", h, 10), range(6))
                     for s in b]
        assert after == [401] * 60, after
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


