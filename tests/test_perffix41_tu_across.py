"""perffix41: a ``_lastUpdated`` across types (``$everything?_since=``, also with a ``_type`` list) driven by one
``tu`` range a type (rv41h MED 3), answering exactly what the comparison of the ``updated`` text
(layout 8's way, still the path when no type list bounds the query) answers.

Real store, real ``$everything`` through ``FhirRepository``; the oracle is the
same repository with the cross-type types withheld (``SqliteSearch._across_types`` None: ``r.updated``
compared, the path before this change) and the bodies' own ``meta.lastUpdated``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.repository.fhir import FhirRepository
from engine.repository.sqlite_search import SqliteSearch
from engine.repository.sqlite_store import SqliteStore


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[FhirRepository]:
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    repo.update({"resourceType": "Patient", "id": "p1", "name": [{"family": "张"}]})
    for n in range(6):  # each write a later millisecond, the types interleaved
        repo.update({"resourceType": "Observation", "id": f"o{n}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                     "subject": {"reference": f"Patient/p{1 + n % 2}"}})
        repo.update({"resourceType": "Encounter", "id": f"e{n}", "status": "finished",
                     "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                     "subject": {"reference": "Patient/p1"}})
        if n % 2:
            repo.update({"resourceType": "Patient", "id": f"p{n + 1}", "name": [{"family": "李"}]})
        repo.update({"resourceType": "Organization", "id": f"g{n}", "name": f"卫生院{n}"})
    repo.update({"resourceType": "Patient", "id": "p1", "name": [{"family": "王"}]})
    repo.delete("Observation", "o2")
    yield repo
    store.close()


def _both(repo: FhirRepository, monkeypatch: pytest.MonkeyPatch, ask: Any) -> tuple[Any, Any]:
    """``ask()`` on ``tu`` ranges, then with the type list withheld (the ``updated`` text compared)."""
    store = repo.store  # type: ignore[attr-defined]
    new = ask()
    with monkeypatch.context() as m:
        m.setattr(SqliteSearch, "_across_types", lambda self, q: None)
        store.fhir._compiled.__dict__.clear()  # (the compiled query of the other path)
        old = ask()
    store.fhir._compiled.__dict__.clear()
    return new, old


def test_everything_since_and_a_type_list_on_tu_equal_the_text_comparison(
        repo: FhirRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    """``$everything``'s ``_since`` (``_lastUpdated=ge``, across types) at every stored instant, 1 ms
    either side and at day and second precision: the same rows as the ``updated``
    text comparison, and as the bodies' own ``meta.lastUpdated`` say; with a ``_type`` list too. Fails if a type's
    range were left out or a bound moved (checked: ``_tu_sql``'s ``ge`` bound moved by 1 ms)."""
    store = repo.store  # type: ignore[attr-defined]
    rows = store.query("SELECT type, id, updated FROM fhir_resource WHERE deleted = 0 ORDER BY updated")
    stamps = sorted({u for _, _, u in rows})
    assert len(stamps) > 20

    def ms_either_side(stamp: str, delta: int) -> str:
        whole, frac = stamp[:-1].split(".")
        n = int(frac) + delta
        return f"{whole}.{n:03d}Z" if 0 <= n <= 999 else stamp

    bounds = sorted({b for s in stamps for b in (s, ms_either_side(s, -1), ms_either_side(s, 1), s[:19] + "Z")}
                    | {stamps[0][:10], "2000", "2999"})
    everything_all = {f"{r['resourceType']}/{r['id']}" for r in
                      repo.everything("p1", [("_count", "200")]).resources}
    assert {"Patient/p1", "Observation/o0", "Encounter/e5"} <= everything_all and "Observation/o2" not in everything_all
    for since in bounds:
        def ask(since: str = since) -> list[str]:
            return sorted(f"{r['resourceType']}/{r['id']}" for r in
                          repo.everything("p1", [("_since", since), ("_count", "200")]).resources)
        new, old = _both(repo, monkeypatch, ask)
        assert new == old, since
        if len(since) == 24:  # an instant to the millisecond: the bodies say the same
            assert new == sorted(x for x in everything_all if repo.read(*x.split("/"))["meta"]["lastUpdated"] >= since)
    for since in bounds[::2]:  # a ``_type`` list: only its types' ranges
        def ask_types(since: str = since) -> list[str]:
            return sorted(f"{r['resourceType']}/{r['id']}" for r in repo.everything(
                "p1", [("_type", "Patient,Encounter"), ("_since", since), ("_count", "200")]).resources)
        new, old = _both(repo, monkeypatch, ask_types)
        assert new == old, since
        assert all(x.split("/")[0] in ("Patient", "Encounter") for x in new), new

def test_a_cross_type_lastupdated_driver_reads_the_tu_index(repo: FhirRepository) -> None:
    """SQLite's own plan of ``$everything?_since=``: the ``tu`` index (a MULTI-INDEX OR of the types'
    ranges), no scan of ``fhir_resource``. Fails with the driver comparing ``updated`` (rv41h's probe)."""
    store = repo.store  # type: ignore[attr-defined]
    since = store.query("SELECT max(updated) FROM fhir_resource")[0][0]
    plans: list[str] = []
    real = store.query

    def query(sql: str, params: Any = ()) -> list[Any]:
        if "fhir_resource" in sql and sql.lstrip().upper().startswith(("SELECT", "WITH")):
            plans.append(" | ".join(row[-1] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)))
        return real(sql, params)

    store.query = query
    try:
        repo.everything("p1", [("_since", since)])
    finally:
        store.query = real
    assert any("fhir_resource_tu" in p for p in plans), plans
    assert not [p for p in plans for step in p.split(" | ") if step.startswith("SCAN")
                and "USING" not in step and step.split()[1] in ("x", "r", "fhir_resource")], plans
