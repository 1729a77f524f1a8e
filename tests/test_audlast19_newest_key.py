"""Which key is the newest, for the note on an export header signed by an older one, came from the
order of the ``--public-key`` arguments alone: given newest first, a fresh export's header was
noted as signed by a retired key, and a retired key's header was not. When the export's own signed
checkpoints show the rotation, the newest is the key of the newest checkpoint, whatever the order
given; otherwise the order given. The report says which key it took, and from what. Real log,
real key files, the real rotation, the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from engine.audit.checkpoint import signed_note
from engine.audit.export import header_body, write_export
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.cli import main
from engine.settings import Settings
from tests.test_aud19_retired_key import rotated_log


def _verify(path: Path, pems: list[Path], capsys: pytest.CaptureFixture[str], *, text: bool = False) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--export", str(path), *([] if text else ["--json"]),
               *[a for p in pems for a in ("--public-key", str(p))]])
    return rc, capsys.readouterr().out


def _rotated_export(settings: Settings, tmp_path: Path) -> tuple[Path, list[Path], str, str]:
    """An export of a log whose key was rotated between its two checkpoints, and its public keys
    as PEM files, oldest first."""
    s, log, keys = rotated_log(settings, 3)
    path = tmp_path / "audit.jsonl"
    with path.open("wb") as out:
        write_export(log, out)  # (signs a checkpoint of its size first, with the new key)
    log.close()
    pems = []
    for n, pk in enumerate(keys.public.values()):
        pems.append(tmp_path / f"k{n}.pub.pem")
        pems[-1].write_bytes(pk.pem.encode())
    old_id, new_id = list(keys.public)
    return path, pems, old_id, new_id


def test_a_fresh_export_is_not_noted_whatever_the_order_of_the_keys(settings: Settings, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, pems, old_id, new_id = _rotated_export(settings, tmp_path)
    for order in (pems[::-1], pems):  # newest first, then oldest first
        rc, out = _verify(path, order, capsys)
        report = json.loads(out)
        assert rc == 0 and report["header_key"] == new_id, report
        assert not any("header is signed by key" in n for n in report["notes"]), report["notes"]
        assert report["newest_key"] == new_id and report["newest_from"] == "checkpoints", report
    rc, text = _verify(path, pems[::-1], capsys, text=True)
    assert rc == 0 and f"newest key taken: {new_id} (the key of the export's newest checkpoint" in text, text


def test_a_header_signed_by_the_key_the_checkpoints_retired_is_noted_whatever_the_order(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, pems, old_id, new_id = _rotated_export(settings, tmp_path)
    keys = AuditKeys.load(settings)
    [retired] = (settings.data_dir / "keys").glob("*.retired.pem")
    old = AuditKeys(KEY_NAME, serialization.load_pem_private_key(retired.read_bytes(), password=None),  # type: ignore[arg-type]
                    keys.public)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    lines[0]["note"] = signed_note(old, header_body(lines[0]))[2]  # the same statements, the retired key's signature
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    for order in (pems[::-1], pems):  # newest first, then oldest first
        rc, out = _verify(path, order, capsys)
        report = json.loads(out)
        assert any(f"header is signed by key {old_id}" in n and new_id in n for n in report["notes"]), report["notes"]
        assert report["header_key"] == old_id and report["newest_key"] == new_id, report
