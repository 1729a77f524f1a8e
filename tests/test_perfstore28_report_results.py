"""A DiagnosticReport's ``result`` rows keyed by the results' rids (storage layout 7, twenty-eighth
round, perfstore28) answer every search exactly as the hashed rows did.

``DiagnosticReport.result`` is indexed since the twenty-seventh round (a result labelled after its
report was written gives the report its label: ``engine.result_labels`` finds the report by it).
Hashed, its rows were twelve new random ``ix_hash`` keys a 12-result lab message, half of the
message's equality values new to the store; keyed by the result's rid (``sqlite_rows.BY_TARGET``,
as a Provenance's ``target`` since layout 6) they are appended. These tests run the same writes
and searches on SQLite and MongoDB (mongomock), whose layout has no such rows, and hold both to
the answers written out here (typed and bare references, several values, two clauses, a chain,
``_include``/``_revinclude``, ``:missing``, a new version, a deletion, a result stored after its
report); SQLite's rows are held to the layout's reading of the stored bodies. A store written by
the code before this round (layout 6, every ``result`` row hashed; taken from this checkout's
history) is read right by this code, and the code before refuses a store of layout 7.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.repository import sqlite_fhir, sqlite_rows
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.repository.sqlite_store import SqliteStore
from tests.test_index10_put_rows import _assert_stored_as_their_bodies_say
from tests.test_moneylast19_charges import code_at

BASE = "http://huren.test/fhir"
LOINC = "http://loinc.org"
BEFORE = "4387c8e2"  # main when this round began: storage layout 6, a report's result rows hashed
ROOT = Path(__file__).resolve().parents[1]


def _obs(oid: str, code: str = "718-7") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": "Patient/p1"}}


def _report(rid: str, *results: str, status: str = "final") -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": rid, "status": status,
                           "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
                           "subject": {"reference": "Patient/p1"}}
    if results:
        out["result"] = [{"reference": r} for r in results]
    return out


def _found(repo: FhirRepository, rtype: str, *params: tuple[str, str]) -> set[str]:
    return {r["id"] for r in repo.search(rtype, list(params)).resources}


def _keyed(store: Store, sqlite: int) -> int:
    """SQLite: the report rows keyed by a result's rid, which must be ``sqlite`` (MongoDB has none)."""
    if not isinstance(store, SqliteStore):
        return sqlite
    _base, mark = sqlite_rows.target_key("DiagnosticReport", "result")
    return int(store.query("SELECT count(*) FROM ix_hash WHERE q = ?", (mark,))[0][0])


def _story(repo: FhirRepository) -> None:
    """Reports whose results are stored before them, in the same group, after them, never; one
    with no result; one deleted result."""
    repo.update({"resourceType": "Patient", "id": "p1"})
    repo.update(_obs("A"))
    repo.write_many([_obs("B", code="789-8"), _report("r1", "Observation/A", "Observation/B"), _obs("C")])
    repo.update(_report("r2", "Observation/C", "Observation/late", "Observation/never"))
    repo.update(_obs("late", code="789-8"))
    repo.update(_report("r3"))
    repo.update(_obs("D", code="4544-3"))
    repo.update(_report("r4", f"{BASE}/Observation/D", "Observation/A/_history/1"))
    repo.delete("Observation", "D")


def _assert_answers(repo: FhirRepository) -> None:
    assert _found(repo, "DiagnosticReport", ("result", "Observation/A")) == {"r1", "r4"}
    assert _found(repo, "DiagnosticReport", ("result", "A")) == {"r1", "r4"}
    assert _found(repo, "DiagnosticReport", ("result", f"{BASE}/Observation/A")) == {"r1", "r4"}
    assert _found(repo, "DiagnosticReport", ("result:Observation", "B")) == {"r1"}
    assert _found(repo, "DiagnosticReport", ("result", "Observation/C")) == {"r2"}
    assert _found(repo, "DiagnosticReport", ("result", "Observation/late")) == {"r2"}  # stored after r2
    assert _found(repo, "DiagnosticReport", ("result", "Observation/never")) == {"r2"}  # never stored
    assert _found(repo, "DiagnosticReport", ("result", "Observation/D")) == {"r4"}  # deleted since
    assert _found(repo, "DiagnosticReport", ("result", "Patient/A")) == set()
    assert _found(repo, "DiagnosticReport", ("result", "Observation/B,Observation/C")) == {"r1", "r2"}
    assert _found(repo, "DiagnosticReport", ("result", "Observation/A"), ("result", "B")) == {"r1"}
    assert _found(repo, "DiagnosticReport", ("result", "A"), ("status", "final")) == {"r1", "r4"}
    assert _found(repo, "DiagnosticReport", ("result:Observation.code", "789-8")) == {"r1", "r2"}
    assert _found(repo, "DiagnosticReport", ("result:missing", "true")) == {"r3"}
    assert _found(repo, "DiagnosticReport", ("result:missing", "false")) == {"r1", "r2", "r4"}
    included = repo.search("Observation", [("_id", "A,C"), ("_revinclude", "DiagnosticReport:result")]).included
    assert {r["id"] for r in included} == {"r1", "r2", "r4"}
    included = repo.search("DiagnosticReport", [("_id", "r1"), ("_include", "DiagnosticReport:result")]).included
    assert {r["id"] for r in included} == {"A", "B"}


def _check_rows(store: Store, repo: FhirRepository, stored_after: set[tuple[str, str]]) -> None:
    """SQLite: every row as the layout reads the bodies, the results stored after the report
    naming them (``stored_after``) hashed, the others keyed by rid."""
    if isinstance(store, SqliteStore):
        _assert_stored_as_their_bodies_say(SimpleNamespace(repository=repo, store=store),  # type: ignore[arg-type]
                                           stored_after)


def test_result_searches_answer_the_same_on_both_backends(store: Store) -> None:
    repo = FhirRepository(store, base_url=BASE)
    _story(repo)
    _assert_answers(repo)
    # r1's A and B (B in the same group), r2's C, r4's D and A: keyed; r2's "late" and "never" hashed
    assert _keyed(store, 5) == 5
    _check_rows(store, repo, {("Observation", "late")})
    # a new version of r2 (final after preliminary: the same results), "late" now stored: re-keyed
    repo.update(_report("r2", "Observation/C", "Observation/late", "Observation/never", status="amended"))
    assert _keyed(store, 6) == 6
    _assert_answers(repo)
    assert _found(repo, "DiagnosticReport", ("result", "late"), ("status", "amended")) == {"r2"}
    _check_rows(store, repo, set())
    repo.delete("DiagnosticReport", "r1")
    assert _keyed(store, 4) == 4
    assert _found(repo, "DiagnosticReport", ("result", "Observation/A")) == {"r4"}


# Run by the code before this round (PYTHONPATH=its tree): the story above into a layout-6 store
OLD_STORE = """
import sys
from typing import Any
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_store import SqliteStore
BASE, LOINC = {BASE!r}, {LOINC!r}
{story}
store = SqliteStore(sys.argv[1])
_story(FhirRepository(store, base_url=BASE))
print(store.query("PRAGMA user_version")[0][0])
store.close()
"""
# ... and that code opening a store of this layout
OLD_OPEN = """
import sys
from engine.repository.sqlite_store import SqliteStore
try:
    SqliteStore(sys.argv[1])
except Exception as exc:
    print(type(exc).__name__)
"""


def _code_before(tmp_path: Path) -> Path:
    """The whole tree of ``BEFORE`` (``code_at``: its own ``mappings`` too -- the code before cannot
    read this round's site files, e.g. merge.yaml's ``history``, and must not be given them)."""
    return code_at(BEFORE, tmp_path)


def _before(base: Path, script: str, path: Path) -> str:
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=base, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(base)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_layout_6_store_is_read_as_it_is_and_the_code_before_refuses_layout_7(tmp_path: Path) -> None:
    base = _code_before(tmp_path)
    path = tmp_path / "huren.sqlite3"
    story = "\n".join(inspect.getsource(f) for f in (_obs, _report, _story))
    assert json.loads(_before(base, OLD_STORE.format(BASE=BASE, LOINC=LOINC, story=story), path)) == 6
    store = SqliteStore(path)
    try:
        repo = FhirRepository(store, base_url=BASE)
        assert store.query("PRAGMA user_version")[0][0] == sqlite_fhir.LAYOUT == 9  # layout 8: writer31; 9: perf41's tu
        assert _keyed(store, 0) == 0  # every result row of layout 6 hashed, read as it is
        _assert_answers(repo)
        repo.update(_report("r5", "Observation/A", "Observation/late"))
        assert _keyed(store, 2) == 2
        assert _found(repo, "DiagnosticReport", ("result", "Observation/A")) == {"r1", "r4", "r5"}
        assert _found(repo, "DiagnosticReport", ("result", "late")) == {"r2", "r5"}
    finally:
        store.close()
    assert _before(base, OLD_OPEN, path) == "LayoutError"
