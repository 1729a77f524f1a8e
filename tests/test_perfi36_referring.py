"""perfi36: ``FhirBackend.referring`` (one narrow read of the resources whose reference parameter names
any of some targets) answers exactly what the search ``param=T1/a,T2/b,...`` answers, on each backend:
the same resources, the same bytes, in the same order, each with the writer mark ``writers`` gives.
The merge rules read the Provenances naming a message's results with it on every write
(``MergeRules._provenances``); ``tests/test_rerun35_batched.py`` and the same-bytes golden fixture
hold that path end to end.

The store is the real one on each backend (``tests.module_store``), written through the repository's
own write path, and covers each form a row can take: a target stored before its Provenance (SQLite: the
row keyed by the target's rid), a target not stored yet (hashed, and still hashed once it is), a
version reference (``Type/id/_history/n``), a type a narrowed parameter reads (``patient``: Patient
targets kept hashed), one id under two types, a deleted Provenance, a Provenance retargeted by a later
version, and more targets than one statement or one ``$in`` takes.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.engine import Engine
from tests.module_store import module_eng

engine = module_eng  # each test its own ids (P36-<test>-...)


def _put(engine: Engine, resource: dict[str, Any]) -> None:
    engine.repository.update(resource)


def _observation(rid: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-12-05T07:30:00+08:00",
            "performer": [{"reference": "Organization/P36-lab"}]}


def _provenance(rid: str, *targets: str) -> dict[str, Any]:
    return {"resourceType": "Provenance", "id": rid, "recorded": "2026-12-05T08:00:00+08:00",
            "target": [{"reference": t} for t in targets],
            "agent": [{"who": {"display": "test lab"}}]}


def _searched(engine: Engine, rtype: str, param: str, refs: list[str]) -> list[tuple[dict[str, Any], str | None]]:
    """What the search of one clause ``param=ref1,ref2,...`` finds, page after page, each with its
    writer mark as ``writers`` reads it: what ``referring`` must answer."""
    repo = engine.repository
    found: list[dict[str, Any]] = []
    while True:
        page = repo.search(rtype, [(param, ",".join(refs)), ("_count", "1000"), ("_offset", str(len(found)))])
        found.extend(page.resources)
        if not page.has_next or not page.resources:
            break
    marks = repo.writers(rtype, [r["id"] for r in found])
    return [(r, marks.get(r["id"])) for r in found]


def _referring(engine: Engine, rtype: str, param: str, refs: list[str]) -> list[tuple[dict[str, Any], str | None]]:
    return engine.repository.referring(rtype, param, [tuple(r.split("/", 1)) for r in refs])  # type: ignore[misc]


def _ids(pairs: list[tuple[dict[str, Any], str | None]]) -> list[str]:
    return [r["id"] for r, _ in pairs]


def test_referring_answers_what_the_search_answers(engine: Engine) -> None:
    """Every form of row, and every subset of the targets asked, answered as the search answers."""
    p, o = "P36-a-pt", [f"P36-a-o{i}" for i in range(6)]
    _put(engine, {"resourceType": "Patient", "id": p, "gender": "female"})
    _put(engine, {"resourceType": "Organization", "id": "P36-lab", "name": "county lab"})
    # a Provenance naming targets not stored yet: its rows stay hashed once they are
    _put(engine, _provenance("P36-a-early", f"Observation/{o[5]}/_history/1", f"DiagnosticReport/{o[1]}"))
    for rid in o:
        _put(engine, _observation(rid, p))
    _put(engine, _provenance("P36-a-1", f"Observation/{o[0]}/_history/1", f"Observation/{o[1]}/_history/1"))
    _put(engine, _provenance("P36-a-2", f"Observation/{o[1]}", f"Patient/{p}"))
    _put(engine, _provenance("P36-a-gone", f"Observation/{o[2]}/_history/1"))
    engine.repository.delete("Provenance", "P36-a-gone")
    _put(engine, _provenance("P36-a-moved", f"Observation/{o[3]}/_history/1"))
    _put(engine, _provenance("P36-a-moved", f"Observation/{o[4]}/_history/1"))  # retargeted: o3 no longer
    _put(engine, _provenance("P36-a-3", f"Observation/{o[0]}/_history/1", f"Observation/{o[5]}/_history/1"))

    asks = [[f"Observation/{r}" for r in o], [f"Observation/{o[1]}"], [f"Observation/{o[2]}"],
            [f"Observation/{o[3]}"], [f"Observation/{o[5]}", f"Observation/{o[0]}"],
            [f"DiagnosticReport/{o[1]}", f"Observation/{o[1]}"], [f"Patient/{p}"],
            [f"Observation/{o[4]}", f"Patient/{p}", f"Observation/{o[4]}"], ["Observation/P36-a-none"]]
    for refs in asks:
        want = _searched(engine, "Provenance", "target", refs)
        assert _referring(engine, "Provenance", "target", refs) == want, refs
    # spelled out once, so that "the search" cannot be wrong the same way unseen (the order is the
    # store's row key: SQLite's rowid, MongoDB's ``_id``)
    assert sorted(_ids(_referring(engine, "Provenance", "target", [f"Observation/{r}" for r in o]))) == [
        "P36-a-1", "P36-a-2", "P36-a-3", "P36-a-early", "P36-a-moved"]
    assert _ids(_referring(engine, "Provenance", "target", [f"Observation/{o[3]}", f"Observation/{o[2]}"])) == []
    assert _ids(_referring(engine, "Provenance", "target", [f"DiagnosticReport/{o[1]}"])) == ["P36-a-early"]
    # the narrowed ``patient`` (a Provenance's target of type Patient): read under ``target``
    assert _referring(engine, "Provenance", "patient", [f"Patient/{p}"]) == _searched(
        engine, "Provenance", "patient", [f"Patient/{p}"])
    assert _ids(_referring(engine, "Provenance", "patient", [f"Patient/{p}"])) == ["P36-a-2"]
    # a report's ``result`` (the other parameter keyed by the target's rid), and a Patient's
    _put(engine, {"resourceType": "DiagnosticReport", "id": "P36-a-dr", "status": "final",
                  "code": {"text": "panel"}, "subject": {"reference": f"Patient/{p}"},
                  "result": [{"reference": f"Observation/{o[0]}"}, {"reference": f"Observation/{o[2]}"}]})
    refs = [f"Observation/{o[2]}", f"Observation/{o[3]}"]
    assert _referring(engine, "DiagnosticReport", "result", refs) == _searched(engine, "DiagnosticReport", "result", refs)
    assert _ids(_referring(engine, "Observation", "subject", [f"Patient/{p}"])) == o
    assert engine.repository.referring("Provenance", "target", []) == []
    # the writer mark is the store's: a FHIR client's (``api``) for every one written here
    assert {mark for _, mark in _referring(engine, "Provenance", "target", [f"Observation/{r}" for r in o])} == {"api"}


def test_more_targets_than_one_statement_keep_the_store_order(engine: Engine) -> None:
    """1,100 targets (SQLite reads 150 a statement, MongoDB 1,000 keys an ``$in``): a match found by a
    later part comes first when the store holds it first (SQLite: written first; MongoDB: ``_id``), and
    one named by two parts comes once."""
    many = [f"Observation/P36-b-o{i:04d}" for i in range(1100)]
    _put(engine, _provenance("P36-b-1", many[1050]))            # the first written: named by the last part
    _put(engine, _provenance("P36-b-2", many[0], many[160]))    # named by the first and the second part
    _put(engine, _provenance("P36-b-3", many[999], many[1000])) # either side of MongoDB's first $in
    want = _searched(engine, "Provenance", "target", many)
    assert _ids(want) == ["P36-b-1", "P36-b-2", "P36-b-3"]
    assert _referring(engine, "Provenance", "target", many) == want
    assert _ids(_referring(engine, "Provenance", "target", many[150:])) == ["P36-b-1", "P36-b-2", "P36-b-3"]


def test_a_parameter_that_is_not_a_reference_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="no reference search parameter"):
        engine.repository.referring("Provenance", "recorded", [("Observation", "x")])
