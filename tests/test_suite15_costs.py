"""What keeps the suite (and every ``huren`` start) cheap stays true.

- Site files are parsed once per process for a given text (``mappings.sitefiles``): every Engine a
  test opens read ~100 of them with PyYAML's pure-Python parser, ~0.8 s of CPU each time. What a
  caller gets must still be its own: changing it changes nothing another caller reads, and a file
  whose text changed is read afresh.
- A ``huren`` process that serves no HTTP (the CLI, the ingest path) does not import FastAPI and
  pydantic (~0.75 s of CPU each start; tests run the CLI in its own process dozens of times).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mappings.sitefiles import read_yaml
from tests.conftest import REPO_ROOT


def test_a_site_file_read_twice_gives_each_reader_its_own_data(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("items:\n  - {code: '1001', names: [a, b]}\n1002: x\n", encoding="utf-8")
    for plain in (False, True):
        first = read_yaml(path, plain=plain)
        first.data["items"][0]["names"].append("changed")
        first.data["items"].append("added")
        again = read_yaml(path, plain=plain)
        assert again.data["items"] == [{"code": "1001", "names": ["a", "b"]}]
        assert (1002 in again.data) is plain and ("1002" in again.data) is not plain
        assert again.line_of(["items", 0]) == 2
    path.write_text("items: []\n", encoding="utf-8")
    assert read_yaml(path).data == {"items": []}


def test_the_cli_and_the_engine_import_no_web_framework() -> None:
    probe = "import sys, engine.cli, engine.engine; print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'pydantic', 'starlette'}))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[]"], out.stdout
