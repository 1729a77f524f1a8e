"""Where the audit log lives, and the per-patient views on both storage backends.

On SQLite the log has its own file (an audited read must not commit to huren's main database);
a data directory from before keeps working: its log is taken over, records, tree and signed
checkpoints intact. On MongoDB the log stays in the one database, and the views and "who looked"
behave the same.
"""

from __future__ import annotations

import shutil

import orjson

from engine.audit.events import build_event, requestor_agent
from engine.audit.keys import AuditKeys
from engine.audit.leaves import TABLE as LEAF_TABLE
from engine.audit.leaves import LeafTable, leaf_document
from engine.audit.log import AuditLog
from engine.audit.record_files import records_directory
from engine.audit.store import AUDIT_FILE, open_audit_store
from engine.audit.verify import verify_online
from engine.audit.who_looked import who_looked
from engine.engine import Engine
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings


def _search(patients: list[str], owners: dict[str, list[str]]) -> dict:
    return build_event(action="search", origin="o", agents=requestor_agent(kind="system", subject="his-a", address=None),
                       patient_ids=patients, resources=list(owners), owners=owners, query="Observation?code=x")


def _log_with(settings: Settings, records: int) -> tuple[SqliteStore, Settings, AuditLog]:
    """A fresh audit store with ``records`` read records, checkpointed every 4: the store, the
    settings the log runs under, the log."""
    settings.data_dir.mkdir(parents=True)
    store = open_audit_store(settings)
    s = settings.with_(audit_checkpoint_every=4)
    log = AuditLog(store, s, AuditKeys.load(settings, create=True))
    for i in range(records):
        log.record(_search([f"p{i}"], {f"Observation/{i}": [f"p{i}"]}))
    return store, s, log


def test_an_audited_read_commits_to_the_audit_file_not_the_main_database(settings: Settings) -> None:
    with Engine(settings) as engine:
        main_before = engine.store.conn.total_changes
        engine.audit.record(_search(["a"], {"Observation/1": ["a"]}))
        assert engine.store.conn.total_changes == main_before
        assert (settings.data_dir / AUDIT_FILE).exists() and engine.audit_store is not engine.store


def test_a_data_directory_from_before_keeps_its_log(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    old = SqliteStore(settings.sqlite_path)  # the log inside huren.sqlite3, as earlier versions kept it
    legacy = AuditLog(old, settings.with_(audit_checkpoint_every=4), AuditKeys.load(settings, create=True))
    for i in range(10):
        legacy.record(_search([f"p{i}"], {f"Observation/{i}": [f"p{i}"]}))
    root, size = legacy.root(), legacy.size
    as_documents(old, legacy)
    old.close()

    with Engine(settings) as engine:
        assert (engine.audit.size, engine.audit.root()) == (size, root)
        report = verify_online(engine.audit)
        # the two the old log signed, and the one the start signs over its unsigned tail (8, 9), 'recovered'
        assert report.ok and report.checkpoints == 3 and report.recovered == [(2, 8, 9)]
        engine.audit.record(_search(["p1"], {"Observation/1": ["p1"]}))  # appends go on from there
        assert verify_online(engine.audit).ok
    with Engine(settings) as again:  # taken over once, not twice
        assert again.audit.size == size + 1


def as_documents(store: SqliteStore, log: AuditLog) -> None:
    """Put a log the way versions before the leaf table kept it: documents ``{_id, seq, hash, data,
    nodes}`` in ``doc_audit_log`` (the generic document store), no ``audit_leaves`` (and no segment
    file: its records are moved into the table first)."""
    rows = as_leaf_rows(store, log)
    store.collection("audit_log").insert_many([leaf_document(*row) for row in rows])
    store.conn.execute(f"DROP TABLE {LEAF_TABLE}")


def as_leaf_rows(store: SqliteStore, log: AuditLog) -> list[tuple]:
    """Put a log the way versions before the record files kept it: every record a row of
    ``audit_leaves``, no record files (storage layout 2). Returns the rows."""
    log.drain()
    rows = [(d["seq"], bytes.fromhex(d["hash"]), d["data"].encode(),
             bytes.fromhex("".join(d["nodes"])) if d.get("nodes") else None)
            for d in log.leaves.find(sort=[("_id", 1)])]
    store.conn.execute("DROP TABLE IF EXISTS audit_files")
    shutil.rmtree(records_directory(store.path), ignore_errors=True)
    store.conn.execute(f"DELETE FROM {LEAF_TABLE}")
    store.conn.executemany(f"INSERT INTO {LEAF_TABLE} (seq, hash, data, nodes) VALUES (?, ?, ?, ?)", rows)
    return rows


def test_a_log_kept_as_leaf_table_rows_keeps_them_and_grows_into_record_files(settings: Settings) -> None:
    """Storage layout 2 (every record a row of ``audit_leaves``) opens as it is: its rows are read
    where they are, new records go to record files after them, and the whole verifies."""
    store, s, log = _log_with(settings, 9)
    root, docs = log.root(), log.leaves.find(sort=[("_id", 1)])
    assert as_leaf_rows(store, log) and not records_directory(store.path).exists()
    reopened = AuditLog(store, s, log.keys)
    assert reopened.root() == root and reopened.leaves.find(sort=[("_id", 1)]) == docs
    for i in range(6):
        reopened.record(_search([f"p{i}"], {f"Observation/{i}": [f"p{i}"]}))
    reopened.drain()
    assert store.conn.execute(f"SELECT count(*) FROM {LEAF_TABLE}").fetchone()[0] == 9  # the old rows stay
    assert [d["seq"] for d in reopened.leaves.find(sort=[("_id", 1)])] == list(range(15))
    assert [d["seq"] for d in reopened.leaves.find({"_id": {"$gte": "000000000007"}}, limit=4)] == [7, 8, 9, 10]
    assert [d["seq"] for d in reopened.leaves.find(sort=[("_id", -1)], limit=2)] == [14, 13]
    assert verify_online(AuditLog(store, s, log.keys)).ok


def test_a_log_kept_as_documents_moves_into_the_leaf_table_once_and_verifies(settings: Settings) -> None:
    store, s, log = _log_with(settings, 13)
    root, docs = log.root(), log.leaves.find(sort=[("_id", 1)])
    as_documents(store, log)
    assert store.collection("audit_log").count() == 13
    moved = AuditLog(store, s, log.keys)
    assert isinstance(moved.leaves, LeafTable) and store.collection("audit_log").count() == 0
    assert moved.leaves.find(sort=[("_id", 1)]) == docs and moved.root() == root
    assert verify_online(moved).ok
    moved.record(_search(["p1"], {"Observation/1": ["p1"]}))
    assert verify_online(AuditLog(store, s, log.keys)).ok and moved.size == 14
    store.close()


def test_a_damaged_document_log_stays_where_verify_can_name_it(settings: Settings) -> None:
    store, s, log = _log_with(settings, 6)
    as_documents(store, log)
    docs = store.collection("audit_log")
    docs.replace({**docs.get("000000000003"), "seq": 5})  # a record under a number it does not state
    kept = AuditLog(store, s, log.keys)
    assert not isinstance(kept.leaves, LeafTable) and docs.count() == 6
    report = verify_online(kept)
    assert not report.ok and report.first_bad_record is not None and report.first_bad_record <= 3
    store.close()


def test_views_and_who_looked_on_both_backends(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        engine.audit.record(_search(["a", "b"], {"Observation/1": ["a"], "Observation/2": ["b"]}))
        for me, other in (("a", "b"), ("b", "a")):
            found = engine.repository.search("AuditEvent", [("patient", me)], compartment={me})
            assert found.total == 1
            assert f"Patient/{other}" not in orjson.dumps(found.resources[0]).decode()
            [access] = who_looked(engine.repository, {me})
            assert (access.who, access.what, access.record) == ("his-a", "search", "audit-0")


def test_two_workers_on_one_data_directory_show_every_record_once(settings: Settings) -> None:
    """Two engines on the same files stand for two ``--workers``: both append to the one log, and
    each shows every record's views (derived on read from the one file) exactly once."""
    with Engine(settings) as one, Engine(settings) as two:
        for i in range(6):
            (one if i % 2 else two).audit.record(_search([f"p{i}"], {f"Observation/{i}": [f"p{i}"]}))
        for engine in (one, two):
            found = engine.repository.search("AuditEvent", [("_count", "50")])
            assert sorted(r["entity"][-1]["detail"][-1]["valueString"] for r in found.resources) == [
                f"audit-{i}" for i in range(6)]
        assert verify_online(one.audit).ok


def test_who_looked_lists_an_access_to_two_linked_records_of_one_person_once(settings: Settings) -> None:
    with Engine(settings) as engine:
        engine.audit.record(_search(["fn-zhang", "fz-zhang", "fn-li"], {"Observation/1": ["fn-zhang"],
                                                                        "Observation/2": ["fz-zhang"],
                                                                        "Observation/3": ["fn-li"]}))
        [access] = who_looked(engine.repository, {"fn-zhang", "fz-zhang"})
        assert access.record == "audit-0" and access.resource_types == ("Observation",)
