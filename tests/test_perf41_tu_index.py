"""Layout 9 (forty-first round, perf41): one integer ``tu`` (a type's code, then ``updated`` in
milliseconds) indexed in place of layout 8's ``(type, updated)`` text index.

Real stores, real searches through ``FhirRepository``: a store written the layout-8 way (its
index, no ``tu``) opens, is upgraded in one transaction and answers type scans, ``_lastUpdated``
at every prefix, ``_sort=_lastUpdated`` both ways, ``_type``, history and the stored types as it
did -- and as the bodies themselves say; an upgrade that fails leaves the layout-8 store whole; the
searches read the new index."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.repository import sqlite_fhir
from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_rows import TU_SHIFT, type_code, updated_key, updated_ms
from engine.repository.sqlite_store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
LOINC = "http://loinc.org"

# what layout 8 had where layout 9 has ``tu`` (the column, and the text index on type and updated)
TO_LAYOUT_8 = """
DROP INDEX fhir_resource_tu;
ALTER TABLE fhir_resource DROP COLUMN tu;
CREATE INDEX fhir_resource_updated ON fhir_resource (type, updated);
PRAGMA user_version = 8;
"""


def _observation(oid: str, status: str = "final") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": status,
            "code": {"coding": [{"system": LOINC, "code": "718-7"}]}, "subject": {"reference": "Patient/p1"}}


def _written(path: Path) -> None:
    """Patients, Observations and an Organization, some written again, one deleted: each write a
    later millisecond (``VersionClock``), the types interleaved."""
    store = SqliteStore(path)
    repo = FhirRepository(store)
    repo.update({"resourceType": "Patient", "id": "p1", "name": [{"family": "张"}]})
    for n in range(6):
        repo.update(_observation(f"o{n}"))
        if n % 2:
            repo.update({"resourceType": "Patient", "id": f"p{n}", "name": [{"family": "李"}]})
    repo.update({"resourceType": "Organization", "id": "org1", "name": "县医院"})
    repo.update(_observation("o1", "amended"))  # a later version: its tu moves with its updated
    repo.update({"resourceType": "Patient", "id": "p1", "name": [{"family": "王"}]})
    repo.delete("Observation", "o4")
    store.close()


def _ids(repo: FhirRepository, rtype: str | None, *pairs: tuple[str, str]) -> list[str]:
    """The ids a search answers, in its order (one page of up to 100)."""
    return [f"{r['resourceType']}/{r['id']}" for r in repo.search(rtype, [*pairs, ("_count", "100")]).resources]


def _answers(store: SqliteStore) -> dict[str, Any]:
    """What the store answers: searches, history and the types, each keyed by what was asked."""
    repo = FhirRepository(store)
    stamps = sorted((u, t, i) for t, i, u in store.query("SELECT type, id, updated FROM fhir_resource WHERE deleted = 0"))
    out: dict[str, Any] = {}
    for rtype in ("Observation", "Patient", "Organization"):
        out[f"{rtype} scan"] = _ids(repo, rtype)
        out[f"{rtype} up"] = _ids(repo, rtype, ("_sort", "_lastUpdated"))
        out[f"{rtype} down"] = _ids(repo, rtype, ("_sort", "-_lastUpdated"))
        out[f"{rtype} total"] = repo.search(rtype, [("_summary", "count")]).total
        for updated, _t, _i in stamps[2::3]:
            for prefix in ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb"):
                out[f"{rtype} {prefix}{updated}"] = _ids(repo, rtype, ("_lastUpdated", prefix + updated))
            out[f"{rtype} day {updated[:10]}"] = _ids(repo, rtype, ("_lastUpdated", updated[:10]))
        out[f"{rtype} ms"] = _ids(repo, rtype, ("_lastUpdated", f"ge{stamps[3][0]}"), ("_lastUpdated", f"lt{stamps[-3][0]}"),
                                  ("_sort", "-_lastUpdated"))
    out["code up"] = _ids(repo, "Observation", ("code", "718-7"), ("_sort", "_lastUpdated"))
    out["code since"] = _ids(repo, "Observation", ("code", "718-7"), ("_lastUpdated", f"gt{stamps[4][0]}"))
    out["missing"] = _ids(repo, "Observation", ("status:missing", "false"))
    out["types"] = _ids(repo, None, ("_type", "Patient,Organization"))
    for since in (stamps[5][0], stamps[-2][0]):  # (across types: ``updated``, as before)
        out[f"everything {since}"] = sorted(f"{r['resourceType']}/{r['id']}" for r in
                                            repo.everything("p1", [("_since", since), ("_count", "100")]).resources)
    out["history o1"] = [(h["meta"]["versionId"], h["status"]) for h in repo.history("Observation", "o1")]
    out["history p1"] = [h["meta"]["versionId"] for h in repo.history("Patient", "p1")]
    out["stored types"] = store.fhir._stored_types()
    return out


def _bodies(store: SqliteStore) -> list[tuple[str, str, str]]:
    return sorted((json.loads(b)["meta"]["lastUpdated"], t, i)
                  for t, i, b in store.query("SELECT type, id, body FROM fhir_resource WHERE deleted = 0"))


def test_the_146_r4_resource_types_have_distinct_codes() -> None:
    """A type's code is a hash (no table to assign it in): the R4 types must not share one."""
    with gzip.open(ROOT / "conformance" / "schema" / "fhir.r4.schema.json.gz") as f:
        schema = json.loads(f.read())
    types = list(schema["discriminator"]["mapping"])
    assert len(types) == 146 and len({type_code(t) for t in types}) == 146
    assert all(0 <= type_code(t) < 1 << (63 - TU_SHIFT) for t in types)


def test_updated_ms_reads_huren_s_instants_and_others_to_the_millisecond() -> None:
    assert updated_ms("2026-12-05T18:11:10.123Z") == 1796494270123
    assert updated_ms("2026-12-06T02:11:10.123456+08:00") == 1796494270123  # (an early layout's forms)
    assert updated_ms("2026-12-05T18:11:10Z") == 1796494270000
    assert updated_ms("1960-01-01T00:00:00.000Z") == 0  # clamped: never another type's span
    assert updated_key("Patient", "2026-12-05T18:11:10.123Z") >> TU_SHIFT == type_code("Patient")


def test_a_layout_8_store_is_upgraded_and_answers_the_same(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "huren.db"
    _written(path)
    store = SqliteStore(path)
    FhirRepository(store)
    before = _answers(store)
    bodies = _bodies(store)
    store.conn.executescript(TO_LAYOUT_8)
    store.close()

    # the answers are the bodies' own: type scans by rid, _lastUpdated and its order as meta says
    obs = [f"{t}/{i}" for u, t, i in bodies if t == "Observation"]
    assert before["Observation up"] == obs and before["Observation down"] == obs[::-1]
    assert before["Observation scan"] == sorted(obs, key=lambda k: int(k.removeprefix("Observation/o"))) \
        and "Observation/o4" not in obs
    mid = bodies[5][0]
    assert sorted(before[f"Patient gt{mid}"]) == sorted(f"{t}/{i}" for u, t, i in bodies if t == "Patient" and u > mid)
    assert before[f"Patient lt{mid}"] and sorted(before[f"Patient lt{mid}"]) == sorted(
        f"{t}/{i}" for u, t, i in bodies if t == "Patient" and u < mid)
    assert before["stored types"] == ["Observation", "Organization", "Patient"]
    assert before["history o1"] == [("2", "amended"), ("1", "final")]
    assert before["types"] and all(k.split("/")[0] in ("Patient", "Organization") for k in before["types"])

    with caplog.at_level("WARNING", logger="huren.repository"):
        store = SqliteStore(path)
        after = _answers(store)
    assert "layout 8 moved to layout 9" in caplog.text
    assert after == before
    assert store.query("PRAGMA user_version")[0][0] == sqlite_fhir.LAYOUT == 9
    assert [n for (n,) in store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                      "tbl_name = 'fhir_resource' ORDER BY name")] == ["fhir_resource_key", "fhir_resource_tu"]
    rows = store.query("SELECT type, updated, tu FROM fhir_resource")
    assert rows and all(tu == updated_key(t, u) for t, u, tu in rows)
    # written after the upgrade: found as the upgraded rows are
    repo = FhirRepository(store)
    repo.update(_observation("o9"))
    assert _ids(repo, "Observation", ("_sort", "-_lastUpdated"))[0] == "Observation/o9"
    store.close()


def test_an_upgrade_that_fails_leaves_the_layout_8_store_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huren.db"
    _written(path)
    store = SqliteStore(path)
    before = _answers(store)
    store.conn.executescript(TO_LAYOUT_8)
    store.close()

    def broken(rtype: str, updated: str) -> int:
        if rtype == "Organization":  # (rows of the other types given theirs first, then rolled back)
            raise RuntimeError("the upgrade stops here")
        return updated_key(rtype, updated)

    monkeypatch.setattr(sqlite_fhir, "updated_key", broken)
    with pytest.raises(sqlite3.OperationalError, match="user-defined function raised exception"):
        SqliteStore(path)  # (the layout is decided when the store opens)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 8
    assert not any(row[1] == "tu" for row in conn.execute("PRAGMA table_info(fhir_resource)"))
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'fhir_resource_updated'").fetchone()
    conn.close()
    monkeypatch.undo()
    store = SqliteStore(path)
    assert _answers(store) == before
    store.close()


def test_the_searches_read_the_tu_index(tmp_path: Path) -> None:
    """A type scan, ``_lastUpdated`` within a type and the types' list go by ``fhir_resource_tu``
    (SQLite's own plan), and a write puts each row's key there."""
    path = tmp_path / "huren.db"
    _written(path)
    store = SqliteStore(path)
    repo = FhirRepository(store)
    plans: list[str] = []
    store.conn.set_trace_callback(None)
    real = store.query

    def query(sql: str, params: Any = ()) -> list[Any]:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            plans.append(" | ".join(row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)))
        return real(sql, params)

    store.query = query  # type: ignore[method-assign]
    stamp = store.conn.execute("SELECT updated FROM fhir_resource ORDER BY rid LIMIT 1 OFFSET 3").fetchone()[0]
    for pairs in ([("_lastUpdated", f"gt{stamp}")], [("_sort", "-_lastUpdated"), ("_count", "1")]):
        plans.clear()
        repo.search("Observation", pairs)
        assert any("fhir_resource_tu" in p for p in plans), plans
    plans.clear()
    store.fhir._stored_types()
    assert plans and "fhir_resource_tu" in plans[0] and "SCAN" not in plans[0].replace("SCAN s", ""), plans
    store.query = real  # type: ignore[method-assign]
    rows = store.conn.execute("SELECT type, updated, tu FROM fhir_resource").fetchall()
    assert all(tu == updated_key(t, u) for t, u, tu in rows)
    store.close()


def test_two_types_sharing_a_code_never_answer_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No two R4 types share a code (above); were they to, each one's searches keep to its own rows
    (``SqliteSearch._sole_types``: the row's type is checked beside the span)."""
    from engine.repository import sqlite_rows

    real = sqlite_rows.type_code

    def shared(rtype: str) -> int:
        return real("Patient") if rtype == "Organization" else real(rtype)

    monkeypatch.setattr(sqlite_rows, "type_code", shared)
    monkeypatch.setattr(sqlite_rows, "_BASES", {})
    path = tmp_path / "huren.db"
    _written(path)
    store = SqliteStore(path)
    repo = FhirRepository(store)
    assert store.query("SELECT count(DISTINCT tu >> ?) FROM fhir_resource WHERE type IN ('Patient', 'Organization')",
                       (TU_SHIFT,))[0][0] == 1  # (the two types' rows in one span)
    assert "Patient" not in store.fhir._sole_types() and "Observation" in store.fhir._sole_types()
    patients = _ids(repo, "Patient")
    assert patients and all(k.startswith("Patient/") for k in patients)
    assert _ids(repo, "Organization") == ["Organization/org1"]
    assert repo.search("Patient", [("_summary", "count")]).total == len(patients)
    assert all(k.startswith("Patient/") for k in _ids(repo, "Patient", ("_lastUpdated", "gt2000"), ("_sort", "_lastUpdated")))
    store.close()
