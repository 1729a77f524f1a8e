"""``huren audit verify --export`` (the real CLI entry point, in process) on exports whose header,
key, checkpoint or seal lines have another shape than huren writes, and on an export checked with
no trusted key.

Before: a header without ``origin`` or a key line without ``pem`` was a ``KeyError`` traceback, a
``pem`` or a checkpoint/seal ``note`` of another JSON type an ``AttributeError`` one; a header whose
``origin`` was null switched the origin check off, and one whose record or checkpoint count was
missing, null or a string switched off the check that count feeds -- each verified "OK", exit 0.
Now a malformed header or key line (or two seal lines) is "cannot verify", exit 2; an unreadable
checkpoint or seal note is a named problem, exit 1. An export checked against the keys inside it
(no ``--public-key``) -- which a forger who re-signed it with a key of their own also passes --
exits 3 and says so in Chinese and English; with the deployment's key it exits 0 (the forger's: 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.audit.events import build_event, requestor_agent
from engine.audit.export import write_export
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.cli import main
from engine.settings import Settings

Lines = list[dict[str, Any]]


def _export(settings: Settings, folder: Path) -> tuple[Path, Path]:
    """5 records, a checkpoint of the first 3 and a seal of all 5; the public key beside it."""
    s = settings.with_(data_dir=folder / "var", audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600,
                       audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    try:
        for i in range(5):
            log.record(build_event(action="read", origin="test/audfix18", outcome="0",
                                   agents=requestor_agent(kind="system", subject="his-1", address=None),
                                   patient_ids=["p1"], resources=[f"Observation/o{i}"]))
            if i == 2:
                log.checkpoint(force=True)
        log.seal()
        path = folder / "audit.jsonl"
        with path.open("wb") as out:
            write_export(log, out, checkpoint_first=False)
        pub = folder / "audit.pub.pem"
        pub.write_bytes(next(iter(log.keys.public.values())).pem.encode())
    finally:
        log.close()
    return path, pub


@pytest.fixture
def exported(settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    return _export(settings, tmp_path / "genuine")


def _set(kind: str, name: str, value: Any = ..., *, nth: int = 0) -> Callable[[Lines], None]:
    """Set (or with no value remove) field ``name`` of the ``nth`` line of type ``kind``."""
    def change(lines: Lines) -> None:
        line = [x for x in lines if x.get("type") == kind][nth]
        if value is ...:
            line.pop(name, None)
        else:
            line[name] = value
    return change


def _two_seals(lines: Lines) -> None:
    seal = next(x for x in lines if x.get("type") == "seal")
    lines.insert(lines.index(seal), dict(seal))


H = "huren-audit-export"
CANNOT = [(f"header {name}={value!r}", _set(H, name, value))
          for name, values in (("origin", (..., None, 7, "", ["a"])), ("records", (..., None, "5", [5], -1, True)),
                               ("checkpoints", (..., None, "1", {"n": 1}, False)), ("sealed", (None, "5", 5.5)),
                               ("version", (..., None, 2, "1")))
          for value in values] + [("two seal lines", _two_seals)]
CANNOT_SELF_KEYED = [(f"key pem={value!r}", _set("key", "pem", value))
                     for value in (..., None, 7, "", ["x"], "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")]
PROBLEM = [(f"{kind} note={value!r}", _set(kind, "note", value))
           for kind in ("checkpoint", "seal") for value in (None, 7, ["x"], {"a": 1})]


def _run(path: Path, pub: Path | None, *extra: str) -> int:
    return main(["audit", "verify", "--export", str(path), *(["--public-key", str(pub)] if pub else []), *extra])


def test_every_malformed_shape_says_so_without_a_traceback(exported: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path, pub = exported
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert [x["type"] for x in lines[:4]] == [H, "key", "checkpoint", "seal"]
    wrong: list[str] = []
    # (with a trusted key and without, in turn; a key line is not read when a trusted key is given)
    cases = [(c, t, (pub, None)[i % 2], 2) for i, (c, t) in enumerate(CANNOT)]
    cases += [(c, t, None, 2) for c, t in CANNOT_SELF_KEYED] + [(c, t, pub, 0) for c, t in CANNOT_SELF_KEYED[:2]]
    cases += [(c, t, (pub, None)[i % 2], 1) for i, (c, t) in enumerate(PROBLEM)]
    for case, change, key, want in cases:
        changed = [dict(x) for x in lines]
        change(changed)
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in changed))
        capsys.readouterr()
        try:
            got: object = _run(bad, key)
        except Exception as exc:  # noqa: BLE001 -- a traceback is what this test is about
            got = f"{type(exc).__name__}: {exc}"
        said = capsys.readouterr()
        if got != want or (want == 2 and "cannot verify" not in said.err) or (
                want == 1 and "unreadable" not in said.out):
            wrong.append(f"{case} ({'trusted key' if key else 'own keys'}): {got!r}, wanted {want}")
    assert not wrong, "\n".join(wrong)


def test_an_export_checked_against_its_own_keys_is_not_reported_as_proven(
        exported: tuple[Path, Path], settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, pub = exported
    assert _run(path, pub) == 0
    capsys.readouterr()
    assert _run(path, None) == 3
    out = capsys.readouterr().out
    assert "未证明真实" in out and "proves nothing against a forger" in out and "伪造者" in out
    assert _run(path, None, "--json") == 3
    said = json.loads(capsys.readouterr().out)
    assert said["ok"] is True and said["keys"] == "export"
    # a forger's log, signed with their own key and carrying it: the same answer without a trusted
    # key (3, not 0); refused with the deployment's key
    forged, _ = _export(settings, tmp_path / "forger")
    assert _run(forged, None) == 3
    capsys.readouterr()
    assert _run(forged, pub) == 1
    assert "unknown key id" in capsys.readouterr().out


def test_a_damaged_first_record_line_cannot_be_verified_a_later_one_is_named(
        exported: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What the README says of a damaged line: before the verifier knows its keys (here the first
    record line, which cannot be told from a key, checkpoint or seal line) nothing is verified,
    exit 2; from the second record line on it is named and the records after it still verify."""
    path, pub = exported
    lines = path.read_bytes().splitlines()
    first = next(i for i, x in enumerate(lines) if b'"type":"record"' in x)
    for at, want, said in ((first, 2, "line 5 is not JSON"), (first + 1, 1, "line 6 is not JSON (damaged")):
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(b"\n".join(lines[:at] + [lines[at][:40]] + lines[at + 1:]) + b"\n")
        capsys.readouterr()
        assert _run(bad, pub) == want
        out = capsys.readouterr()
        assert said in out.err + out.out, out
