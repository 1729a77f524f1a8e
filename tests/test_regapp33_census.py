"""regapp33: ``huren identity authorities`` prints each CX-4 on one line, and nothing of it that a terminal
or a line-splitting reader would act on (rvidfix32's LOW, checked further): the parser lets NEL (U+0085),
the line separator (U+2028), the C1 control CSI (U+009B) and the bidi override U+202E through inside a
CX-4. A real store, the messages sent over ``POST /hl7v2``, the real sub-verb."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.cli import identity_authorities
from engine.settings import Settings
from tests.hl7_calls import post
from tests.test_rvidentity32_probes import adt


def test_the_census_escapes_every_unprintable_character_of_a_cx4(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as eng, TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        post(client, adt("RCE1", "RCE1^^^HIS\x85X\u2028Y\x9bZ\u202e病案科^MR", "钟^一", "19610101", "F"))
        post(client, adt("RCE2", "RCE2^^^体检中心^MR", "钟^二", "19620202", "M"))
    assert identity_authorities(argparse.Namespace(), settings) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.count("\t") == 4 for line in lines), lines
    assert "\tHIS\\x85X\\u2028Y\\x9bZ\\u202e病案科\t1\tapart" in out, out
    assert "\t体检中心\t1\tapart" in out, out
    assert all(c.isprintable() or c in "\t\n" for c in out), out
