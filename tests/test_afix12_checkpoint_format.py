"""C2SP ``tlog-checkpoint`` extension lines: any, after the root hash, under the signature; and an
export carries the seal, so records only the seal signs are signed offline too."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from engine.audit.checkpoint import CheckpointError, parse_checkpoint, signed_note, verify_checkpoint
from engine.audit.export import verify_export, write_export
from engine.audit.keys import AuditKeys
from engine.settings import Settings
from tests.test_audit_log import event, quiet_log


def _note(keys: AuditKeys, body: str) -> str:
    return signed_note(keys, body)[2]


def test_an_unknown_extension_line_is_accepted_and_signed_over(settings: Settings) -> None:
    keys = AuditKeys.load(settings, create=True)
    root = base64.b64encode(bytes(range(32))).decode()
    body = f"example.org/audit\n12\n{root}\ntime 2026-12-01T00:00:00.000000Z\nseq 3\nrecovered 9\nwitnessed-by x y\n"
    cp = parse_checkpoint(_note(keys, body))
    assert (cp.size, cp.seq, cp.recovered, cp.time) == (12, 3, 9, "2026-12-01T00:00:00.000000Z")
    assert verify_checkpoint(cp, keys) and cp.body() == body
    altered = parse_checkpoint(cp.text.replace("witnessed-by x y", "witnessed-by x z"))
    assert not verify_checkpoint(altered, keys)  # the unknown line is under the signature
    # extension lines in another order, and the five-line form of earlier releases
    reordered = f"example.org/audit\n12\n{root}\nnote a\nseq 3\ntime 2026-12-01T00:00:00.000000Z\n"
    assert parse_checkpoint(_note(keys, reordered)).seq == 3
    plain = f"example.org/audit\n12\n{root}\ntime 2026-12-01T00:00:00.000000Z\nseq 3\n"
    assert parse_checkpoint(_note(keys, plain)).recovered is None
    for bad in (f"example.org/audit\n12\n{root}\nseq 3\n",  # no time
                f"example.org/audit\n12\n{root}\ntime t\nseq 3\nseq 4\n",  # seq twice
                f"example.org/audit\n12\n{root}\ntime t\n\nseq 3\n"):  # an empty line in the body
        with pytest.raises(CheckpointError):
            parse_checkpoint(_note(keys, bad))


def test_an_export_carries_the_seal(settings: Settings, tmp_path: Path) -> None:
    s, log = quiet_log(settings)
    try:
        for i in range(10):
            log.record(event(i))
            if i == 3:
                log.checkpoint()
        seal = log.seal()
        assert seal is not None and seal.size == 10
        out = tmp_path / "export.jsonl"
        with out.open("wb") as fh:
            write_export(log, fh, checkpoint_first=False)
        report = verify_export(out)
        assert report.ok and report.sealed == 10 and report.signed_size == 10 and report.unsigned == 0
        # the seal's signature spoiled in the file: the verifier says so
        text = out.read_text()
        note = seal.text
        sig = note.rstrip("\n").rsplit(" ", 1)[1]
        spoiled = sig[:40] + ("A" if sig[40] != "A" else "B") + sig[41:]
        out.write_text(text.replace(sig, spoiled, 1))
        bad = verify_export(out)
        assert not bad.ok and bad.unsigned == 6
    finally:
        log.close()
        log.store.close()
