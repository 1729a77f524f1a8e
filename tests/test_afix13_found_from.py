"""A found tail's record (``audit_meta/found-from``) never marks records a valid signature covers.

The defect: a process opening the log alone while it was damaged (here: the stored seal altered,
so the load fell back to the newest numbered checkpoint that verifies, size 4) still noted
found-from=4 in the database; once the seal was put back and the damage cleared, the next
checkpoint, by whichever process, was signed ``recovered 4`` over records 4..7 a live writer had
appended and validly sealed. Now a damaged open notes nothing in the database (the tail stays this
process's own, dropped once a valid signature covers it), and a signature checks the stored
found-from against the newest valid statement, as the in-memory mark always was: records it covers
are vouched for, not found, and a found-from it covers whole is deleted.

Through the real path: the writer in its own process, killed (SIGKILL) after its seal signed
everything it appended; the openers on the real store; ``huren audit verify`` in its own process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.audit.checkpoint import SEAL
from engine.audit.keys import AuditKeys
from engine.audit.log import FOUND, AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings
from tests.test_audit12_checkpoints import _cli
from tests.test_audit13_found_tail import _recovered
from tests.test_audit_log import event, quiet

ROOT = Path(__file__).resolve().parent.parent

# checkpoint 0 over records 0..3; records 4..7 under the seal (size 8); then killed: every record it
# appended is validly signed, and its writers' lock is let go
_SEALED_WRITER = """
import os, signal, sys
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings
from tests.test_audit_log import event
s = Settings(data_dir=Path(sys.argv[1]), audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600,
             audit_seal_seconds=3600)
log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
for i in range(8):
    log.record(event(i))
    if i == 3:
        log.checkpoint()
assert log.seal().size == 8
log.drain()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _quiet(settings: Settings) -> Settings:
    return quiet(settings)


def _sealed_writer(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", _SEALED_WRITER, str(settings.data_dir)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def _open(settings: Settings) -> AuditLog:
    return AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))


def _shut(log: AuditLog) -> None:
    log.close()
    log.store.close()


def _seal_note(settings: Settings) -> str:
    store = open_audit_store(settings)
    try:
        return str(store.collection("audit_meta").get(SEAL)["note"])
    finally:
        store.close()


def _put_seal(settings: Settings, note: str) -> None:
    store = open_audit_store(settings)
    try:
        meta = store.collection("audit_meta")
        meta.replace({**meta.get(SEAL), "note": note})
    finally:
        store.close()


def _tampered(note: str) -> str:
    """The seal's note with one character of its signature changed: it no longer verifies."""
    body, _, sig = note.partition("\n\n")
    i = sig.rindex(" ") + 5
    return body + "\n\n" + sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]


def test_an_open_over_a_damaged_seal_leaves_no_found_tail_behind(settings: Settings) -> None:
    """The seal altered, a lone process opens the log (damaged: it falls back to checkpoint 0, size 4),
    then closes; the seal is put back; the next process appends record 8 and signs. Nothing is
    marked recovered: records 4..7 were validly sealed by the writer that appended them (before:
    checkpoint 1 said ``recovered 4``, accusing them)."""
    settings = _quiet(settings)
    _sealed_writer(settings)
    note = _seal_note(settings)
    _put_seal(settings, _tampered(note))

    damaged = _open(settings)
    try:
        assert damaged._damage is not None and damaged._signed_size == 4  # the fallback
    finally:
        _shut(damaged)  # (its closing checkpoint is refused: damaged)

    _put_seal(settings, note)
    log = _open(settings)
    try:
        assert log._damage is None
        log.record(event(8))
        cp = log.checkpoint()
        assert cp is not None and (cp.seq, cp.size, cp.recovered) == (1, 9, None)
    finally:
        _shut(log)
    report = _recovered(settings)
    assert report["records"] == 9 and report["unsigned"] == 0 and report["recovered"] == []


def test_a_found_from_left_over_validly_signed_records_is_dropped_not_marked(settings: Settings) -> None:
    """A found-from an earlier release left over a damaged open (first 4, no end), under records the
    restored seal signs validly: the next signature checks it against the seal, marks nothing and
    deletes it in its transaction, as the in-memory mark always was dropped once a valid
    signature covered it (before: checkpoint 1 was signed ``recovered 4``)."""
    settings = _quiet(settings)
    _sealed_writer(settings)
    store = open_audit_store(settings)
    try:
        store.collection("audit_meta").replace({"_id": FOUND, "first": 4})
    finally:
        store.close()

    log = _open(settings)
    try:
        log.record(event(8))
        cp = log.checkpoint()
        assert cp is not None and (cp.size, cp.recovered) == (9, None)
        assert log.meta.get(FOUND) is None
        log.record(event(9))
        assert log.checkpoint().recovered is None
    finally:
        _shut(log)
    said = _cli(settings.data_dir, "verify", "--json")
    assert said.returncode == 0, said.stdout + said.stderr[-2000:]
    report = _recovered(settings)
    assert report["records"] == 10 and report["unsigned"] == 0 and report["recovered"] == []
