"""An export header signed by a retired key is noted, and the report names the key that signed it.

After ``huren audit rotate-key`` the old private key is retired but kept on disk. Whoever holds it
could take an export, cut it back to the old key's last checkpoint, forge records past it and sign
the header with the old key: ``verify --export`` with both keys given said nothing. Real log, real
key files, the real rotation, the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization

from engine.audit import merkle
from engine.audit.checkpoint import signed_note
from engine.audit.export import header_body, write_export
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.cli import main
from engine.settings import Settings
from tests.test_aud19_retired_key import rotated_log


def _verify(path: Path, pems: list[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--export", str(path), "--json", *[a for p in pems for a in ("--public-key", str(p))]])
    return rc, json.loads(capsys.readouterr().out)


def test_a_cut_back_export_resigned_by_the_retired_key_is_noted(settings: Settings, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    s, log, keys = rotated_log(settings, 4)
    log.checkpoint(force=True)
    path = tmp_path / "audit.jsonl"
    with path.open("wb") as out:
        write_export(log, out, checkpoint_first=False)
    log.close()
    pems = []
    for n, pk in enumerate(keys.public.values()):  # oldest first, as GET /audit/public-key lists them
        pems.append(tmp_path / f"k{n}.pub.pem")
        pems[-1].write_bytes(pk.pem.encode())
    old_id, new_id = list(keys.public)

    rc, honest = _verify(path, pems, capsys)
    assert rc == 0 and honest["header_key"] == new_id, honest
    assert not any("header is signed by key" in n for n in honest["notes"])

    # the forger holds the retired private key: cut back to its checkpoint, forge past it, re-sign
    [retired] = (s.data_dir / "keys").glob("*.retired.pem")
    old = AuditKeys(KEY_NAME, serialization.load_pem_private_key(retired.read_bytes(), password=None),  # type: ignore[arg-type]
                    keys.public)
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    header, rest = lines[0], lines[1:]
    kept = [x for x in rest if x["type"] == "key"] + [x for x in rest if x["type"] == "checkpoint" and x["size"] == 4]
    records = [x for x in rest if x["type"] == "record"][:4]
    for seq in (4, 5):  # two records past the old key's checkpoint, as the forger wants them
        data = orjson.loads(records[0]["data"])
        data["id"], data["seq"] = f"audit-{seq}", seq
        raw = rfc8785.dumps(data)
        records.append({"type": "record", "seq": seq, "hash": merkle.leaf_hash(raw).hex(), "data": raw.decode()})
    frontier = merkle.Frontier()
    frontier.extend([merkle.leaf_hash(r["data"].encode()) for r in records])
    header.update(records=len(records), checkpoints=1, root=frontier.root().hex())
    header.pop("sealed", None)
    header["note"] = signed_note(old, header_body(header))[2]
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in [header, *kept, *records]))

    rc, forged = _verify(path, pems, capsys)
    assert forged["header"] == "signed" and forged["header_key"] == old_id, forged
    assert any(f"header is signed by key {old_id}" in n and new_id in n for n in forged["notes"]), forged["notes"]
    capsys.readouterr()
    main(["audit", "verify", "--export", str(path), *[a for p in pems for a in ("--public-key", str(p))]])
    assert f"is signed by key {old_id}" in capsys.readouterr().out
