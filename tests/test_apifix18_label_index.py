"""An auditor's search leaves out labelled records whatever the store's index of ``_security``.

The query-side leaving out (``ScopedRepository.label_params``) asks the ``_security`` index
whether the type holds a labelled record at all. Were those index rows missing, the count would
be 0 and nothing would be left out: a leak. Checked here (it holds, and these tests keep it):

- a deployment that does not index ``_security`` for the type (``disabled`` in ``enabled.yaml``,
  as AuditEvent's short list) has every match screened instead (``_Screened``), in a search and
  in a Bundle's search alike;
- a store indexed under a list without it, opened under one with it, is re-indexed from the
  stored bodies on opening (``SqliteFhir._follow``): the labelled record is found and left out.

The real store (SQLite), the real repository and access decision; no HTTP needed for a
deployment's parameter list (the app loads the shipped one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.auth.caller import Caller
from engine.repository.fhir import FhirRepository
from engine.repository.scoped import ScopedRepository
from engine.repository.searchparams import SearchParams, definitions, deployment, load
from engine.repository.sqlite_store import SqliteStore

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _without_security() -> SearchParams:
    dep = deployment()
    disabled = dict(dep.get("disabled") or {})
    disabled["Observation"] = [*(disabled.get("Observation") or ()), "_security"]
    return SearchParams(definitions(), {**dep, "disabled": disabled})


def _write(repo: FhirRepository) -> None:
    repo.update({"resourceType": "Patient", "id": "zhang"})
    for oid, code in (("open", None), ("psych", "V"), ("hiv", "R")):
        obs: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": oid},
                               "subject": {"reference": "Patient/zhang"}}
        if code:
            obs["meta"] = {"security": [{"system": CONF, "code": code}]}
        repo.update(obs)


def _auditor(repo: FhirRepository) -> ScopedRepository:
    return ScopedRepository(repo, Caller(subject="aud", kind="auditor", scopes=("system/Observation.rs",),
                                         client_id="insurer"))


def _answers(scoped: ScopedRepository) -> list[tuple[list[str], int | None]]:
    found = scoped.search("Observation", [("subject", "Patient/zhang")])
    count = scoped.search("Observation", [("subject", "Patient/zhang"), ("_summary", "count")])
    page = scoped.search("Observation", [("subject", "Patient/zhang"), ("_count", "1")])
    batch = scoped.batch({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation?subject=Patient/zhang"}}]}, [])
    bundle = batch["entry"][0]["resource"]
    return [([r["id"] for r in found.resources], found.total), ([], count.total),
            ([r["id"] for r in page.resources], page.total),
            ([e["resource"]["id"] for e in bundle.get("entry") or ()], bundle.get("total"))]


EXPECTED = [(["open"], 1), ([], 1), (["open"], 1), (["open"], 1)]


def test_a_type_that_does_not_index_security_is_screened(tmp_path: Path) -> None:
    params = _without_security()
    assert params.get("Observation", "_security") is None
    repo = FhirRepository(SqliteStore(tmp_path / "huren.db"), params=params)
    _write(repo)
    assert _answers(_auditor(repo)) == EXPECTED


def test_a_store_indexed_without_security_is_reindexed_when_opened_with_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "huren.db")
    _write(FhirRepository(store, params=_without_security()))
    store.close()
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store, params=load())
    assert repo.params.get("Observation", "_security") is not None
    assert repo.search("Observation", [("_security", f"{CONF}|V")]).total == 1  # the rows are there
    assert _answers(_auditor(repo)) == EXPECTED
    store.close()
