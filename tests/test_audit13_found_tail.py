"""A killed writer's unsigned tail is marked ``recovered <first>`` once, whoever signs it first.

The race the twelfth round left: a process opening a killed writer's log alone finds the tail
(records past the newest signature) and signs it, marked, only at its ``start()``; a second
writer opening the log in between is not alone (the first holds the writers' lock shared), so it
finds nothing, and its seal covered the tail unmarked; the first then saw a valid signature over
its tail and dropped the mark. Now the finder records the tail in the log's own database while it
holds the writers' lock exclusive, and every signature over it carries the mark and consumes the
record in its own transaction.

Through the real path: the killed writer, the finder and the second writer each in their own
process on the real store; the finder is held at the window (between its open and its start) by
a line it waits for on stdin, not by a sleep; ``huren audit verify`` in its own process reads the
result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.settings import Settings
from tests.test_audit12_checkpoints import _cli, _killed_writer

ROOT = Path(__file__).resolve().parent.parent

_SETTINGS = """
import sys
from pathlib import Path
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings
from tests.test_audit_log import event
s = Settings(data_dir=Path(sys.argv[1]), audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600,
             audit_seal_seconds=3600)
"""

# opens the log (alone: it finds the killed writer's tail), says so, waits for a line, then starts
# as a server starts its log (which signs a found tail) and closes
_FINDER = _SETTINGS + """
log = AuditLog(open_audit_store(s), s, AuditKeys.load(s))
print("opened", flush=True)
sys.stdin.readline()
log.start()
log.close()
log.store.close()
print("done", flush=True)
"""

# opens the log (while the finder holds it: not alone), says so; on a line appends a record and
# seals (its background thread's tick, called at once), says so; on a line closes
_PEER = _SETTINGS + """
log = AuditLog(open_audit_store(s), s, AuditKeys.load(s))
print("opened", flush=True)
sys.stdin.readline()
log.record(event(100))
log.seal()
print("sealed", flush=True)
sys.stdin.readline()
log.close()
log.store.close()
"""


def _spawn(script: str, settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, str(settings.data_dir)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _say(proc: subprocess.Popen[str], line: str = "go") -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def _hear(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _recovered(settings: Settings) -> dict:
    said = _cli(settings.data_dir, "verify", "--json")
    assert said.returncode == 0, said.stdout + said.stderr[-2000:]
    return json.loads(said.stdout)


@contextmanager
def _finder_then_peer(settings: Settings) -> Iterator[tuple[subprocess.Popen[str], subprocess.Popen[str]]]:
    """A killed writer's log (8..11 unsigned); the finder opened alone, held at the window; then the
    second writer opened while the finder lives. Whatever still runs at the end is killed (a failed
    step leaves its process waiting on stdin)."""
    _killed_writer(settings)
    procs = [_spawn(_FINDER, settings)]
    try:
        assert _hear(procs[0]) == "opened"
        procs.append(_spawn(_PEER, settings))
        assert _hear(procs[1]) == "opened"  # while the finder lives: not alone, it finds nothing itself
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


def _marked_once(settings: Settings) -> None:
    """The log as an auditor reads it: 13 records, all signed, and exactly the dead writer's 8..11
    marked recovered, once."""
    report = _recovered(settings)
    assert report["records"] == 13 and report["unsigned"] == 0
    assert report["recovered"] == [{"checkpoint": 1, "first": 8, "last": 11}], report["recovered"]


def test_a_second_writer_signing_between_the_finders_open_and_its_start_marks_the_tail(settings: Settings) -> None:
    """Records 0..7 under checkpoint 0, 8..11 left unsigned by a writer killed with SIGKILL. The
    finder opens and is held; the second writer opens, appends record 12 and seals; then the
    finder starts and closes. The first signature over 8..11 says ``recovered 8``, and no other
    does (before: the peer's seal signed them unmarked, and the finder dropped its mark)."""
    with _finder_then_peer(settings) as (finder, peer):
        _say(peer)
        assert _hear(peer) == "sealed"
        _say(finder)
        assert _hear(finder) == "done"
        _say(peer)
        assert finder.wait(60) == 0 and peer.wait(60) == 0
    _marked_once(settings)


def test_a_finder_killed_before_it_signs_leaves_the_mark_to_the_writer_that_signs_next(settings: Settings) -> None:
    """The finder is killed (SIGKILL) at the window, before it signs; the second writer opened
    while it lived, so it did not find the tail itself: its seal is the first signature over
    8..11 and must carry ``recovered 8`` (before: signed unmarked, nothing left to say so)."""
    with _finder_then_peer(settings) as (finder, peer):
        finder.send_signal(signal.SIGKILL)
        assert finder.wait(30) == -signal.SIGKILL
        _say(peer)
        assert _hear(peer) == "sealed"
        _say(peer)
        assert peer.wait(60) == 0
    _marked_once(settings)
