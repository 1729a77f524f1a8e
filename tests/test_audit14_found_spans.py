"""A found tail's mark outlives a damaged opener, and found spans that do not touch stay apart.

(1) A process that opened a killed writer's log alone while the log was damaged (its checkpoint
altered on disk) kept the found tail in its memory only: killed before it signed, it left the mark
to nobody, and a second writer (opened while it lived: not alone, it found nothing) signed the tail
unmarked once the checkpoint was put back. Now the damaged open notes the tail in the database too;
every signature takes off what the newest valid statement then covers, so only the dead writer's
records are marked.

(2) A found tail noted in the database (8..11) and a rescanned record file's records taken back
past the signature (further on) were marked as one span: ``recovered 8`` over every record up to the
file's end, the records appended between them included. Now each span gets its own checkpoint.

Through the real path: the killed writer, the finder and the second writer in their own processes
on the real store; the prover called as the record files call it, with a file's frames read back
from disk; ``huren audit verify`` in its own process reads the result.
"""

from __future__ import annotations

import signal

import pytest

import engine.audit.record_files as record_files
from engine.audit.keys import AuditKeys
from engine.audit.leaves import seq_key
from engine.audit.log import FOUND, AuditLog
from engine.audit.record_files import records_directory
from engine.audit.store import audit_path, open_audit_store
from engine.settings import Settings
from tests.test_afix13_found_from import _tampered
from tests.test_audit12_checkpoints import _killed_writer
from tests.test_audit13_found_tail import _FINDER, _PEER, _hear, _marked_once, _recovered, _say, _spawn
from tests.test_audit13_signed_file import _rows
from tests.test_audit_log import event, quiet


def _checkpoint_note(settings: Settings, note: str | None = None) -> str:
    """Checkpoint 0's signed text as stored; with ``note``, that text put in its place."""
    store = open_audit_store(settings)
    try:
        checkpoints = store.collection("audit_checkpoints")
        doc = checkpoints.get(seq_key(0))
        if note is not None:
            checkpoints.replace({**doc, "note": note})
        return str(doc["note"])
    finally:
        store.close()


def test_a_damaged_finder_killed_before_it_signs_leaves_the_mark_in_the_log(settings: Settings) -> None:
    """Records 0..7 under checkpoint 0, 8..11 left unsigned by a killed writer; checkpoint 0 altered,
    so the finder's open is damaged (nothing verifies: it notes from 0). The second writer opens
    while the finder lives; the finder is killed; checkpoint 0 is put back; the second writer
    appends record 12 and seals. Its signature marks exactly 8..11 (before: nothing, the mark died
    with the finder), not 0..7, which checkpoint 0 signs validly."""
    _killed_writer(settings)
    note = _checkpoint_note(settings)
    _checkpoint_note(settings, _tampered(note))
    procs = [_spawn(_FINDER, settings)]
    try:
        assert _hear(procs[0]) == "opened"
        procs.append(_spawn(_PEER, settings))
        finder, peer = procs
        assert _hear(peer) == "opened"
        finder.send_signal(signal.SIGKILL)
        assert finder.wait(30) == -signal.SIGKILL
        _checkpoint_note(settings, note)
        _say(peer)
        assert _hear(peer) == "sealed"
        _say(peer)
        assert peer.wait(60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    _marked_once(settings)


def test_a_noted_tail_and_a_rescanned_files_records_are_marked_as_two_spans(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The killed writer's 8..11 noted at the open; this process appends 12.. in small record files;
    a later file (first F > 12) is rescanned past the signature and taken back as found. The
    checkpoint marks 8..11 and F..the file's end, each in its own checkpoint; 12..F-1, which this
    process appended, are in neither (before: one ``recovered 8`` over 8..the file's end)."""
    monkeypatch.setattr(record_files, "ROLL_BYTES", 12000)  # small record files (~9 records): several
    _killed_writer(settings)
    s = quiet(settings)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s))
    try:
        assert log.meta.get(FOUND) == {"_id": FOUND, "first": 8, "end": 12}
        for i in range(12, 40):
            log.record(event(i))
            if i % 3 == 2:
                log.drain()
        log.drain()
        assert log._files is not None and log._files.prover is not None
        entries = {e.first: e for e in log._files.entries()}
        paths = {int(p.stem): p for p in records_directory(audit_path(s)).glob("*.records")}
        later = min(first for first in entries if first > 12 and entries[first].last < 39)
        rows = _rows(paths[later])
        end = rows[-1][0] + 1
        assert log._files.prover(entries[later], rows)  # past checkpoint 0: taken back as found
        cp = log.checkpoint()
        assert cp is not None and (cp.size, cp.recovered) == (40, None)
    finally:
        log.close()
        log.store.close()
    report = _recovered(s)
    assert report["records"] == 40 and report["unsigned"] == 0
    assert report["recovered"] == [{"checkpoint": 1, "first": 8, "last": 11},
                                   {"checkpoint": 2, "first": later, "last": end - 1}], report["recovered"]


def test_spans_that_touch_are_one_and_those_apart_stay_apart() -> None:
    from engine.audit.log import spans

    assert spans([(20, 25), (8, 12), (12, 14), (9, 10)]) == [(8, 14), (20, 25)]
    assert spans([]) == []

