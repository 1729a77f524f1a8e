"""A new SQLite store's tables copied from the process's template (``engine.store_template``, suite44a):
the store an Engine's start makes from the copy has the tables and indexes, by the same statements in
the same order, and the rows, that the start without it makes; a start asking for other tables than the
template's ends with exactly its own (the template's others dropped) and stops the template; a start that
fails leaves what a failed start without a template leaves."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import engine.engine as engine_module
from engine import store_template
from engine.engine import Engine
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings


@pytest.fixture
def fresh_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module's process state as at a process's start, put back after the test."""
    monkeypatch.setattr(store_template, "_asked", None)
    monkeypatch.setattr(store_template, "_template", None)
    monkeypatch.setattr(store_template, "_off", False)


def _settings(tmp_path: Path, name: str) -> Settings:
    return Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0)


def _schema(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                            "ORDER BY rowid").fetchall()


def _rows(path: Path) -> dict[str, Any]:
    """Each table's rows by their first column (ids, keys); what differs by the clock or the keys (a stored
    Measure's time, the audit's, a key's bytes) is in the other columns."""
    with sqlite3.connect(path) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        out: dict[str, Any] = {t: sorted(str(r[0]) for r in conn.execute(f'SELECT * FROM "{t}"')) for t in tables}
        out["user_version"] = conn.execute("PRAGMA user_version").fetchone()[0]
        out["fhir_meta"] = sorted(conn.execute("SELECT * FROM fhir_meta").fetchall())
    return out


def test_a_copied_store_is_the_store_its_start_makes(tmp_path: Path, fresh_template: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with Engine(_settings(tmp_path, "first")) as first:
        assert first.store not in store_template._copied
    assert store_template._asked and store_template._template is None  # told, not yet made
    with Engine(_settings(tmp_path, "second")) as second:
        template = store_template._template
        assert template is not None and second.store.created is False  # (the start over)
        assert second.store.asked is None and store_template._copied.get(second.store) is template  # settled
        assert template.file.exists() and template.opened.exists()
    made = _settings(tmp_path, "first").sqlite_path
    copied = _settings(tmp_path, "second").sqlite_path
    assert _schema(copied) == _schema(made)
    assert _rows(copied) == _rows(made)
    assert not store_template._off
    with Engine(_settings(tmp_path, "third")) as third:  # the copy is read and written as any store
        assert third.repository.read("Measure", "huren-recognition-rate") is not None
    assert _schema(_settings(tmp_path, "third").sqlite_path) == _schema(made)


def test_a_start_asking_for_fewer_tables_ends_with_its_own(tmp_path: Path, fresh_template: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with Engine(_settings(tmp_path, "first")), Engine(_settings(tmp_path, "second")):
        pass
    assert store_template._template is not None
    ask = SqliteStore._schema_statement

    def without_charges(self: SqliteStore, name: str, sql: str) -> None:
        if name not in ("ix_recognition_charges_service",):
            ask(self, name, sql)

    monkeypatch.setattr(SqliteStore, "_schema_statement", without_charges)
    with Engine(_settings(tmp_path, "fewer")) as fewer:
        assert "ix_recognition_charges_service" not in fewer.store._schema
    monkeypatch.setattr(store_template, "_template", None)  # the same start without the copy
    monkeypatch.setattr(store_template, "_off", True)
    with Engine(_settings(tmp_path, "made")):
        pass
    names = [row[1] for row in _schema(_settings(tmp_path, "fewer").sqlite_path)]
    assert "ix_recognition_charges_service" not in names
    assert _schema(_settings(tmp_path, "fewer").sqlite_path) == _schema(_settings(tmp_path, "made").sqlite_path)


def test_a_start_asking_for_another_table_stops_the_template(tmp_path: Path, fresh_template: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Engine(_settings(tmp_path, "first")), Engine(_settings(tmp_path, "second")):
        pass
    monkeypatch.setattr(engine_module, "publish_measures", _publish_and_ask(engine_module.publish_measures))
    with Engine(_settings(tmp_path, "more")) as more:
        assert "doc_suite44a_more" in more.store._unsure  # (made inside the start's transaction)
    assert store_template._off
    names = [row[1] for row in _schema(_settings(tmp_path, "more").sqlite_path)]
    assert "doc_suite44a_more" in names
    with Engine(_settings(tmp_path, "after")) as after:  # made as always from now on
        assert after.store not in store_template._copied


def _publish_and_ask(publish: Any) -> Any:
    def publishing(repository: Any, definitions: Any) -> None:
        repository.store.collection("suite44a_more")
        publish(repository, definitions)
    return publishing


def test_a_failed_start_on_a_copy_leaves_the_fhir_layout_alone(tmp_path: Path, fresh_template: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``tests/test_engopen31_start.py``'s, on a copied store: the parts' tables were the start's."""
    with Engine(_settings(tmp_path, "first")), Engine(_settings(tmp_path, "second")):
        pass
    settings = _settings(tmp_path, "failing")

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the start fails here")

    with monkeypatch.context() as patched:
        patched.setattr(engine_module, "publish_measures", failing)
        with pytest.raises(RuntimeError, match="the start fails here"):
            Engine(settings)
    tables = {row[1] for row in _schema(settings.sqlite_path) if row[0] == "table"}
    assert tables and not {t for t in tables if t.startswith("doc_")}
    assert "fhir_resource" in tables
    with Engine(settings) as engine:  # and the next start makes the whole store
        assert engine.store.collection("result_labels").get("-backfilled") is not None
        assert engine.repository.read("Measure", "huren-recognition-rate") is not None
