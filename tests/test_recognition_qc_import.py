"""``huren qc import FILE``: 室间质评 results (CSV or JSON) become QC periods in the site's qc.yaml,
and recognition follows them (a failed period suspends recognition of that item)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from engine.cli import main
from engine.engine import Engine
from engine.settings import Settings

CSV = """institution,item,passed,from,until,hr,source
FNZYY,CBC,不合格,2026-04-01,2026-06-30,,2026年第1次室间质评
FNXRMYY,all,合格,2026-01-01,2026-12-31,YC JS,省临检中心
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setenv("HUREN_SITE", str(folder))
    monkeypatch.setenv("HUREN_DATA_DIR", str(tmp_path / "var"))
    return folder


def rules_for(tmp_path: Path, site: Path):
    with Engine(Settings(data_dir=tmp_path / "var2", site=site)) as engine:
        return engine.recognition.rules


def test_csv_import_writes_periods_recognition_follows(tmp_path: Path, site: Path, capsys: pytest.CaptureFixture) -> None:
    assert rules_for(tmp_path, site).qc_passed("FNZYY", "CBC", date(2026, 5, 1))  # institutions.yaml: passed
    path = tmp_path / "eqa.csv"
    path.write_text(CSV, "utf-8")
    assert main(["qc", "import", str(path)]) == 0
    assert "2 results imported" in capsys.readouterr().out
    rules = rules_for(tmp_path, site)
    assert not rules.qc_passed("FNZYY", "CBC", date(2026, 5, 1))  # the failed period suspends it
    assert rules.qc_passed("FNZYY", "CBC", date(2026, 7, 1))
    assert rules.hr_scopes("FNXRMYY", "LFT", date(2026, 3, 1)) == ("YC", "JS")
    # re-importing the same results changes nothing; the shipped periods are kept
    before = (site / "qc.yaml").read_text("utf-8")
    assert main(["qc", "import", str(path)]) == 0
    assert (site / "qc.yaml").read_text("utf-8") == before
    assert "FNZYY, item: all" in before or "institution: FNZYY" in before


def test_json_import_and_dry_run(tmp_path: Path, site: Path) -> None:
    path = tmp_path / "eqa.json"
    path.write_text(json.dumps([{"institution": "FNYLWSY", "item": "UA", "passed": False, "from": "2026-02-01",
                                 "until": "2026-02-28"}]), "utf-8")
    assert main(["qc", "import", "--dry-run", str(path)]) == 0
    assert not (site / "qc.yaml").exists()
    assert main(["qc", "import", str(path)]) == 0
    assert not rules_for(tmp_path, site).qc_passed("FNYLWSY", "UA", date(2026, 2, 10))


@pytest.mark.parametrize(("text", "words"), [
    ("institution,item,passed,from,until\nFNZYY,CBC,maybe,2026-01-01,2026-02-01\n", "line 2: 'passed'"),
    ("institution,item,passed,from,until\nFNZYY,CBC,true,2026-03-01,2026-02-01\n", "before 'from'"),
    ("institution,item,passed,from,until\nFNZYY,NOPE,true,2026-01-01,2026-02-01\n", "unknown item 'NOPE'"),
    ("institution,item,passed,from,until\nFNZYY,CBC,true,,2026-02-01\n", "'from' is required"),
])
def test_bad_file_is_refused_nothing_written(tmp_path: Path, site: Path, text: str, words: str,
                                             capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "eqa.csv"
    path.write_text(text, "utf-8")
    assert main(["qc", "import", str(path)]) == 1
    assert words in capsys.readouterr().err
    assert not (site / "qc.yaml").exists()
