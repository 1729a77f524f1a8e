"""What ``huren audit verify`` may call proven (the real CLI entry point, in process, on a real log).

(1) Online with no ``--public-key`` it checked the signatures against the public keys in
``data_dir/keys``, beside the log: whoever could alter the log could put a key of their own there
and re-sign, and the answer was "OK", exit 0. Now it says NOT PROVEN AUTHENTIC and exits 3, as an
export checked against its own keys does; with the deployment's key given, 0.
(2) An export's header was not signed: a forger who removed the newest checkpoint, the seal and the
records only they signed, and edited the header's counts to match, got "OK" (the records past the
remaining signature: "unsigned"), and one who rewrote and re-hashed a record past the newest
signature likewise. Now the header is signed with the log's key (origin, records, the root of them
all, checkpoints, seal, when and by whom): an edited header is a named problem, a record rewritten
past the checkpoints fails the signed root, and a header whose signature was taken away (or an
earlier release's) is "not proven complete", exit 3, never 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import rfc8785

from engine.audit import merkle
from engine.audit.events import build_event, requestor_agent
from engine.audit.export import write_export
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.cli import main
from engine.settings import Settings

SIGNED, TOTAL = 6, 10


def _event(i: int) -> dict:
    return build_event(action="read", origin="test/aud19", outcome="0",
                       agents=requestor_agent(kind="system", subject="his-1", address="10.0.0.7"),
                       patient_ids=[f"p{i % 3}"], resources=[f"Observation/o{i}"])


@pytest.fixture
def made(settings: Settings, tmp_path: Path) -> tuple[Settings, Path, Path]:
    """A log of 10 records, checkpoints at 3 and 6 and none past (no seal), its export (made
    without signing a checkpoint first, so records 6..9 are past every checkpoint) and the public
    key kept apart from the data directory."""
    s = settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=0)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    try:
        for i in range(TOTAL):
            log.record(_event(i))
            if i + 1 in (3, SIGNED):
                log.checkpoint(force=True)
        path = tmp_path / "audit.jsonl"
        with path.open("wb") as out:
            assert write_export(log, out, checkpoint_first=False)["written"] == TOTAL
        pub = tmp_path / "trusted.pub.pem"
        pub.write_bytes(next(iter(log.keys.public.values())).pem.encode())
    finally:
        log.close()
    return s, path, pub


def _online(settings: Settings, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    return main(["audit", "verify", *extra])


def _export(path: Path, pub: Path | None, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--export", str(path), "--json", *(["--public-key", str(pub)] if pub else [])])
    return rc, json.loads(capsys.readouterr().out)


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _write(path: Path, lines: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(obj) + b"\n" for obj in lines))


def test_online_without_a_trusted_key_is_not_proven(made: tuple[Settings, Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings, _, pub = made
    capsys.readouterr()
    assert _online(settings, monkeypatch) == 3
    out = capsys.readouterr().out
    assert "NOT PROVEN AUTHENTIC" in out and "data_dir/keys" in out
    assert _online(settings, monkeypatch, "--json") == 3
    said = json.loads(capsys.readouterr().out)
    assert said["ok"] is True and said["keys"] == "disk" and said["proven"] is False
    assert _online(settings, monkeypatch, "--public-key", str(pub)) == 0
    assert "NOT PROVEN" not in capsys.readouterr().out


def test_a_signed_header_verifies_and_says_who_and_when(made: tuple[Settings, Path, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    rc, said = _export(path, pub, capsys)
    assert rc == 0 and said["ok"] and said["header"] == "signed" and said["proven"] is True
    assert said["exported_by"] and said["exported"].startswith("20")
    assert said["records"] == TOTAL and said["signed_size"] == SIGNED


def test_newest_checkpoint_and_its_records_cut_with_the_counts_edited(made: tuple[Settings, Path, Path],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The forger keeps the first checkpoint (3 records) and records 0..2, and edits the header's counts."""
    _, path, pub = made
    lines = _lines(path)
    header, rest = lines[0], lines[1:]
    kept = [x for x in rest if x["type"] == "key"] + [x for x in rest if x["type"] == "checkpoint"][:1] + \
        [x for x in rest if x["type"] == "record"][:3]
    header.update(records=3, checkpoints=1)
    _write(path, [header, *kept])
    rc, said = _export(path, pub, capsys)
    assert rc == 1 and not said["ok"]
    assert any("the header was edited" in p["message"] for p in said["problems"])
    del header["note"]  # and the signature taken away: not proven, never 0
    _write(path, [header, *kept])
    rc, said = _export(path, pub, capsys)
    assert rc == 3 and said["ok"] and said["header"] == "unsigned" and said["proven"] is False


def test_a_record_past_the_checkpoints_rewritten_and_rehashed(made: tuple[Settings, Path, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _, path, pub = made
    lines = _lines(path)
    rec = next(x for x in lines if x["type"] == "record" and x["seq"] == 8)
    data = orjson.loads(rec["data"])
    data["entity"] = []  # whose record was read: gone
    raw = rfc8785.dumps(data)
    rec.update(data=raw.decode(), hash=merkle.leaf_hash(raw).hex())
    _write(path, lines)
    rc, said = _export(path, pub, capsys)
    assert rc == 1 and said["problems"][0]["kind"] == "root" and said["first_bad_record"] == SIGNED
    assert "signed header" in said["problems"][0]["message"]


def test_the_header_signed_with_another_key_is_refused(made: tuple[Settings, Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A forger's key re-signs the edited header: unknown key id against the trusted key."""
    from engine.audit.checkpoint import signed_note
    from engine.audit.export import header_body

    _, path, pub = made
    lines = _lines(path)
    lines[0]["by"] = "someone-else@elsewhere"
    forger = AuditKeys.load(Settings(data_dir=tmp_path / "forger"), create=True)
    lines[0]["note"] = signed_note(forger, header_body(lines[0]))[2]
    _write(path, lines)
    rc, said = _export(path, pub, capsys)
    assert rc == 1 and any(p["kind"] == "signature" and "header" in p["message"] for p in said["problems"])


def trusted(data_dir: Path, args: tuple[str, ...] | list[str]) -> list[str]:
    """``--public-key`` for each public key a test's own log made (kept in its data directory), for
    the tests that run ``huren audit verify`` online to check something other than whose key to
    trust: without one the check exits 3 (not proven). Nothing for another verb or an export."""
    if not args or args[0] != "verify" or "--export" in args or "--public-key" in args:
        return []
    return [a for pem in sorted((Path(data_dir) / "keys").glob("*.pub.pem")) for a in ("--public-key", str(pem))]
