"""suitecut27: what an Engine's open keeps per process must not hide a change.

``Site.from_dirs`` hands out the last reading of the same folders while their files' stamps are
unchanged; ``SqliteStore`` creates the schema its users ask for together, before the next statement.
Real files, a real SQLite file, a raw ``sqlite3`` reader as another process would be.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

import mappings.site as site_module
from mappings.site import DEFAULTS_DIR, Site


def _write_site(folder: Path, name: str) -> None:
    entries = [{"code": "KEPTLAB", "name": name, "community": "kept", "timezone": "Asia/Shanghai"}]
    (folder / "institutions.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")


def test_a_folder_just_written_is_not_kept(tmp_path: Path) -> None:
    """Files younger than the settling time are read anew at every load (file times tick coarsely)."""
    _write_site(tmp_path, "县医院检验科")
    assert Site.from_dirs(DEFAULTS_DIR, tmp_path).institutions["KEPTLAB"].name == "县医院检验科"
    assert (str(DEFAULTS_DIR), str(tmp_path)) not in site_module._KEPT


def test_a_kept_reading_is_a_copy_and_a_change_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_module, "_SETTLED_NS", 0)  # every file counts as settled
    _write_site(tmp_path, "县医院检验科")
    first = Site.from_dirs(DEFAULTS_DIR, tmp_path)
    assert (str(DEFAULTS_DIR), str(tmp_path)) in site_module._KEPT
    again = Site.from_dirs(DEFAULTS_DIR, tmp_path)
    assert again == first and again.tables is first.tables  # the kept reading, shared (trim42b)
    with pytest.raises(TypeError, match="shared"):  # ... and read-only: a caller cannot change anybody's
        first.tables.clear()
    assert Site.from_dirs(DEFAULTS_DIR, tmp_path).tables == again.tables != {}

    _write_site(tmp_path, "县人民医院检验科")  # edited: the next load reads it
    assert Site.from_dirs(DEFAULTS_DIR, tmp_path).institutions["KEPTLAB"].name == "县人民医院检验科"
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "KEPTLAB.yaml").write_text("codes: {}\nunits: {}\n", encoding="utf-8")
    assert "KEPTLAB" in Site.from_dirs(DEFAULTS_DIR, tmp_path).code_maps  # a new file too


def test_schema_asked_for_is_there_for_another_connection(tmp_path: Path) -> None:
    from engine.repository.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path / "s.sqlite3")
    try:
        coll = store.collection("kept")
        coll.ensure_index(["a.b"], unique=True)
        store.flush_schema()
        with sqlite3.connect(tmp_path / "s.sqlite3") as raw:
            names = {n for (n,) in raw.execute("SELECT name FROM sqlite_master")}
        assert {"doc_kept", "ix_kept_a_b"} <= names
        coll.insert({"_id": "1", "a": {"b": 1}})
        with pytest.raises(Exception, match="kept"):
            coll.insert({"_id": "2", "a": {"b": 1}})  # the unique index is in force
        with store.transaction():  # an index made inside a transaction, dropped again
            coll.ensure_index(["c"])
        coll.drop_index(["c"])
        with sqlite3.connect(tmp_path / "s.sqlite3") as raw:
            assert raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'ix_kept_c'").fetchone() is None
    finally:
        store.close()
