"""The records no signature covers are few, and nothing takes them in silently.

Records past the latest signed checkpoint can be altered with their leaf hashes, tree nodes and
CRCs recomputed, and nothing can tell. So: a running server signs a checkpoint each second
(``HUREN_AUDIT_CHECKPOINT_SECONDS``) without being asked; ``huren audit verify`` says how many
records lie past the last checkpoint instead of a bare "OK"; and a process that opens the log on
such a tail (its writer was killed), or takes back a damaged file's unsigned records, signs them
marked ``recovered``, which verification reports: proven unchanged since, not proven as appended.
Through the real path: a server in its own process over HTTP, a writer killed with SIGKILL, the
CLI in its own process, record files forged on disk.

The killed writer's log (each variant) is made once a module and copied into each test's data directory
(``killed_log``, suite45c): four tests had each run a writer to be killed, the same records each time.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.audit import merkle
from engine.audit.checkpoint import parse_checkpoint
from engine.audit.keys import AuditKeys
from engine.audit.record_files import HEADER, records_directory
from engine.audit.segment import decode, encode
from engine.audit.store import audit_path
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.audit_server import served
from tests.test_aud19_signed_header import trusted
from tests.test_audit_damage import _flip_in_frame
from tests.test_reads11_repair_recovery import _log_of, _server, _status_within
from tests.test_recheckfiles11_forged_file import _rename_in

ROOT = Path(__file__).resolve().parent.parent

# a writer that signs a checkpoint after record 7 (and with "seal", the seal after record 9), appends
# records up to 11 and is killed (SIGKILL) before it signs them, as a crash or a power cut leaves a log
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings
from tests.test_audit_log import event
s = Settings(data_dir=Path(sys.argv[1]), audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600)
log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
for i in range(12):
    log.record(event(i))
    if i == 7:
        log.checkpoint()
    if i == 9 and sys.argv[2:] == ["seal"]:
        log.seal()
log.drain()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "audit", *args, *trusted(data_dir, args)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HUREN_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=120)


def _killed_writer(settings: Settings, *extra: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(settings.data_dir), *extra], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


@pytest.fixture(scope="module")
def killed_log(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., None]:
    """``_killed_writer(settings, *extra)`` as this module's tests use it: the killed writer runs once a module for
    each ``extra`` (a real process, killed with SIGKILL before it signs its tail), and each test gets a copy of the
    data directory it left -- its log, its keys -- at ``settings.data_dir``, to alter as it likes."""
    made: dict[tuple[str, ...], Path] = {}

    def copy(settings: Settings, *extra: str) -> None:
        if extra not in made:
            left = Settings(data_dir=tmp_path_factory.mktemp("killed") / "var", http_port=0, mllp_port=0)
            _killed_writer(left, *extra)
            made[extra] = left.data_dir
        shutil.copytree(made[extra], settings.data_dir)

    return copy


def _forged(path: Path, seq: int, old: bytes, new: bytes) -> bytes:
    """The record file with record ``seq``'s bytes altered (``old`` -> ``new``, the same length) and
    everything a reader checks made again to fit: every leaf hash, every tree node, every CRC."""
    body = path.read_bytes()
    rows, used = decode(body[HEADER.size:])
    assert used == len(body) - HEADER.size
    frontier = merkle.Frontier(rows[0][0], [])
    assert rows[0][0] == 0
    out = []
    for number, _leaf, data, _nodes in rows:
        if number == seq:
            assert old in data
            data = data.replace(old, new, 1)
        leaf = merkle.leaf_hash(data)
        out.append((number, leaf, data, frontier.push(leaf)))
    forged = body[:HEADER.size] + encode(out)
    assert len(forged) == len(body)
    return forged


def test_a_running_server_signs_what_it_appended_within_seconds_without_being_asked(settings: Settings) -> None:
    """Default settings, a real server process: audited reads over HTTP are under a signed
    checkpoint within a few seconds (the periodic checkpoint was once a minute)."""
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
        token = engine.auth.issue_system_token("his-a", "system/*.rs")
    with served(settings.data_dir) as (port, _proc):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        auth = {"Authorization": f"Bearer {token}"}

        def get(url: str) -> tuple[int, bytes]:
            conn.request("GET", url, headers=auth)
            response = conn.getresponse()
            return response.status, response.read()

        for _ in range(30):
            assert get("/fhir/Patient/p1")[0] == 200
        status, body = get("/audit/checkpoints?limit=1")
        assert status == 200
        appended = json.loads(body)["size"]  # every record so far, the 30 reads' among them
        deadline = time.monotonic() + 8  # (the round's start: 60 s)
        while True:
            latest = json.loads(get("/audit/checkpoints?limit=1")[1])["latest"]
            if latest is not None and latest["size"] >= appended:
                break
            assert time.monotonic() < deadline, f"no checkpoint covers the reads: {latest}"
            time.sleep(0.2)
        assert "recovered" not in latest  # this server appended them itself


def test_verify_says_how_many_records_no_signature_covers(settings: Settings,
                                                         killed_log: Callable[..., None]) -> None:
    killed_log(settings)
    said = _cli(settings.data_dir, "verify", "--require-signed")
    assert said.returncode == 1, said.stdout + said.stderr[-2000:]
    assert "4 record(s) (8..11) lie past the last signed checkpoint" in said.stdout
    assert "nothing proves their content" in said.stdout
    plain = _cli(settings.data_dir, "verify", "--json")  # without the flag: not a failure, but said
    assert plain.returncode == 0 and json.loads(plain.stdout)["unsigned"] == 4

    signed = _cli(settings.data_dir, "checkpoint")  # an operator signs them as they are now
    assert signed.returncode == 0 and parse_checkpoint(signed.stdout).recovered == 8
    again = _cli(settings.data_dir, "verify", "--json", "--require-signed")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["unsigned"] == 0
    assert report["recovered"] == [{"checkpoint": 1, "first": 8, "last": 11}]


def test_a_restart_on_a_forged_unsigned_tail_signs_it_only_as_recovered(
        settings: Settings, caplog: pytest.LogCaptureFixture, killed_log: Callable[..., None]) -> None:
    """A writer killed before signing records 8..11; record 10 altered on disk while nothing runs,
    its leaf, the tree nodes and the CRCs made again. Nothing can prove it is not what was appended;
    the restarted server serves (refusing every read after each crash is no answer), but signs the
    tail as found, and says so in its log, in the signed checkpoint and in `huren audit verify`."""
    killed_log(settings)
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    _rename_in(path, _forged(path, 10, b'"his-1"', b'"his-9"'))

    with caplog.at_level(logging.WARNING, logger="engine.audit.log"), Engine(settings) as engine:
        latest = engine.audit.latest_checkpoint()
        assert latest is not None and (latest.size, latest.recovered) == (12, 8)
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
    assert "records 8..11 were past the latest signed checkpoint" in caplog.text

    said = _cli(settings.data_dir, "verify")
    assert said.returncode == 0, said.stdout + said.stderr[-2000:]
    assert "recovered: records 8..11 were first signed by checkpoint 1 as found" in said.stdout
    assert "not proven to be what was appended" in said.stdout
    report = json.loads(_cli(settings.data_dir, "verify", "--json").stdout)
    assert report["recovered"] == [{"checkpoint": 1, "first": 8, "last": 11}] and report["unsigned"] == 0


def test_a_damaged_file_taken_back_past_the_checkpoint_is_signed_as_recovered(settings: Settings) -> None:
    """A running server: records 12.. appended after the last checkpoint, one of them damaged on
    disk, then the file replaced by a forgery that passes every check (leaves, nodes, CRCs). The
    records the checkpoint covers prove themselves; the ones past it cannot: the server takes the
    file back (within a second, as before) and the next checkpoint marks them recovered."""
    settings = _log_of(settings, 12)  # all 12 signed
    with Engine(settings.with_(audit_checkpoint_seconds=3600, audit_seal_seconds=0)) as engine:
        client, headers = _server(engine)
        for _ in range(6):
            assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        engine.audit.drain()
        held = engine.audit.held_count()
        assert engine.audit.latest_checkpoint().size == 12 and held >= 18
        [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
        forged = _forged(path, 14, b'"his-a"', b'"his-z"')
        _flip_in_frame(path, 14)
        assert not verify_online(engine.audit).ok  # a reader meets the damage: appends stop
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503

        _rename_in(path, forged)
        assert _status_within(client, headers, 10) == 200  # taken back: nothing can tell
        cp = engine.audit.checkpoint()  # ... but not silently: exactly the file's records past checkpoint 0
        assert cp is not None and cp.recovered is None and cp.size > held  # (the server's own read since: not)
        marked = engine.audit.list_checkpoints()[-2]
        assert (marked.recovered, marked.size) == (12, held)
        assert verify_online(engine.audit, AuditKeys.load(settings)).recovered == [(marked.seq, 12, held - 1)]


def test_the_seal_binds_the_last_second_without_a_checkpoint_a_second(settings: Settings) -> None:
    """Default settings: reads are under the seal within a second or two, no numbered checkpoint is
    added for it, and a record altered under the seal (its leaf, the tree nodes and the CRCs made
    again) is caught by `huren audit verify` in its own process. Before: the tail waited up to a
    minute for a checkpoint, and verification said OK over such a forgery."""
    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        engine.audit.checkpoint()
        numbered = len(engine.audit.list_checkpoints())
        for _ in range(5):
            assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        appended = engine.audit.size
        deadline = time.monotonic() + 8
        while (seal := engine.audit.latest_seal()) is None or seal.size < appended:
            assert time.monotonic() < deadline, "no seal covers the reads"
            time.sleep(0.1)
        assert engine.audit.latest_checkpoint() == seal and len(engine.audit.list_checkpoints()) == numbered
        assert seal.seal and seal.seq == -1 and seal.recovered is None  # (no number: a `seal` line)

        [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
        _rename_in(path, _forged(path, appended - 2, b'"his-a"', b'"his-z"'))
        said = _cli(settings.data_dir, "verify", "--json")
        report = json.loads(said.stdout)
        assert said.returncode == 1 and report["sealed"] >= appended, said.stdout + said.stderr[-2000:]
        assert any(p["kind"] == "root" and "the seal" in p["message"] for p in report["problems"]), report


def test_a_restart_proves_what_the_seal_signed_and_refuses_a_forgery_under_it(
        settings: Settings, tmp_path: Path, killed_log: Callable[..., None]) -> None:
    """A writer killed after its seal (records 0..9) and two more records: a restart proves 0..9
    against the seal (the stored tree makes its root) and marks only 10..11 recovered. The same
    log with record 9 forged (leaf, tree nodes, CRCs made again): the restarted server neither
    signs over it nor appends (503), and verification names the seal's mismatch."""
    clean = settings.with_(data_dir=tmp_path / "clean")
    killed_log(clean, "seal")
    with Engine(clean) as engine:
        assert (engine.audit.latest_checkpoint().size, engine.audit.latest_checkpoint().recovered) == (12, 10)

    killed_log(settings, "seal")
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    _rename_in(path, _forged(path, 9, b'"his-0"', b'"his-8"'))
    with Engine(settings) as engine:
        assert engine.audit.latest_checkpoint().size == 10  # nothing signed over it
        client, headers = _server(engine)
        refused = client.get("/fhir/Patient/p1", headers=headers)
        assert refused.status_code == 503 and "female" not in refused.text
    said = _cli(settings.data_dir, "verify")
    assert said.returncode == 1 and "do not match the seal (size 10)" in said.stdout, said.stdout
