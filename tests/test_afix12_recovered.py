"""``recovered`` marks only a tail no live writer owns; a spoiled newest signature is damage.

Through the real path: a writer in its own process (the log started, as a server starts it),
``huren audit checkpoint`` / ``huren audit export`` in their own processes against its live,
unsealed records, the writer then killed with SIGKILL; a seal's signature spoiled on disk and the
engine reopened over it, answering audited reads over HTTP (FastAPI's client, the real app).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.audit.checkpoint import SEAL, parse_checkpoint
from engine.audit.keys import AuditKeys
from engine.audit.log import META, AuditLog
from engine.audit.store import open_audit_store
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit12_checkpoints import _cli, _killed_writer
from tests.test_audit_log import quiet
from tests.test_reads11_repair_recovery import _server

ROOT = Path(__file__).resolve().parent.parent

# a live writer: records 0..4 under checkpoint 0, then 5..8 unsealed (no seal for an hour); on a
# line from stdin it appends 9..10 and says so; the test kills it with SIGKILL
_LIVE_WRITER = """
import sys
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings
from tests.test_audit_log import event
s = Settings(data_dir=Path(sys.argv[1]), audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600,
             audit_seal_seconds=3600)
log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
log.start()
for i in range(9):
    log.record(event(i))
    if i == 4:
        log.checkpoint()
log.drain()
print("ready", flush=True)
sys.stdin.readline()
for i in range(9, 11):
    log.record(event(i))
log.drain()
print("more", flush=True)
sys.stdin.readline()
"""


def _checkpoints(settings: Settings) -> list[dict]:
    store = open_audit_store(settings)
    try:
        return [{k: v for k, v in doc.items() if k != "_id"}
                for doc in store.collection("audit_checkpoints").find(sort=[("seq", 1)])]
    finally:
        store.close()


def test_a_live_writers_unsealed_records_are_not_marked_found_but_a_killed_writers_are(
        settings: Settings, tmp_path: Path) -> None:
    settings.data_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", _LIVE_WRITER, str(settings.data_dir)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        signed = _cli(settings.data_dir, "checkpoint")
        assert signed.returncode == 0, signed.stderr[-2000:]
        cp = parse_checkpoint(signed.stdout)
        assert (cp.seq, cp.size, cp.recovered) == (1, 9, None)  # the live writer's: not 'found'
        exported = _cli(settings.data_dir, "export", "-o", str(tmp_path / "out.jsonl"))
        assert exported.returncode == 0, exported.stderr[-2000:]
        assert all("recovered" not in cp for cp in _checkpoints(settings))

        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "more"  # records 9, 10: unsigned, then the writer dies
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    signed = _cli(settings.data_dir, "checkpoint")
    assert signed.returncode == 0, signed.stderr[-2000:]
    cp = parse_checkpoint(signed.stdout)
    assert (cp.size, cp.recovered) == (11, 9)  # no live writer: its tail is found, and says so
    said = _cli(settings.data_dir, "verify", "--json")
    report = json.loads(said.stdout)
    assert report["recovered"] == [{"checkpoint": cp.seq, "first": 9, "last": 10}], said.stdout


def test_a_peers_seal_over_found_records_keeps_them_from_being_stamped_recovered(settings: Settings) -> None:
    """In one process two opens of one file are two writers to ``flock``: the second (opened
    while the first holds the log) does not take the first's unsigned records as found; and a
    found tail that a peer's valid seal covers is not stamped by the finder's next checkpoint."""
    s = quiet(settings)
    s.data_dir.mkdir(parents=True)
    from tests.test_audit_log import event

    keys = AuditKeys.load(s, create=True)
    a = AuditLog(open_audit_store(s), s, keys)
    for i in range(5):
        a.record(event(i))
    a.checkpoint()
    for i in range(5, 9):
        a.record(event(i))
    a.drain()
    b = AuditLog(open_audit_store(s), s, keys)  # a is alive: its records 5..8 are not b's to call found
    cp = b.checkpoint(force=True)
    assert cp is not None and (cp.seq, cp.size, cp.recovered) == (1, 9, None)
    b.close()
    b.store.close()
    a.close()
    a.store.close()


def _spoil_seal(settings: Settings) -> None:
    store = open_audit_store(settings)
    try:
        meta = store.collection(META)
        doc = meta.get(SEAL)
        body, _, sig = doc["note"].partition("\n\n")
        at = sig.rindex(" ") + 40  # a character of the Ed25519 signature (past the 4-byte key id)
        flipped = sig[:at] + ("A" if sig[at] != "A" else "B") + sig[at + 1:]
        meta.replace({**doc, "note": f"{body}\n\n{flipped}"})
    finally:
        store.close()


def test_a_seal_whose_signature_fails_is_damage_not_a_licence_to_sign_from_zero(settings: Settings) -> None:
    """A writer killed after its seal (records 0..9) and records 10, 11; the seal's signature
    spoiled on disk. The reopened engine refuses audited reads (503) and signs nothing: no
    checkpoint 'recovered 0' over records whose newest signature was spoiled."""
    _killed_writer(settings, "seal")
    _spoil_seal(settings)
    with Engine(settings) as engine:
        assert engine.audit._damage is not None and "does not verify" in engine.audit._damage
        client, headers = _server(engine)
        refused = client.get("/fhir/Patient/p1", headers=headers)
        assert refused.status_code == 503 and "female" not in refused.text
        assert [cp.seq for cp in engine.audit.list_checkpoints()] == [0]  # nothing signed over it
    said = _cli(settings.data_dir, "verify")
    assert said.returncode == 1 and "the seal (size 10): bad signature" in said.stdout, said.stdout


def test_with_the_seal_spoiled_the_newest_verifying_checkpoint_is_still_checked_against_the_tree(
        settings: Settings) -> None:
    """The same, with record 3 (under checkpoint 0, size 8) forged with its leaf, tree nodes and
    CRCs made again: the load names the checkpoint's mismatch too, not only the spoiled seal."""
    from engine.audit.record_files import records_directory
    from engine.audit.store import audit_path
    from tests.test_audit12_checkpoints import _forged
    from tests.test_recheckfiles11_forged_file import _rename_in

    _killed_writer(settings, "seal")
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    _rename_in(path, _forged(path, 3, b'"his-0"', b'"his-8"'))
    _spoil_seal(settings)
    with Engine(settings) as engine:
        damage = engine.audit._damage or ""
        assert "does not verify" in damage and "(size 8" in damage and "another root" in damage, damage
