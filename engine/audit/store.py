"""Where the audit log lives: ``audit.sqlite3`` in ``HUREN_DATA_DIR``, or huren's MongoDB database.

On SQLite the log has a file of its own (see ``engine.audit.log`` for why). A data directory made
by an earlier version kept the log's collections in ``huren.sqlite3``: the first start with an
empty audit file copies them over in one transaction (the old tables are left as they were, and
are no longer written). On MongoDB the log's collections stay in the one database: a commit there
does not disturb other readers' caches.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from engine.audit.leaves import TABLE as LEAF_TABLE
from engine.audit.leaves import LeafTable
from engine.repository import open_store
from engine.repository.port import Store
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

AUDIT_FILE = "audit.sqlite3"
COLLECTIONS = ("audit_log", "audit_nodes", "audit_checkpoints", "audit_meta")


def audit_path(settings: Settings) -> Path:
    return settings.data_dir / AUDIT_FILE


def open_audit_store(settings: Settings, main: Store | None = None) -> Store:
    """The store holding the audit log; ``main`` is huren's own store when the caller has it open
    (returned as it is for MongoDB)."""
    if settings.mongodb_uri:
        return main if main is not None else open_store(settings)
    # documents only: no FHIR tables in this file (``fhir_layout``; made there only if ever asked for)
    store = SqliteStore(audit_path(settings), fhir_layout=False)
    try:
        _adopt_legacy(store, settings.sqlite_path)
    except BaseException:
        store.close()
        raise
    return store


def _adopt_legacy(store: SqliteStore, legacy: Path) -> None:
    """Copy the log out of an earlier version's main database when this file has none yet."""
    for name in COLLECTIONS:
        store.collection(name)  # creates the tables
    LeafTable(store)  # and the one the records moved on to (engine.audit.leaves)
    if not legacy.exists() or _holds_records(store):
        return
    with closing(sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)) as old:
        present = {r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "doc_audit_log" not in present or old.execute("SELECT 1 FROM doc_audit_log LIMIT 1").fetchone() is None:
            return
    with store.lock:
        store.conn.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
        try:
            with store.transaction():  # several workers may start at once: one copies, the others see it
                if not _holds_records(store):
                    for name in COLLECTIONS:
                        if f"doc_{name}" in present:
                            store.conn.execute(f'INSERT INTO main."doc_{name}" (id, body) '
                                               f'SELECT id, body FROM legacy."doc_{name}"')
        finally:
            store.conn.execute("DETACH DATABASE legacy")


def _holds_records(store: SqliteStore) -> bool:
    """Whether this file already holds a log (in the leaf table, or the document table before it)."""
    return any(store.conn.execute(f'SELECT 1 FROM main."{table}" LIMIT 1').fetchone() is not None
               for table in ("doc_audit_log", LEAF_TABLE))
