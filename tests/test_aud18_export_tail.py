"""An exported audit log as an auditor gets it, checked offline by ``huren audit verify --export``
(the real CLI entry point, in process): a file cut short or lengthened past what its header
announces, or cut in the middle of a line, must be refused naming what is wrong -- not verified
"OK" with a note, and not a traceback. Records past the last signature are what such a cut
removes without any signature noticing, so the header's count is the only witness in the file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import rfc8785

from engine.audit import merkle
from engine.audit.events import build_event, requestor_agent
from engine.audit.export import verify_export, write_export
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.cli import main
from engine.settings import Settings

SIGNED, TOTAL = 6, 10


def _event(i: int) -> dict:
    return build_event(action="read", origin="test/aud18", outcome="0",
                       agents=requestor_agent(kind="system", subject="his-1", address="10.0.0.7"),
                       patient_ids=[f"p{i % 3}"], resources=[f"Observation/o{i}"])


@pytest.fixture
def exported(settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    """An export of 10 records, the first 6 under a signed checkpoint and 4 past it (an export made
    where the private key is not at hand signs nothing first), and the public key beside it."""
    s = settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    try:
        for i in range(TOTAL):
            log.record(_event(i))
            if i == SIGNED - 1:
                log.checkpoint(force=True)
        path = tmp_path / "audit.jsonl"
        with path.open("wb") as out:
            assert write_export(log, out, checkpoint_first=False)["written"] == TOTAL
        pub = tmp_path / "audit.pub.pem"
        pub.write_bytes(next(iter(log.keys.public.values())).pem.encode())
    finally:
        log.close()
    return path, pub


def _cli(path: Path, pub: Path) -> int:
    return main(["audit", "verify", "--export", str(path), "--public-key", str(pub)])


def _records(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if b'"type":"record"' in line]


def test_the_untouched_export_verifies_and_states_its_unsigned_tail(exported: tuple[Path, Path],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path, pub = exported
    report = verify_export(path, [pub.read_bytes()])
    assert report.ok and report.records == TOTAL and report.unsigned == TOTAL - SIGNED
    assert _cli(path, pub) == 0
    assert "4 record(s) (6..9) lie past the last signed checkpoint" in capsys.readouterr().out


def test_records_cut_from_the_unsigned_tail_are_refused(exported: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path, pub = exported
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(lines[:-2]) + b"\n")  # records 8 and 9 gone
    report = verify_export(path, [pub.read_bytes()])
    assert not report.ok and report.first_bad_record == 8
    assert report.problems[0].kind == "truncated"
    assert _cli(path, pub) == 1
    assert "export truncated: its header announces 10 records, the file holds 8" in capsys.readouterr().out


def test_a_record_added_past_the_exported_ones_is_refused(exported: tuple[Path, Path]) -> None:
    path, pub = exported
    extra = orjson.loads(_records(path)[-1])
    data = orjson.loads(extra["data"])
    data["id"] = f"audit-{TOTAL}"
    raw = rfc8785.dumps(data)
    extra.update(seq=TOTAL, data=raw.decode(), hash=merkle.leaf_hash(raw).hex())
    path.write_bytes(path.read_bytes() + orjson.dumps(extra) + b"\n")
    report = verify_export(path, [pub.read_bytes()])
    assert not report.ok and report.first_bad_record == TOTAL
    assert report.problems[0].kind == "inserted"


def test_a_file_cut_inside_a_line_is_a_report_not_a_traceback(exported: tuple[Path, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, pub = exported
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.rindex(b'"type":"record"') + 40])  # a copy cut short mid-record
    report = verify_export(path, [pub.read_bytes()])
    assert not report.ok and report.first_bad_record == TOTAL - 1
    assert report.problems[0].kind == "truncated"
    assert _cli(path, pub) == 1
    assert "line 13 is not JSON" in capsys.readouterr().out


def test_a_line_that_is_not_an_object_is_named(exported: tuple[Path, Path]) -> None:
    path, pub = exported
    lines = path.read_bytes().splitlines()
    lines.insert(-3, b"[1, 2]")
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = verify_export(path, [pub.read_bytes()])
    assert not report.ok and any("not a JSON object" in p.message for p in report.problems)


def test_a_file_that_is_no_export_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "not-an-export.jsonl"
    path.write_bytes(b'{"type": "huren-audit-expo')  # a header cut inside itself
    pub = tmp_path / "k.pem"
    pub.write_bytes(b"")
    assert _cli(path, pub) == 2
    assert "cannot verify" in capsys.readouterr().err


def test_the_newest_checkpoint_removed_is_refused_not_reported_as_an_unsigned_tail(
        exported: tuple[Path, Path]) -> None:
    """Without its only checkpoint every record is "unsigned" and could then be rewritten freely:
    the header's checkpoint count names the removal."""
    path, pub = exported
    lines = [line for line in path.read_bytes().splitlines() if b'"type":"checkpoint"' not in line]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = verify_export(path, [pub.read_bytes()])
    assert not report.ok
    assert "header announces 1 checkpoint(s), the file holds 0: checkpoints removed" in report.problems[0].message


def test_the_seal_removed_is_refused(settings: Settings, tmp_path: Path) -> None:
    """Exported where the private key is not at hand (nothing signed first), the seal alone signs
    the records past the newest checkpoint: without its line they read as an unsigned tail."""
    s = settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    try:
        for i in range(4):
            log.record(_event(i))
        log.checkpoint(force=True)
        log.record(_event(4))
        assert log.seal() is not None
        path = tmp_path / "sealed.jsonl"
        with path.open("wb") as out:
            write_export(log, out, checkpoint_first=False)
        pem = next(iter(log.keys.public.values())).pem.encode()
    finally:
        log.close()
    whole = verify_export(path, [pem])
    assert whole.ok and whole.unsigned == 0 and whole.sealed == 5
    path.write_bytes(b"\n".join(line for line in path.read_bytes().splitlines() if b'"type":"seal"' not in line))
    cut = verify_export(path, [pem])
    assert not cut.ok and "announces a seal of 5 records, the file holds none" in cut.problems[0].message
