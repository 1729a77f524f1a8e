"""Review probes of perfa41 (forty-first round, rv41m): one append path for the signed audit log
(``Appends._record_many`` for a lone record and a group), the cheaper ``ScopedRepository`` and the hot
read's ``Response`` built from raw headers.

Real paths only: the release before perfa41 (main's parent of the merge, extracted with ``git archive``)
appends to the same log in a process of its own, before and after this tree does; a group appender is
killed with SIGKILL mid-stream; ``huren audit verify`` and ``huren audit export`` / ``verify --export``
as an auditor runs them; reads over HTTP through the real app, several callers on one worker.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.test_audit24_guarantees import _huren

BEFORE = "037eb5dc^1"  # main just before perfa41 was merged: perf40r's ``_append_sealed`` for a lone record

# appends ``count`` records to the log at argv[1]: lone (``try_record_many`` of one, the lock kept now and
# then, as lone mode's committer) and groups of four (``record_many``), alternating; a checkpoint every 7
# records, so one falls due at lone records and inside groups; prints "<k> <seq> <leaf hex>" per record
_APPENDER = r"""
import os, sys, time
sys.path.insert(0, sys.argv[2])
import engine
assert engine.__file__.startswith(sys.argv[2]), engine.__file__
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.record import seal
from engine.audit.store import open_audit_store
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0).with_(
    audit_checkpoint_every=7, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
who, count, mode = sys.argv[3], int(sys.argv[4]), sys.argv[5]
log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))


def sealed(i):
    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", who, None, who, None, None,
           None, None], "node": "test", "out": "0", "pat": [f"{who}{i}"], "res": [f"Observation/{who}{i}"],
           "salt": os.urandom(16).hex()}
    return seal(doc, (f"p:{who}{i}",), "2026-01-01T00:00:00.000Z")


print("ready", flush=True)
i = 0
while i < count:
    if mode == "group" or (mode == "mixed" and (i // 5) % 2):
        got = log.record_many([sealed(i + j) for j in range(4)])
        done = list(zip(range(i, i + 4), got))
        i += 4
    else:
        got = log.try_record_many([sealed(i)], keep=i % 3 == 0)
        if got is None:
            got = log.record_many([sealed(i)])
        log.let_go_segment(blocking=True)
        done = [(i, got[0])]
        i += 1
    for k, appended in done:
        print(k, appended.seq, appended.leaf_hash.hex(), flush=True)
log.close()
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def old_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    old = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", BEFORE, "engine", "mappings", "adapters",
                              "conformance"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    return old


def _append(data_dir: Path, tree: Path, who: str, count: int, mode: str) -> dict[int, tuple[int, str]]:
    done = subprocess.run([sys.executable, "-c", _APPENDER, str(data_dir), str(tree), who, str(count), mode],
                          cwd=str(tree), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = [ln.split() for ln in done.stdout.decode().splitlines() if ln not in ("ready", "done")]
    return {int(k): (int(seq), leaf) for k, seq, leaf in lines}


def _rows(settings: Settings) -> dict[int, tuple[str, dict[str, Any]]]:
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    try:
        log.drain()
        return {d["seq"]: (d["hash"].hex() if isinstance(d["hash"], bytes) else str(d["hash"]),
                           orjson.loads(d["data"])) for d in log.leaves.find(sort=[("seq", 1)])}
    finally:
        log.close()


def _verified_offline(data_dir: Path, export: Path) -> dict[str, Any]:
    checked = _huren(data_dir, "audit", "verify", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert _huren(data_dir, "audit", "export", "-o", str(export)).returncode == 0
    keys = [a for pem in sorted((data_dir / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
    offline = _huren(data_dir, "audit", "verify", "--export", str(export), "--json", *keys)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    return orjson.loads(offline.stdout)


def test_a_log_written_by_the_release_before_then_this_one_then_the_one_before_again_verifies_offline(
        settings: Settings, old_release: Path, tmp_path: Path) -> None:
    """Upgrade and downgrade over one segment file and one table: the release before perfa41 (its lone
    ``_append_sealed``) appends lone records and groups, a checkpoint every 7; this tree appends more the
    same way (its one path); the release before appends again after it (so it reads this tree's frames).
    Every answered record is in the log under its number with its leaf, the numbering has no gap, and the
    log verifies online and offline with every record counted."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    answered: dict[str, dict[int, tuple[int, str]]] = {}
    answered["old"] = _append(settings.data_dir, old_release, "old", 40, "mixed")
    answered["new"] = _append(settings.data_dir, REPO_ROOT, "new", 40, "mixed")
    answered["back"] = _append(settings.data_dir, old_release, "back", 40, "mixed")
    rows = _rows(settings)
    assert sorted(rows) == list(range(len(rows))) and len(rows) == sum(len(a) for a in answered.values())
    for who, got in answered.items():
        for k, (seq, leaf) in got.items():
            assert rows[seq][0] == leaf and rows[seq][1]["pat"] == [f"{who}{k}"], (who, k, seq)
    assert _verified_offline(settings.data_dir, tmp_path / "export.jsonl")["records"] == len(rows)


def test_a_group_appender_killed_mid_stream_beside_a_lone_one_loses_no_answered_record(
        settings: Settings, tmp_path: Path) -> None:
    """SIGKILL to a process appending groups of four (rv40j killed the lone one only) while another appends
    lone records to the same segment; then a restart appends again. Every record either was answered for is
    kept under its number and leaf, none twice, no gap, and the log verifies online and offline."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings, create=True)).close()
    args = [sys.executable, "-c", _APPENDER, str(settings.data_dir), str(REPO_ROOT)]
    group = subprocess.Popen([*args, "grp", "100000", "group"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lone = subprocess.Popen([*args, "lone", "300", "lone"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    got: list[bytes] = []
    try:
        assert group.stdout is not None
        deadline = time.monotonic() + 120
        while len(got) < 400 and time.monotonic() < deadline:
            if line := group.stdout.readline():
                got.append(line)
        group.send_signal(signal.SIGKILL)
        got += group.stdout.read().splitlines(keepends=True)
        group.wait(30)
        lone_out, lone_err = lone.communicate(timeout=300)
    finally:
        for p in (group, lone):
            if p.poll() is None:
                p.kill()
                p.wait(30)
    assert lone.returncode == 0, lone_err.decode()[-2000:]
    grouped = {int(k): (int(s), leaf) for k, s, leaf in (ln.split() for ln in
               (x.decode().strip() for x in got) if ln and ln not in ("ready", "done") and len(ln.split()) == 3)}
    assert len(grouped) >= 300
    after = _append(settings.data_dir, REPO_ROOT, "after", 12, "mixed")  # the restart appends on
    rows = _rows(settings)
    assert sorted(rows) == list(range(len(rows)))
    lone_answered = {int(k): (int(s), leaf) for k, s, leaf in (ln.split() for ln in lone_out.decode().splitlines()
                                                               if ln not in ("ready", "done"))}
    for who, answered in (("grp", grouped), ("lone", lone_answered), ("after", after)):
        for k, (seq, leaf) in answered.items():
            assert rows[seq][0] == leaf and rows[seq][1]["pat"] == [f"{who}{k}"], (who, k, seq)
    pats = [r["pat"][0] for _h, r in rows.values()]
    assert len(pats) == len(set(pats))
    assert _verified_offline(settings.data_dir, tmp_path / "export.jsonl")["records"] == len(rows)
