"""``huren audit verify`` with a ``--public-key`` it cannot read: "cannot verify", exit 2 -- the code
``--help`` documents -- never a traceback, which a script reads as exit 1 ("a problem found", i.e.
tampering). Both the export and the data directory's log; a missing file and a file that is not an
Ed25519 public key. Before: the missing file was a ``FileNotFoundError`` traceback (exit 1) in both,
and a non-key file a ``ValueError`` traceback when verifying the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.settings import Settings
from tests.test_audfix18_export_shapes import _export


@pytest.mark.parametrize("mode", ["export", "online"])
@pytest.mark.parametrize("key", ["missing", "not-a-key"])
def test_an_unreadable_public_key_is_cannot_verify(mode: str, key: str, settings: Settings, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path, pub = _export(settings, tmp_path / "genuine")
    bad = tmp_path / "bad.pem"
    if key == "not-a-key":
        bad.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    monkeypatch.setenv("HUREN_DATA_DIR", str(tmp_path / "genuine" / "var"))  # the log the export came from
    args = ["audit", "verify", "--public-key", str(bad)] + (["--export", str(path)] if mode == "export" else [])
    capsys.readouterr()
    assert main(args) == 2
    assert "cannot" in capsys.readouterr().err
    # the same call with the real key verifies (the failure above is the key's, not the log's)
    good = [a if a != str(bad) else str(pub) for a in args]
    assert main(good) in (0, 3)
