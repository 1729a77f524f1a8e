"""``huren replay FILE...`` and ``huren quarantine list|show|replay``: real files, real CLI, real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.listeners.files import split_messages
from engine.cli import main
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import SAMPLES
from tests.test_ingest_durability import adt


def test_split_messages_any_line_ending_bom_and_envelopes() -> None:
    one, two = adt("S1"), adt("S2")
    for sep in (b"\r", b"\n", b"\r\n"):
        data = b"\xef\xbb\xbf" + (one + two).replace(b"\r", sep)
        assert split_messages(data) == [one, two], sep
    mixed = one.replace(b"\r", b"\n", 2) + b"\r\n\r\n" + two
    assert split_messages(mixed) == [one, two]
    batch = b"FHS|^~\\&|HIS\rBHS|^~\\&|HIS\r" + one + two + b"BTS|2\rFTS|1\r"
    assert split_messages(batch) == [one, two]
    mllp = b"\x0b" + one + b"\x1c\r\x0b" + two.replace(b"\r", b"\n") + b"\x1c\r"
    assert split_messages(mllp) == [one, two]


def test_every_sample_file_holds_one_message() -> None:
    files = [p for p in SAMPLES.rglob("*") if p.suffix in (".hl7", ".txt") and p.is_file()]
    assert files and all(len(split_messages(p.read_bytes())) == 1 for p in files)


@pytest.fixture
def site_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    return settings


def test_replay_files_and_folders(site_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "his").mkdir(parents=True)
    (feeds / "his" / "day1.hl7").write_bytes(b"\xef\xbb\xbf" + (adt("F1") + adt("F2")).replace(b"\r", b"\r\n"))
    (feeds / "unknown.txt").write_bytes(adt("F3", facility="NOSUCH"))
    code = main(["replay", str(feeds), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1  # something was refused
    assert "3 messages" in err and "1 rejected (AR)" in err and "unknown.txt#1: AR MSH-4.1" in err
    with Engine(site_env) as engine:
        for control in ("F1", "F2"):
            doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
            assert doc is not None and doc["channel"] == "replay"
    # replaying the same files again changes nothing: every message was already received
    main(["replay", str(feeds), "--quiet"])
    assert "3 already received" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "missing.hl7")]) == 2


def test_quarantine_verbs(site_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x.hl7"
    f.write_bytes(adt("QV1", facility="NOSUCH"))
    main(["replay", str(f), "--quiet"])
    capsys.readouterr()
    assert main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 quarantined") and "NOSUCH" in out and "QV1" in out
    doc_id = message_id("NOSUCH", "QV1")
    assert main(["quarantine", "show", doc_id]) == 0
    shown = capsys.readouterr().out
    assert '"reason": "MSH-4.1: sending facility' in shown and "MSH|^~\\&|HIS|NOSUCH|" in shown
    assert main(["quarantine", "replay", doc_id]) == 1  # still refused
    assert f"{doc_id}: AR quarantined" in capsys.readouterr().out
    assert main(["quarantine", "show", "m-missing"]) == 2
    assert main(["quarantine", "replay"]) == 2
