"""Storage layout 7's older-worker rule, enforced where SQLite can enforce it (twenty-ninth round,
storeleft29).

An older huren (layout 6) checks the layout only when it opens the store. A process of it still
running when this release opens the store (and moves it to layout 7) went on writing as if
nothing had changed (the review of perfstore28, ``tests/test_rvperfstore28_report_results.py``).
Layout 7 now has a column in ``fhir_resource`` and ``fhir_history``, always NULL, whose CHECK
calls a function only this layout's code registers (``sqlite_fhir.GUARD``) when it is not NULL:
an INSERT by a connection that does not know the name fails ("unknown function"), and every
write of the older process inserts into one of them, so each fails and its transaction leaves
nothing behind, while its reads (which check nothing) go on. The older
process is the real code of main before the twenty-eighth round's layout 7, from this checkout's
history (``code_at``), on the same file, at the same time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import NotFound
from engine.repository import sqlite_fhir
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
from tests.test_moneylast19_charges import code_at
from tests.test_perfstore28_report_results import BEFORE

BASE = "http://huren.test/fhir"

# The older worker: opens the store while it is layout 6, writes, then waits for a line and runs
# each of its writes again (one JSON line an outcome), and reads by id and by search.
OLD_WORKER = """
import json, sys
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
store = SqliteStore(sys.argv[1])
repo = FhirRepository(store, base_url="http://huren.test/fhir")
repo.update({"resourceType": "Patient", "id": "p0", "gender": "female"})
repo.update({"resourceType": "Patient", "id": "gone"})
print(store.query("PRAGMA user_version")[0][0], flush=True)
sys.stdin.readline()  # this release opens the store (layout 7) and writes meanwhile
def attempt(name, write):
    try:
        write()
        return name + ": written"
    except Exception as exc:
        return f"{name}: {type(exc).__name__}: {exc}"
out = [
    attempt("create", lambda: repo.write_many([
        {"resourceType": "Observation", "id": "o9", "status": "final", "code": {"text": "Hb"}},
        {"resourceType": "DiagnosticReport", "id": "r9", "status": "final", "code": {"text": "CBC"},
         "result": [{"reference": "Observation/o9"}]}])),
    attempt("update", lambda: repo.update({"resourceType": "Patient", "id": "p0", "gender": "male"})),
    attempt("delete", lambda: repo.delete("Patient", "gone")),
    "read: " + str((repo.read("DiagnosticReport", "r1") or {}).get("status")),
    "search: " + ",".join(r["id"] for r in repo.search("DiagnosticReport", [("result", "Observation/o1")]).resources),
]
print(json.dumps(out), flush=True)
store.close()
"""


def test_an_older_worker_running_beside_layout_7_can_no_longer_write(tmp_path: Path) -> None:
    base = code_at(BEFORE)
    path = tmp_path / "huren.sqlite3"
    old = subprocess.Popen([sys.executable, "-c", OLD_WORKER, str(path)], cwd=base, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={**os.environ, "PYTHONPATH": str(base)})
    try:
        assert old.stdout is not None and old.stdin is not None
        assert old.stdout.readline().strip() == "6", old.stderr.read() if old.stderr else ""
        store = SqliteStore(path)
        try:
            repo = FhirRepository(store, base_url=BASE)
            assert store.query("PRAGMA user_version")[0][0] == sqlite_fhir.LAYOUT == 7
            repo.write_many([
                {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"}},
                {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "CBC"},
                 "result": [{"reference": "Observation/o1"}]}])
            old.stdin.write("\n")
            old.stdin.flush()
            line = old.stdout.readline()
            assert line, old.stderr.read() if old.stderr else ""
            create, update, delete, read, search = json.loads(line)
            refused = f"OperationalError: no such function: {sqlite_fhir.GUARD}"
            assert (create, update, delete) == (f"create: {refused}", f"update: {refused}", f"delete: {refused}")
            assert read == "read: final"  # a read by id is right under both layouts, and not guarded
            # what is not enforced: its search by the result misses the report this release keyed
            # (the strict xfail in tests/test_rvperfstore28_report_results.py)
            assert search == "search: "
            # nothing of the refused writes is stored; this release writes on as before
            for rtype, rid in (("DiagnosticReport", "r9"), ("Observation", "o9")):
                with pytest.raises(NotFound):
                    repo.read(rtype, rid)
            assert repo.read("Patient", "p0")["gender"] == "female"  # type: ignore[index]
            assert repo.read("Patient", "gone")["id"] == "gone"
            repo.update({"resourceType": "Patient", "id": "p0", "gender": "male"})
            repo.delete("Patient", "gone")
            assert repo.read("Patient", "p0")["gender"] == "male"  # type: ignore[index]
            assert [r["id"] for r in repo.search("DiagnosticReport", [("result", "Observation/o1")]).resources] == ["r1"]
        finally:
            store.close()
    finally:
        old.kill()
        old.wait(timeout=30)


def test_a_connection_without_the_guard_cannot_write_fhir_rows_and_this_code_pays_no_call(tmp_path: Path) -> None:
    """The guard on its own: any connection not registering ``GUARD`` (a tool, an older huren) is
    refused each kind of write to ``fhir_resource``; this code's writes never call the function."""
    path = tmp_path / "huren.sqlite3"
    store = SqliteStore(path)
    try:
        calls: list[int] = []
        store.conn.create_function(sqlite_fhir.GUARD, 0, lambda: calls.append(1), deterministic=True)
        repo = FhirRepository(store, base_url=BASE)
        repo.update({"resourceType": "Patient", "id": "p1"})
        repo.update({"resourceType": "Patient", "id": "p1", "active": True})
        repo.delete("Patient", "p1")
        assert calls == []
    finally:
        store.close()
    with sqlite3.connect(path, isolation_level=None) as raw:
        for sql in ("INSERT INTO fhir_resource (type, id, version, updated, deleted, idh) "
                    "VALUES ('Patient', 'x', 1, '', 0, 0)",
                    "UPDATE fhir_resource SET version = 9", "DELETE FROM fhir_resource"):
            try:
                raw.execute(sql)
            except sqlite3.OperationalError as exc:
                assert str(exc) == f"no such function: {sqlite_fhir.GUARD}"
            else:
                raise AssertionError(f"written without the guard: {sql}")
        assert raw.execute("SELECT count(*), max(version) FROM fhir_resource").fetchone() == (1, 3)
