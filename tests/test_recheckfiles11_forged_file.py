"""A running server resumes after a damaged record file is replaced only when every record of the
file in its place is the one the log holds, never on a file that merely passes its CRCs.

The once-a-second look of a damaged log (``RecordFiles.recheck``) scans a damaged file again when
another file is at its path. Found by a reviewer: it took any file whose frames passed their length
and CRC, so a damaged file replaced by its own bytes with each frame's CRC recomputed (no repair,
nothing verified) made the server append again on top of an altered record; and a file that is not
the newest, its records out of place, got through as well. Through the real path: real record
files renamed into place, audited reads through the app, ``huren audit verify`` in its own process.

The servers here look at their damaged log at every audited read (``DAMAGE_RECHECK_SECONDS`` 0, as
``test_audit10_repair_staged`` does), and a refusal is proven over reads that each asked for a recheck
(``_refused_over`` counts the calls of ``RecordFiles.recheck``; it rescans only a file changed since its last
scan, so of the counted calls the first after the forged file is renamed in rescans it, the others find it
unchanged): the tests had read for 2.5 s at the shipped once a second, ~10 s of waiting in the file (suite45c).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import engine.audit.loading as loading
import engine.audit.record_files as record_files
from engine.audit.record_files import HEADER, records_directory
from engine.audit.segment import _HEAD, decode, encode
from engine.audit.store import audit_path
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.settings import Settings
from tests.test_audit10_repair import _cli
from tests.test_audit_damage import _flip_in_frame
from tests.test_reads11_repair_recovery import _log_of, _server, _status_within


def _rename_in(path: Path, body: bytes) -> None:
    """``body`` put at ``path`` as a repair would: written beside it and renamed over it."""
    tmp = path.with_suffix(".incoming")
    tmp.write_bytes(body)
    os.replace(tmp, path)


def _crcs_recomputed(path: Path, *, leaves: bool = False) -> bytes:
    """The file's bytes as they are, each frame's CRC recomputed over them (nothing else checked);
    ``leaves``: each record's leaf hash recomputed over its bytes first (``sha256(0x00 || data)``),
    as a forger who knows the format would, so every record also hashes to the leaf beside it."""
    if leaves:
        rows, used = decode(_crcs_recomputed(path)[HEADER.size:])
        assert used == len(path.read_bytes()) - HEADER.size
        return path.read_bytes()[:HEADER.size] + encode(
            [(seq, hashlib.sha256(b"\x00" + data).digest(), data, nodes) for seq, _leaf, data, nodes in rows])
    buf = bytearray(path.read_bytes())
    pos = HEADER.size
    while pos + _HEAD.size <= len(buf):
        length, _crc = _HEAD.unpack_from(buf, pos)
        body = bytes(buf[pos + _HEAD.size:pos + _HEAD.size + length])
        _HEAD.pack_into(buf, pos, length, zlib.crc32(body))
        pos += _HEAD.size + length
    return bytes(buf)


def _held(engine: Engine) -> int:
    return engine.audit.held_count()


_RECHECKS: list[int] = []  # one entry a call of ``RecordFiles.recheck`` by this module's servers (a rescan if the file changed)


@pytest.fixture(autouse=True)
def _a_look_at_every_read() -> Iterator[None]:
    """The servers' look at a damaged log at every audited read instead of once a second, each call of ``recheck``
    counted (the real ``recheck``, called through: it rescans a file changed since its last scan, no other)."""
    real = record_files.RecordFiles.recheck

    def counted(self: record_files.RecordFiles) -> int | None:
        _RECHECKS.append(1)
        return real(self)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(loading, "DAMAGE_RECHECK_SECONDS", 0.0)
        patched.setattr(record_files.RecordFiles, "recheck", counted)
        yield


def _refused_for(client: TestClient, headers: dict[str, str], seconds: float) -> bool:
    """Every audited read refused (503, nothing of the resource) for ``seconds``: several rechecks at the shipped
    once a second (forged11's server; this module's look at every read and count them, ``_refused_over``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        resp = client.get("/fhir/Patient/p1", headers=headers)
        if resp.status_code != 503 or "female" in resp.text:
            return False
        time.sleep(0.2)
    return True


def _refused_over(client: TestClient, headers: dict[str, str], rechecks: int) -> bool:
    """Every audited read refused (503, nothing of the resource) until ``recheck`` was asked ``rechecks`` times: several
    rechecks (the shipped server's once a second, at every read here), the first after a rename rescanning the file."""
    start = len(_RECHECKS)
    for _ in range(rechecks * 3):  # (a read whose look found no damage noted would not ask for a recheck: bounded)
        resp = client.get("/fhir/Patient/p1", headers=headers)
        if resp.status_code != 503 or "female" in resp.text:
            return False
        if len(_RECHECKS) - start >= rechecks:
            return True
    raise AssertionError(f"recheck asked {len(_RECHECKS) - start} times in {rechecks * 3} reads (the first after a "
                         "rename rescans the replaced file)")


def _repaired_and_served(settings: Settings, backup: Path, damaged_file: Path, original: bytes, held: int,
                         says: str) -> None:
    """``huren audit repair --from backup`` puts the file back as it was, a server answers again
    and appends, and verification passes."""
    fixed = _cli(settings, "repair", "--from", str(backup))
    assert fixed.returncode == 0 and says in fixed.stdout, fixed.stdout + fixed.stderr[-2000:]
    assert damaged_file.read_bytes() == original
    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 200
        engine.audit.drain()
        assert _held(engine) > held and verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def test_a_damaged_file_replaced_by_its_bytes_with_crcs_recomputed_keeps_the_server_refusing(
        settings: Settings, tmp_path: Path) -> None:
    settings = _log_of(settings, 12)
    [damaged_file] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    original = damaged_file.read_bytes()
    backup = tmp_path / "backup"
    shutil.copytree(damaged_file.parent, backup / "audit.records")
    _flip_in_frame(damaged_file, 6)

    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503
        held = _held(engine)

        _rename_in(damaged_file, _crcs_recomputed(damaged_file))  # record 6 altered, every CRC right
        assert _refused_over(client, headers, 3)  # rechecked more than once: still refused
        assert _held(engine) == held  # nothing appended on top of it

        fixed = _cli(settings, "repair", "--from", str(backup))  # the repair sees it for what it is
        assert fixed.returncode == 0 and "records 6-11 put back" in fixed.stdout, fixed.stdout + fixed.stderr[-2000:]
        assert damaged_file.read_bytes() == original
        assert _status_within(client, headers, 10) == 200
        engine.audit.drain()
        assert _held(engine) > held
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def test_an_older_damaged_file_replaced_by_one_with_its_records_out_of_place_keeps_the_server_refusing(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_files, "ROLL_BYTES", 3000)  # small record files: several of them
    settings = _log_of(settings, 30, drain_every=3)
    files = sorted(records_directory(audit_path(settings)).glob("*.records"))
    assert len(files) >= 3
    original = files[0].read_bytes()
    rows, used = decode(original[HEADER.size:])
    assert used == len(original) - HEADER.size and len(rows) >= 3
    rows[1], rows[2] = rows[2], rows[1]  # each record sound, with its CRC: two of them swapped
    swapped = original[:HEADER.size] + encode(rows)
    assert len(swapped) == len(original)
    _flip_in_frame(files[0], 1)

    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert not verify_online(engine.audit).ok  # a reader meets the old file's damage ...
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503  # ... appends stop
        held = _held(engine)

        _rename_in(files[0], swapped)
        assert _refused_over(client, headers, 3)
        assert _held(engine) == held

        _rename_in(files[0], original)
        assert _status_within(client, headers, 10) == 200
        engine.audit.drain()
        assert verify_online(engine.audit).ok
    assert _cli(settings, "verify").returncode == 0


def test_a_file_swapped_while_a_damaged_one_is_read_is_looked_at_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file scanned is the one named as scanned: a damaged file (here not a record file at all)
    swapped for the right one between the scan's open and its read was stored as 'damaged' under
    the new file's identity, and the server refused every audited read until restarted."""
    settings = _log_of(settings, 12)
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    backup = path.with_name("backup.copy")
    shutil.copyfile(path, backup)
    _rename_in(path, b"\0" * len(backup.read_bytes()))  # the same size, not a record file

    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503
        _rename_in(path, b"\1" * len(backup.read_bytes()))  # another such file: the next look reads it,
        not_records = os.stat(path).st_ino  # and while it does, the right file is renamed into place

        real_pread, swapped = os.pread, []

        def pread_while_swapped(fd: int, n: int, offset: int) -> bytes:
            if not swapped and offset == 0 and os.fstat(fd).st_ino == not_records:  # its header read:
                swapped.append(True)  # the right file arrives at the path meanwhile
                os.replace(backup, path)
            return real_pread(fd, n, offset)

        monkeypatch.setattr(record_files.os, "pread", pread_while_swapped)
        assert _status_within(client, headers, 10) == 200
        assert swapped
        monkeypatch.undo()
        engine.audit.drain()
        assert verify_online(engine.audit).ok


def test_a_server_started_on_a_forged_replacement_of_a_file_found_damaged_refuses_it(
        settings: Settings, tmp_path: Path) -> None:
    """The damage a server found is noted beside the record files: a server started after the file
    was replaced (its CRCs recomputed over the altered record) proves it too, and refuses it."""
    settings = _log_of(settings, 12)
    [damaged_file] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    original = damaged_file.read_bytes()
    backup = tmp_path / "backup"
    shutil.copytree(damaged_file.parent, backup / "audit.records")
    _flip_in_frame(damaged_file, 6)
    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503

    _rename_in(damaged_file, _crcs_recomputed(damaged_file))  # while no server runs
    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert _refused_over(client, headers, 2)
        held = _held(engine)
    assert _cli(settings, "verify").returncode == 1

    _repaired_and_served(settings, backup, damaged_file, original, held, "records 6-11 put back")


def test_a_damaged_file_replaced_by_one_altered_and_re_hashed_keeps_refusing_until_repaired(
        settings: Settings, tmp_path: Path) -> None:
    """Found by a reviewer: the rescan proved each record against the leaf hash kept beside it in
    the same file, so a forger who recomputed record 6's leaf as well as the CRCs got 200 within a
    recheck, the damage note was deleted (a restart took it too) and ``huren audit repair`` said
    there was nothing to repair, while ``huren audit verify`` failed. The records are now proven
    against the log's latest signed checkpoint: running, restarted, repaired from a backup."""
    settings = _log_of(settings, 12)
    [damaged_file] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    original = damaged_file.read_bytes()
    backup = tmp_path / "backup"
    shutil.copytree(damaged_file.parent, backup / "audit.records")
    _flip_in_frame(damaged_file, 6)
    forged = _crcs_recomputed(damaged_file, leaves=True)
    rows, _used = decode(forged[HEADER.size:])
    assert len(rows) == 12 and all(hashlib.sha256(b"\x00" + r[2]).digest() == r[1] for r in rows)
    assert forged != original and len(forged) == len(original)  # record 6 altered, every hash and CRC right
    note = records_directory(audit_path(settings)).with_name("audit.damage") / f"{0:012d}"

    with Engine(settings) as engine:
        client, headers = _server(engine)
        assert client.get("/fhir/Patient/p1", headers=headers).status_code == 503
        held = _held(engine)
        _rename_in(damaged_file, forged)
        assert _refused_over(client, headers, 3)  # rechecked more than once: still refused
        assert _held(engine) == held and note.exists()  # nothing appended; the damage still noted

    with Engine(settings) as engine:  # a restart proves it too
        client, headers = _server(engine)
        assert _refused_over(client, headers, 2)
    verified = _cli(settings, "verify")
    assert verified.returncode == 1, verified.stdout

    _repaired_and_served(settings, backup, damaged_file, original, held, "put back")


def test_an_altered_and_re_hashed_file_no_server_noticed_is_repaired_not_passed_over(
        settings: Settings, tmp_path: Path) -> None:
    """``huren audit repair`` proves every file against the signed checkpoint, not only those a
    server noted damaged: one altered and re-hashed while no server ran is put back from a backup."""
    settings = _log_of(settings, 12)
    [path] = sorted(records_directory(audit_path(settings)).glob("*.records"))
    original = path.read_bytes()
    backup = tmp_path / "backup"
    shutil.copytree(path.parent, backup / "audit.records")
    _flip_in_frame(path, 3)
    _rename_in(path, _crcs_recomputed(path, leaves=True))
    assert _cli(settings, "verify").returncode == 1

    forged = path.read_bytes()
    nothing = _cli(settings, "repair")  # no backup: its own records again, refused by verification, undone
    assert nothing.returncode == 1 and "records 0-11 cannot be read" in nothing.stdout, nothing.stdout
    assert "which was undone" in nothing.stdout and path.read_bytes() == forged
    fixed = _cli(settings, "repair", "--from", str(backup))
    assert fixed.returncode == 0 and "records 0-11 put back" in fixed.stdout, fixed.stdout + fixed.stderr[-2000:]
    assert path.read_bytes() == original
    assert _cli(settings, "verify").returncode == 0
