"""A worker that scanned a record file healthy takes in the damage another worker noted since.

A process reads a file's damage note (``audit.damage/<first>``) only at its first look at the file,
so a sibling worker (``--workers``) that had scanned the file whole before it was damaged went on
answering audited reads, appending on top of a file another worker had found damaged. Now a
healthy log looks at the notes' directory once a second (one ``stat``) and refuses such a file
until it has proven it itself. Through the real path: two engines on one data directory, the file
damaged on disk, audited reads through the app.
"""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from engine.audit.record_files import records_directory
from engine.audit.store import audit_path
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit_damage import _flip_in_frame
from tests.test_reads11_repair_recovery import _log_of, _status_within
from tests.test_recheckfiles11_forged_file import _held, _refused_for, _rename_in, _server


def test_a_worker_that_scanned_a_file_healthy_refuses_it_once_another_notes_it_damaged(
        settings: Settings) -> None:
    settings = _log_of(settings, 12)
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))

    with Engine(settings) as first:
        client, headers = _server(first)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        first.audit.drain()
        assert len(first.audit.events(0)) >= 12  # the file scanned whole by this worker
        held = _held(first)
        before = path.read_bytes()
        _flip_in_frame(path, 6)  # damaged in place: same size, this worker's scan of it stands

        at = next(i for i, (a, b) in enumerate(zip(before, path.read_bytes(), strict=False)) if a != b)
        with Engine(settings) as second:  # a sibling's first look finds the damage and notes it
            assert len(second.audit.events(0)) < 12
            note = path.parent.with_name("audit.damage") / f"{0:012d}"
            assert note.exists()
            assert _refused_within(client, headers, 3)  # the first worker takes the note in (within a
            assert _refused_for(client, headers, 2.5)  # second) and refuses, rechecked again and again
            assert _held(first) >= held

            now = bytearray(path.read_bytes())  # the byte put back (records appended before the refusal kept):
            now[at] ^= 0x20
            _rename_in(path, bytes(now))
            # proven against the signed checkpoint, the worker answers again
            assert _status_within(client, headers, 10) == 200


def _refused_within(client: TestClient, headers: dict[str, str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while client.get("/fhir/Patient/p1", headers=headers).status_code != 503:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
