"""What an audited read guarantees today, through a real server process over real HTTP: the
guarantees a change of the log's record path (one Merkle leaf per group, records kept in sealed
segment files) must keep, pinned on the hottest path (``GET /fhir/<type>/<id>``, the fast read and
its record made from a template).

- every read answered 200 has its own record after the server was killed with SIGKILL mid-stream
  (each read names a resource no other read names, so the check is per read, not a count);
- the log verifies offline as an auditor runs it (``huren audit verify`` with the public keys,
  ``huren audit export`` then ``huren audit verify --export``);
- a log holding earlier-format records (format 1: complete AuditEvents) beside the compact records
  of reads verifies alike, and a resident's "who looked at my record" search over /fhir lists the
  hospital's reads of their record.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from engine.audit.events import build_event, requestor_agent
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.engine import Engine
from engine.settings import Settings
from tests.audit_server import served
from tests.test_aud19_signed_header import trusted
from tests.test_audit_views import _obs

ROOT = Path(__file__).resolve().parent.parent
HOSPITAL = {"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"}  # (_obs's performer)
READS = 400  # distinct Observations: one read of each at most, so each answer is matched to its record


def _huren(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``huren <args>`` as an operator or auditor runs it (a process of its own, the environment's
    data directory; ``verify`` trusting the log's own public keys, as an auditor is given them)."""
    return subprocess.run([sys.executable, "-m", "engine.cli", *args, *trusted(data_dir, args[1:])], cwd=ROOT,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("HUREN_")},
                               "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=180)


def _records(settings: Settings) -> list[dict]:
    """Every record of the log, reopened as a restart does, in order."""
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    try:
        return [orjson.loads(doc["data"]) for doc in log.leaves.find(sort=[("seq", 1)])]
    finally:
        log.store.close()


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _auditor_verifies(data_dir: Path, tmp_path: Path) -> None:
    checked = _huren(data_dir, "audit", "verify", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert orjson.loads(checked.stdout)["ok"] is True
    export = tmp_path / "audit-export.jsonl"
    written = _huren(data_dir, "audit", "export", "-o", str(export))
    assert written.returncode == 0, written.stderr
    keys = [a for pem in sorted((data_dir / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
    offline = _huren(data_dir, "audit", "verify", "--export", str(export), "--json", *keys)  # the deployment's keys
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_fast_reads_killed_mid_stream_each_answered_read_has_its_record_and_the_log_verifies(
        settings: Settings, tmp_path: Path) -> None:
    with Engine(settings) as engine:
        engine.repository.update(HOSPITAL)
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        for i in range(READS):
            engine.repository.update(_obs(f"o{i}", "p1"))
        token = engine.auth.issue_system_token("crash24", "system/*.rs")
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for i in range(k, READS, 4):  # each Observation read once, by one client
            if stop.is_set():
                return
            try:  # no query string: the fast read and the record made from the template
                conn.request("GET", f"/fhir/Observation/o{i}", headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                return
            if response.status == 200:
                with lock:
                    answered.append(f"Observation/o{i}")

    with served(settings.data_dir) as (port, proc):
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < READS // 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # mid-stream: the clients are still reading
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    assert READS // 2 <= len(answered) < READS, "the server was not killed mid-stream"
    reads = [r for r in _records(settings) if r.get("act") == "read"]
    named = [ref.split("/_history/")[0] for r in reads for ref in r.get("res", [])]  # (a read names the version)
    missing = sorted(set(answered) - set(named))
    assert not missing, f"reads answered 200 without a record: {missing[:5]}"
    assert len(named) == len(set(named)), "a read recorded twice"
    assert all(r.get("pat") == ["p1"] for r in reads if r.get("res"))
    _auditor_verifies(settings.data_dir, tmp_path)


def test_earlier_format_records_and_new_reads_verify_together_and_the_resident_sees_the_reads(
        settings: Settings, tmp_path: Path) -> None:
    his = requestor_agent(kind="system", subject="his-old", address="10.0.0.9")
    with Engine(settings) as engine:
        engine.repository.update(HOSPITAL)
        engine.repository.update({"resourceType": "Patient", "id": "pt-zhang", "name": [{"text": "张三"}]})
        engine.repository.update(_obs("obs-zhang", "pt-zhang"))
        # what earlier releases wrote: complete AuditEvents (format 1), one of them about 张三
        engine.audit.record(build_event(action="read", origin="o", agents=his, patient_ids=["pt-zhang"],
                                        resources=["Observation/obs-zhang"],
                                        owners={"Observation/obs-zhang": ["pt-zhang"]}))
        engine.audit.record(build_event(action="token-issue", origin="o", agents=his))
        hospital = engine.auth.issue_system_token("his-new", "system/*.rs")
        me, _ = engine.auth.issue_token(subject="person-pt-zhang", kind="patient", client_id="phr",
                                        scopes=["patient/*.rs"], patient="pt-zhang")
    with served(settings.data_dir) as (port, _proc):
        for _ in range(5):
            assert _get(port, "/fhir/Observation/obs-zhang", hospital)[0] == 200
        status, body = _get(port, "/fhir/AuditEvent?patient=pt-zhang", me)
    assert status == 200
    events = [e["resource"] for e in orjson.loads(body).get("entry", [])]
    reads = [e for e in events if e.get("action") == "R"
             and any(x.get("what", {}).get("reference", "").split("/_history/")[0] == "Observation/obs-zhang" for x in e.get("entity", []))]
    assert len(reads) >= 6, [e.get("id") for e in events]  # the old record's read and the five new ones
    records = _records(settings)
    assert "f" not in records[0] and records[0]["resourceType"] == "AuditEvent"  # format 1 kept as it was
    assert sum(1 for r in records if r.get("f") == 2 and r.get("res") == ["Observation/obs-zhang/_history/1"]) == 5
    _auditor_verifies(settings.data_dir, tmp_path)
