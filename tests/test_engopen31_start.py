"""An Engine's start on a new SQLite store is one transaction, and the audit file holds no FHIR
tables (thirty-first round, engopen31: ``engine.engine._starting``, ``SqliteStore(fhir_layout=False)``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import engine.engine as engine_module
from engine.audit.store import audit_path
from engine.engine import Engine
from engine.settings import Settings


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_audit_file_holds_the_log_and_no_fhir_tables(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    Engine(settings).close()
    tables = _tables(audit_path(settings))
    assert {"doc_audit_log", "doc_audit_meta", "audit_leaves"} <= tables
    assert not {t for t in tables if t.startswith(("fhir_", "ix_"))}
    assert "fhir_resource" in _tables(settings.sqlite_path)
    with Engine(settings) as again:  # reopened: the log is read back from the same file
        assert again.audit_store.collection("audit_meta").get("origin") is not None


def test_a_new_store_start_that_fails_leaves_none_of_its_parts_tables(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The start's writes commit together: a start failing late (here at publishing the Measures)
    leaves only the FHIR layout the store's open made, and the next start makes the whole store,
    its once-per-store markers included."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the start fails here")

    with monkeypatch.context() as patched:
        patched.setattr(engine_module, "publish_measures", failing)
        with pytest.raises(RuntimeError, match="the start fails here"):
            Engine(settings)
    assert not {t for t in _tables(settings.sqlite_path) if t.startswith("doc_")}
    with Engine(settings) as engine:
        assert engine.store.collection("result_labels").get("-backfilled") is not None
        assert engine.repository.read("Measure", "huren-recognition-rate") is not None
