"""The compiled index plans give exactly the rows the interpreter gives.

``Indexer.rows`` runs code generated from the search parameter data (``index_plan``), one plan
per shape of resource; ``Indexer.interpret`` evaluates the FHIRPath closures parameter by
parameter. Both are held to the same tuples in the same order, the same sort keys and the same
compartments on: every resource the converter produces from the test corpus (the public HL7 v2
samples, the example feeds and their feed-shaped variants: what ``test_convert_golden`` pins),
the official R4 examples, and shapes written to reach each branch of the generated code. Every
resource any test writes through a repository is compared too (``tests/conftest.py``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from engine import fhirjson
from engine.repository.indexing import SHAPES_PER_TYPE, Indexer
from engine.repository.searchparams import SearchParams, definitions, deployment, load
from engine.repository.sqlite_rows import RowHasher, hash_keys
from tests.conftest import REPO_ROOT
from tests.test_convert_golden import outcomes

R4 = REPO_ROOT / "tests" / "fixtures" / "r4"
BASE = "https://huren.example/fhir"


def _resources(node: Any) -> list[dict[str, Any]]:
    """The resources in a Bundle (nested ones too) or the resource itself."""
    if not isinstance(node, dict) or "resourceType" not in node:
        return []
    found = [node]
    for entry in node.get("entry") or ():
        found += _resources(entry.get("resource"))
    return found


def _stored(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as the repository indexes it: with its version bookkeeping in ``meta``."""
    stored = copy.deepcopy(resource)
    meta = resource.get("meta")
    stored["meta"] = {"versionId": "2", "lastUpdated": "2026-03-01T08:00:00.000Z",
                      **(meta if isinstance(meta, dict) else {})}
    return stored


def _indexers(params: SearchParams) -> list[Indexer]:
    """As the SQLite backend binds it (``_lastUpdated`` from its column) and as MongoDB does."""
    return [Indexer(params, BASE, skip=frozenset({"_id", "_lastUpdated"})), Indexer(params, BASE)]


def _same(indexer: Indexer, resource: dict[str, Any]) -> None:
    try:
        expected = indexer.interpret(resource)
    except Exception as err:  # a malformed element the interpreter trips on: the plan must too
        with pytest.raises(type(err)):
            indexer.rows(resource)
        return
    got = indexer.rows(resource)
    assert got == expected, resource.get("id")
    assert list(got.sort) == list(expected.sort)  # the same order of first values, too


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every resource of the corpus, each distinct one once (first met first): a third of those met were the same
    resource again, byte for byte (the same Location, Practitioner, Organization, Patient or Encounter converted from
    several messages) -- compared again, they took the same plan to the same rows (suite45c)."""
    found: list[dict[str, Any]] = []
    with mock.patch("adapters.convert.common.received_now", return_value="2026-01-01T00:00:00+00:00"):
        for _name, data in outcomes(tmp_path_factory.mktemp("samples")):
            found += _resources(fhirjson.loads(data).get("bundle"))
    for path in sorted(R4.glob("*.json")):
        found += _resources(json.loads(path.read_text(encoding="utf-8")))
    seen: set[str] = set()
    distinct = []
    for resource in found:
        text = json.dumps(resource, sort_keys=True, ensure_ascii=False)
        if text not in seen:
            seen.add(text)
            distinct.append(resource)
    return distinct


def test_the_corpus_is_wide(corpus: list[dict[str, Any]]) -> None:
    types = {r["resourceType"] for r in corpus}
    assert len(corpus) > 2000 and len(types) >= 15, (len(corpus), sorted(types))


def test_plans_equal_the_interpreter_on_the_converted_corpus(corpus: list[dict[str, Any]]) -> None:
    for indexer in _indexers(load()):
        for resource in corpus:
            _same(indexer, resource)
            _same(indexer, _stored(resource))


def test_plans_equal_the_interpreter_with_text_and_system_rows(corpus: list[dict[str, Any]]) -> None:
    """Token parameters indexed for ``:text`` and ``system|`` go through the interpreter's method
    with the values the compiled walk gathered."""
    wanted = {"Observation": ["code", "category"], "Patient": ["identifier"], "DiagnosticReport": ["code"]}
    params = SearchParams(definitions(), {**deployment(), "text": wanted, "system": wanted})
    for indexer in _indexers(params):
        for resource in corpus[::3]:
            _same(indexer, _stored(resource))


EDGES: list[dict[str, Any]] = [
    # choice elements: a Period, a null value under the plain name, a cast that is absent
    {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "Hb"},
     "effectivePeriod": {"start": "2024-03-01", "end": "2024-03-05T10:00:00+08:00"},
     "valueCodeableConcept": {"coding": [{"system": "s", "code": "c", "display": "Dé"}], "text": "T"},
     "component": [{"code": {"coding": [{"code": 7}]}, "valueQuantity": {"value": 2, "unit": "mg"}},
                   {"code": {"text": "only text"}, "valueQuantity": {"value": True}},
                   None, "not an object", {"valueString": "x"}]},
    {"resourceType": "Observation", "id": "o2", "effective": None, "effectiveInstant": "2024-03-01T08:00:00.123Z",
     "valueQuantity": {"value": 1.5, "system": "http://unitsofmeasure.org", "code": "g/L"},
     "subject": {"reference": f"{BASE}/Patient/p1"}, "performer": [None, {"identifier": {"value": 7}},
                                                                   {"reference": "https://elsewhere/Patient/x"}]},
    {"resourceType": "Observation", "id": "o3", "effectiveDateTime": "not a date", "valueString": "Hello",
     "meta": {"tag": [{"system": "urn:t", "code": "a"}], "profile": ["http://p", 3], "source": "#s",
              "security": [{"code": "R"}]},
     "subject": {"type": "Patient", "identifier": {"system": "urn:id", "value": "9"}}},
    {"resourceType": "Observation", "id": "o4", "valuePeriod": {"end": "2025"}, "valueDateTime": "2024",
     "specimen": "Specimen/not-an-object", "basedOn": [{"reference": "#contained"}, {"reference": "urn:uuid:1"}]},
    {"resourceType": "Patient", "id": "p1", "active": True, "deceasedBoolean": False, "birthDate": "1985-04",
     "name": [{"family": "王", "given": ["建国", 5], "prefix": ["Dr"], "text": "王建国"}, {"family": "王"}],
     "telecom": [{"system": "email", "value": "a@b.c"}, {"system": "phone", "value": "138"},
                 {"system": "other", "value": 1}, {"value": "no system"}],
     "identifier": [{"system": "urn:id", "value": "1"}, {"value": "2"}, {"type": {"coding": [{"display": "x"}]}}],
     "address": [{"line": ["1 Road"], "city": "Funing", "postalCode": "224400", "country": "CN"}],
     "generalPractitioner": [{"reference": "Practitioner/d1"}], "link": [{"other": {"reference": "Patient/p2"}}]},
    {"resourceType": "Patient", "meta": {"versionId": "1"}, "gender": "female"},  # no id: no compartment
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "code": "bare-string",
     "onsetAge": {"value": 3, "unit": "a"}, "abatementDateTime": "2024-05", "recordedDate": "2024-05-01"},
    {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"},
     "participant": [{"individual": {"reference": "Practitioner/d1"}}, {"individual": {"reference": "Patient/p1"}}],
     "period": {"start": "2024-01-01"}, "class": {"system": "s", "code": "IMP"}},
    {"resourceType": "AuditEvent", "id": "a1", "recorded": "2024-01-01T00:00:00Z",
     "agent": [{"who": {"reference": "Patient/p1"}}, {"who": {"reference": "Practitioner/d1"}}],
     "entity": [{"what": {"reference": "Observation/o1"}}, {"what": {"reference": "Patient/p2"}}]},
    # several values of one date parameter: its sort key is the earliest start, not the first
    {"resourceType": "AllergyIntolerance", "id": "ai1", "patient": {"reference": "Patient/p1"},
     "reaction": [{"onset": "2024-05-01"}, {"onset": "2023-01-01"}, {"onset": "2024-01"}]},
    {"resourceType": "Basic", "id": "b1", "code": {"text": "a type outside the parameter data's types"}},
    {"resourceType": "Organization", "id": "g1", "meta": "not an object", "name": "阜宁县人民医院"},
]


def test_plans_equal_the_interpreter_on_edge_shapes() -> None:
    for indexer in _indexers(load()):
        for resource in EDGES:
            _same(indexer, resource)
            _same(indexer, _stored(resource))


def test_a_malformed_coding_fails_alike() -> None:
    """A coding that is not an object makes both raise (validation refuses it before indexing)."""
    bad = {"resourceType": "Observation", "id": "x", "code": {"coding": ["not an object"]}}
    for indexer in _indexers(load()):
        with pytest.raises(AttributeError):
            indexer.interpret(bad)
        with pytest.raises(AttributeError):
            indexer.rows(bad)


def test_past_the_shapes_of_a_type_one_plan_serves_any_shape() -> None:
    indexer = _indexers(load())[0]
    shapes = [{"resourceType": "Observation", "id": f"o{i}", "status": "final",
               f"extension{i}": [], "code": {"text": str(i)}, "subject": {"reference": f"Patient/p{i}"}}
              for i in range(SHAPES_PER_TYPE + 5)]
    for resource in shapes:
        _same(indexer, resource)
    assert indexer._shape_count["Observation"] == SHAPES_PER_TYPE
    assert "Observation" in indexer._compiled  # the type's plan for any shape took over
    for resource in EDGES[:4]:
        _same(indexer, resource)


def test_plans_are_generated_from_the_data(tmp_path: Path) -> None:
    """A parameter the deployment leaves out is not in the generated code; one it adds is."""
    without = SearchParams(definitions(), {"disabled": {"Observation": ["status"]}})
    indexer = Indexer(without)
    rows = indexer.rows({"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}})
    assert not [t for t in rows.tokens if t[0] == "status"]
    plan = next(iter(indexer._shaped.values()))
    assert "'status'" not in (plan.__doc__ or "") and "'code'" in (plan.__doc__ or "")


def test_the_write_path_hashes_rows_as_the_layout_reads_them(corpus: list[dict[str, Any]]) -> None:
    """``RowHasher`` (the SQLite put) gives each resource's ``ix_hash`` keys exactly as
    ``hash_keys`` (the layout's reading) does, the second time from what it remembered."""
    params = load()
    indexer = _indexers(params)[0]
    hashers: dict[str, RowHasher] = {}
    for _round in range(2):
        for resource in corpus[::2]:
            rtype = resource["resourceType"]
            rows = indexer.rows(_stored(resource))
            hasher = hashers.setdefault(rtype, RowHasher(rtype, params.narrowed(rtype)))
            keys = hasher.keys(rows)
            assert set(keys) == hash_keys(rtype, rows, params.narrowed(rtype)) and len(keys) == len(set(keys))
