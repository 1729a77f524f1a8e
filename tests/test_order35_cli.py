"""order35: ``huren quarantine replay ID --as-later`` -- the operator's decision from the server's console,
the same as ``POST /admin/quarantine/{id}/replay?as=later``: real files through ``huren replay``, the
real CLI, the real store. The existing verbs and flags are unchanged (``tests/test_ingest_replay.py``)."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from engine.cli import main
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_ingest_replay import site_env
from tests.test_msgfix34_cross_sender import FIXED, _by, _correction, _withdrawal
from tests.test_rvdocref32_probes import _three

__all__ = ["site_env"]


def _send(tmp_path: Path, name: str, text: str) -> int:
    f = tmp_path / f"{name}.hl7"
    f.write_bytes(text.encode("utf-8"))
    return main(["replay", str(f), "--quiet"])


def test_the_console_decides_a_refused_correction_is_later(site_env: Settings, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _send(tmp_path, "report", _by("RIS", _three("OC35-1", "OC35-X1"))) == 0
    assert _send(tmp_path, "withdrawal", _withdrawal("OC35-1W", "OC35-X1", "20261202110000")) == 0
    assert _send(tmp_path, "correction", _by("RIS", _correction("OC35-1C", "OC35-X1", "20261202120000"))) == 1
    refused, taken = message_id("FNXRMYY", "OC35-1C"), message_id("FNXRMYY", "OC35-1")
    capsys.readouterr()
    # not with --all nor --file; a message not refused for an untold order: said, exit 1
    assert main(["quarantine", "replay", "--all", "--as-later"]) == 2
    assert main(["quarantine", "replay", refused, "--as-later", "--file", str(tmp_path / "correction.hl7")]) == 2
    assert main(["quarantine", "replay", taken, "--as-later"]) == 1
    assert "not refused: there is nothing to decide" in capsys.readouterr().err
    assert main(["quarantine", "replay", refused]) == 1  # a plain replay: refused again
    assert f"{refused}: AE quarantined" in capsys.readouterr().out
    assert main(["quarantine", "replay", refused, "--as-later"]) == 0
    assert f"{refused}: AA processed taken as later" in capsys.readouterr().out  # (the decision used: ordfix35)
    who = f"cli:{getpass.getuser()}"
    with Engine(site_env) as engine:
        doc = engine.ingestor.messages.get(refused)
        assert doc["status"] == "processed"
        assert [(r["by"], r.get("as")) for r in doc["replays"]] == [("cli", None), (who, "later")]
        (obs_ref,) = [r for r in doc["resources"] if r.startswith("Observation/")
                      and engine.repository.read(*r.split("/")).get("valueString") == FIXED]
        assert engine.repository.read(*obs_ref.split("/"))["status"] == "corrected"
        (prov_ref,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
        agents = engine.repository.read(*prov_ref.split("/"))["agent"]
        assert agents[-1]["who"]["identifier"] == {"system": "urn:huren:cli-user", "value": who}, agents
