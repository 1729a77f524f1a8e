"""A retired audit key that signs again is told (``huren audit verify``'s report, online and offline).

After ``huren audit rotate-key`` the old private key is retired (renamed, kept on disk) and its
public half still verifies the checkpoints it signed. A checkpoint it signs *after* the new key
took over verified exactly like any other, with nothing said: that is what a retired private key
in someone else's hands (a copy kept, a backup leaked) signing a forged tail looks like. It is also
what a server that was not restarted after the rotation does, legitimately, so it is a note, not a
failure. Real log, real key files, the real rotation.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from engine.audit.export import verify_export, write_export
from engine.audit.keys import KEY_NAME, AuditKeys, rotate_keys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.audit.verify import verify_online
from engine.settings import Settings
from tests.test_aud19_signed_header import _event


def rotated_log(settings: Settings, per_key: int) -> tuple[Settings, AuditLog, AuditKeys]:
    """A log (no checkpoint but forced ones, no seal) of ``per_key`` events and a checkpoint under the first key,
    the key rotated (``rotate_keys``: the old one retired, kept), and ``per_key`` more events under the new key,
    not yet checkpointed: its settings, the log (open) and its keys. audmend19's and audlast19's key tests too."""
    s = settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=3600, audit_seal_seconds=0)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    log = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    for i in range(per_key):
        log.record(_event(i))
    log.checkpoint(force=True)
    log.close()
    rotate_keys(s)
    keys = AuditKeys.load(s)
    log = AuditLog(open_audit_store(s), s, keys)
    for i in range(per_key, 2 * per_key):
        log.record(_event(i))
    return s, log, keys


def test_a_checkpoint_signed_by_a_retired_key_after_the_rotation_is_noted(settings: Settings,
                                                                          tmp_path: Path) -> None:
    s, log, keys = rotated_log(settings, 3)
    log.checkpoint(force=True)
    trusted = AuditKeys.from_public_pems(KEY_NAME, [k.pem.encode() for k in keys.public.values()])
    clean = verify_online(log, trusted)
    assert clean.ok and not any("retired key" in n for n in clean.notes)  # a rotation alone says nothing

    [retired] = (s.data_dir / "keys").glob("*.retired.pem")
    old = serialization.load_pem_private_key(retired.read_bytes(), password=None)
    log.keys = AuditKeys(KEY_NAME, old, keys.public)  # type: ignore[arg-type]
    for i in range(6, 8):
        log.record(_event(i))
    log.checkpoint(force=True)
    report = verify_online(log, trusted)
    assert report.ok and report.checkpoints == 3
    assert any("checkpoint 2 is signed by key" in n and "retired key" in n for n in report.notes), report.notes
    path = tmp_path / "audit.jsonl"
    with path.open("wb") as out:
        write_export(log, out, checkpoint_first=False)
    offline = verify_export(path, [k.pem.encode() for k in keys.public.values()])
    assert offline.ok and any("retired key" in n for n in offline.notes)
    log.close()
