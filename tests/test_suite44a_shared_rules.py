"""The recognition rules an Engine's start builds are built once per process for the same inputs
(``load_rules(..., shared=True)``, suite44a): every test's Engine had read, checked and built them
anew (~1.4 ms of CPU of its ~17 ms open). Shared only while every input is the same -- each rules
file's path and text, the site's institutions and code-map entries; an edited file is read anew, a
reload builds new rules, and what the build logs is logged by every start that gets them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ITEMS = (REPO / "mappings" / "recognition" / "items.yaml").read_text("utf-8")
CBC_LINE = "window_days: 7,  scope: [community], reasons: [R01, R02, R03]}"


def _engine(tmp_path: Path, name: str, site: Path | None = None) -> Engine:
    return Engine(Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0, site=site))


def _site_with_cbc_window(folder: Path, days: int) -> Path:
    folder.mkdir(exist_ok=True)
    assert CBC_LINE in ITEMS
    (folder / "items.yaml").write_text(ITEMS.replace(CBC_LINE, CBC_LINE.replace("7,", f"{days},")), encoding="utf-8")
    return folder


def test_two_engines_on_the_same_files_share_one_rules(tmp_path: Path) -> None:
    with _engine(tmp_path, "one") as one, _engine(tmp_path, "two") as two:
        assert one.recognition.rules is two.recognition.rules
        assert one.recognition.rules.items["CBC"].window_days == 7


def test_an_edited_rules_file_is_read_anew_by_the_next_engine(tmp_path: Path) -> None:
    site = _site_with_cbc_window(tmp_path / "site", 5)
    with _engine(tmp_path, "one", site) as one:
        first = one.recognition.rules
        assert first.items["CBC"].window_days == 5
    _site_with_cbc_window(site, 9)  # the same folder, the same file name, new text
    with _engine(tmp_path, "two", site) as two:
        assert two.recognition.rules is not first
        assert two.recognition.rules.items["CBC"].window_days == 9
    with _engine(tmp_path, "shipped") as shipped:  # the shipped files: their own rules
        assert shipped.recognition.rules.items["CBC"].window_days == 7


def test_another_site_institution_is_other_rules(tmp_path: Path) -> None:
    """The site's institutions are an input: a site adding one gets rules that know it."""
    site = tmp_path / "site"
    site.mkdir()
    shipped = (REPO / "mappings" / "institutions.yaml").read_text("utf-8")
    (site / "institutions.yaml").write_text(
        shipped + "\n- {code: SUITE44A, name: 试验医院, community: 阜宁, grade: 一级}\n", encoding="utf-8")
    with _engine(tmp_path, "plain") as plain, _engine(tmp_path, "more", site) as more:
        assert "SUITE44A" not in plain.recognition.rules.institutions
        assert "SUITE44A" in more.recognition.rules.institutions
        assert more.recognition.rules is not plain.recognition.rules


def test_a_reload_builds_new_rules(tmp_path: Path) -> None:
    """``Recognition.reload`` (SIGHUP, ``POST /admin/reload``) re-reads and builds: a new object, which the
    write hook's per-group pass-overs tell apart by identity (``tests/test_perf22_recog_reload.py``)."""
    with _engine(tmp_path, "one") as one:
        shared = one.recognition.rules
        fresh = one.recognition.reload()
        assert fresh is not shared and one.recognition.rules is fresh
        assert fresh.items == shared.items and fresh.prices == shared.prices  # the same files
    with _engine(tmp_path, "two") as two:
        assert two.recognition.rules is shared  # a reload leaves the shared ones as they were


def test_a_code_map_entry_naming_no_item_is_logged_by_every_start(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    site = tmp_path / "site"
    (site / "codes").mkdir(parents=True)
    code_map = (REPO / "mappings" / "codes" / "FNXRMYY.yaml").read_text("utf-8")
    assert "item: CBC}" in code_map
    (site / "codes" / "FNXRMYY.yaml").write_text(code_map.replace("item: CBC}", "item: NO-SUCH-ITEM}", 1),
                                                   encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="huren.recognition")
    for name in ("one", "two"):
        caplog.clear()
        with _engine(tmp_path, name, site):
            pass
        said = [r.getMessage() for r in caplog.records if "unknown recognition item" in r.getMessage()]
        assert said == ["code map of FNXRMYY: XCG -> unknown recognition item 'NO-SUCH-ITEM' ignored"], (name, said)
