"""A shape's index plan reads each root element once, however many parameters start there.

An Observation's ``subject`` is both ``patient``'s and ``subject``'s element, a Provenance's
``agent`` three parameters' and its ``target`` two: the generated plan walked each from the
resource again. Now the first parameter reading a root element holds its values in one name and
the others reuse it (``index_plan._root``). The rows stay the interpreter's, tuple for tuple
(``tests/test_index_plan.py`` compares them over the whole converted corpus and the R4
examples; here the resources the lab pipeline itself indexes, through the real MLLP path).
"""

from __future__ import annotations

import re
from typing import Any

from engine.repository.indexing import Indexer, shape_of
from engine.repository.searchparams import load
from tests.conftest import mllp_send
from tests.test_index_plan import _indexers, _same


def _root_reads(source: str) -> dict[str, int]:
    """How often the generated source reads each root element of the resource ``r``."""
    found: dict[str, int] = {}
    for key in re.findall(r"\br\.get\('([A-Za-z]+)'\)", source):
        found[key] = found.get(key, 0) + 1
    return found


def _plan_source(indexer: Indexer, resource: dict[str, Any]) -> str:
    """The source of the plan ``indexer`` compiled for ``resource``'s shape (kept as its docstring)."""
    indexer.rows(resource)
    return indexer._shaped[shape_of(resource)].__doc__ or ""


OBSERVATION = {
    "resourceType": "Observation", "id": "o1", "meta": {"versionId": "1", "lastUpdated": "2026-11-01T01:00:00.000Z"},
    "status": "final", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                  "code": "laboratory"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "Hb"},
    "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01T09:00:00+08:00",
    "valueQuantity": {"value": 145, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    "performer": [{"reference": "Organization/g1"}, {"reference": "Patient/p1"}],
}
PROVENANCE = {
    "resourceType": "Provenance", "id": "v1", "meta": {"versionId": "1", "lastUpdated": "2026-11-01T01:00:00.000Z"},
    "target": [{"reference": "Observation/o1/_history/1"}, {"reference": "Patient/p1/_history/2"}],
    "recorded": "2026-11-01T01:00:00Z",
    "agent": [{"type": {"coding": [{"code": "author"}]}, "role": [{"text": "lab"}],
               "who": {"reference": "Organization/g1"}}],
}


def test_each_root_element_is_read_once_per_plan() -> None:
    indexer = Indexer(load())
    for resource in (OBSERVATION, PROVENANCE):
        reads = _root_reads(_plan_source(indexer, resource))
        assert reads and all(n == 1 for n in reads.values()), reads
    assert "subject" in _root_reads(_plan_source(indexer, OBSERVATION))
    assert "agent" in _root_reads(_plan_source(indexer, PROVENANCE))


def test_shared_roots_give_the_interpreters_rows() -> None:
    for indexer in _indexers(load()):
        for resource in (OBSERVATION, PROVENANCE):
            _same(indexer, resource)
            # a value of each kind where the plan's shape met another: a bare string, a list, null
            for key, odd in (("subject", ["Patient/p2", {"reference": "Patient/p3"}]), ("subject", None),
                             ("target", "Patient/p4"), ("agent", {"who": "Practitioner/d1"}),
                             ("category", "bare"), ("performer", [True, None, {"identifier": {"value": 3}}])):
                if key in resource:
                    _same(indexer, {**resource, key: odd})


def test_the_lab_pipeline_indexes_over_mllp_as_the_interpreter(engine: Any, mllp: int) -> None:
    """The bench's 12-OBX message through a real MLLP listener: every resource it indexes is held
    to the interpreter by ``tests/conftest.py``'s fixture, and its results are found by the
    parameters whose root elements the plan now shares (``patient`` and ``subject``)."""
    from bench.ingest import oru_lab

    assert "MSA|AA" in mllp_send(mllp, oru_lab(7))
    patients = engine.repository.search("Patient", [("identifier", "MRN0000007")]).resources
    assert len(patients) == 1
    pid = patients[0]["id"]
    for param in ("patient", "subject"):
        found = engine.repository.search("Observation", [(param, f"Patient/{pid}"), ("_count", "50")])
        assert len(found.resources) == 12, param
