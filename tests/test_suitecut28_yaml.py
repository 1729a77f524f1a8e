"""Site files parsed by libyaml's parser (twenty-eighth round, suitecut28): the same data as PyYAML's
pure-Python reader, and a mistake reported as that reader reports it (its words, its line)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from mappings import sitefiles
from mappings.sitefiles import SiteError, read_yaml

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for folder in ("mappings", "engine") for p in (ROOT / folder).rglob("*")
               if p.suffix in (".yaml", ".yml"))


def test_every_shipped_yaml_file_reads_as_the_python_reader_reads_it() -> None:
    assert len(FILES) > 80 and sitefiles._FAST[sitefiles._Loader] is not sitefiles._Loader  # libyaml in use
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        for loader in (sitefiles._Loader, yaml.SafeLoader):
            expected = yaml.load(text, Loader=loader)
            if loader is sitefiles._Loader:
                expected = sitefiles._stringify_keys(expected)
            assert pickle.dumps(sitefiles._data(text, loader)) == pickle.dumps(expected), (path, loader)


def test_dates_stay_text_and_keys_strings(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("since: 2026-03-01\n1001: 血常规\nplain: yes\n", encoding="utf-8")
    assert read_yaml(tmp_path / "a.yaml").data == {"since": "2026-03-01", "1001": "血常规", "plain": True}
    assert read_yaml(tmp_path / "a.yaml", plain=True).data["since"].isoformat() == "2026-03-01"


@pytest.mark.parametrize("text", ["a: 1\nb: [1, 2\nc: 3\n", "a:\n  - 1\n - 2\n", "a: 1\n\tb: 2\n", "a: 'x\n"])
def test_a_mistake_is_reported_in_the_python_readers_words(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(yaml.MarkedYAMLError) as python:
        yaml.load(text, Loader=yaml.SafeLoader)
    mark = python.value.problem_mark or python.value.context_mark
    with pytest.raises(SiteError) as got:
        read_yaml(tmp_path / "bad.yaml")
    assert got.value.line == mark.line + 1 and got.value.problem == f"YAML syntax: {python.value.problem}"
