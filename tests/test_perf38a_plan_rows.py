"""The compiled index plans make their ``IndexRows`` without its ``__init__`` (perf38a), and a lab
message's new references are the rows its searches find, on each backend.

``index_plan._NEW_ROWS`` sets the fields of a plan's ``IndexRows`` one by one and binds only the
``append``s its body uses; every field must be set (a field added to ``IndexRows`` and forgotten
there would be an ``AttributeError`` on the first write, or a missing kind of row). That the plans
give the interpreter's rows is checked on every resource any test indexes (``tests/conftest.py``),
these messages' resources included.
"""

from __future__ import annotations

import dataclasses
import re

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.repository import index_plan
from engine.repository.indexing import Indexer, IndexRows
from engine.repository.searchparams import load
from tests.hl7_calls import module_http, post, written
from tests.module_store import module_eng

engine = module_eng  # each backend; each test its own record numbers
__all__ = ["module_http"]


def _plan_source(resource: dict) -> str:
    indexer = Indexer(load(), "https://huren.example/fhir")
    indexer.rows(resource)
    meta = resource.get("meta")
    return indexer._shaped[(resource["resourceType"], tuple(resource), tuple(meta) if isinstance(meta, dict) else None)].__doc__ or ""


def test_every_field_of_index_rows_is_set_by_a_plan_in_field_order() -> None:
    fields = [f.name for f in dataclasses.fields(IndexRows)]
    assert re.findall(r"\bout\.(\w+) =", index_plan._NEW_ROWS) == fields
    rows = Indexer(load()).rows({"resourceType": "Patient", "id": "p1", "gender": "male"})
    assert type(rows) is IndexRows
    assert {name: getattr(rows, name) for name in fields} == dataclasses.asdict(IndexRows(
        tokens=[("gender", "", "male")], compartments={"p1"}, sort={"gender": "male"}))


def test_a_plan_binds_the_appends_its_body_uses_and_no_other() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1", "lastUpdated": "2026-12-05T08:00:00Z"},
               "gender": "male", "birthDate": "1980-01-01", "managingOrganization": {"reference": "Organization/o1"}}
    source = _plan_source(patient)
    for name in index_plan._APPENDS:
        bound = f"{name} = {name[:-7]}.append" in source
        used = re.search(rf"\b{name}\(", source) is not None
        assert bound == used, (name, source)
    assert "tokens_append(" in source and "quantities_append" not in source and "uris_append" not in source


def _lab(control: str, mrn: str) -> str:
    """Three results of one order (FNXRMYY's LIS), each a new Observation the report and the
    Provenance name by a new reference."""
    obx = "".join(f"OBX|{i}|NM|{code}^{name}^L||{value}|{unit}|{rng}||||F|||20261201090000\r"
                  for i, (code, name, value, unit, rng) in enumerate(
                      [("WBC", "白细胞计数", "6.2", "10*9/L", "3.5-9.5"), ("HGB", "血红蛋白", "145", "g/L", "130-175"),
                       ("PLT", "血小板计数", "210", "10*9/L", "125-350")], start=1))
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{mrn}^^^FNXRMYY^MR||王^五||19850412|M\r"
            f"OBR|1|O{control}|L{control}|CBC^血常规^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r" + obx)


def _ids(http: TestClient, query: str) -> list[str]:
    r = http.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["id"] for e in r.json().get("entry") or () if e.get("search", {}).get("mode") != "include")


def test_a_lab_messages_new_references_are_what_its_searches_find(engine: Engine, http: TestClient) -> None:
    ack = post(http, _lab("P38A-1", "P38A-MRN-1"))
    assert b"MSA|AA|P38A-1" in ack, ack
    results = written(engine, http, "P38A-1", "Observation")
    [report] = written(engine, http, "P38A-1", "DiagnosticReport")
    [patient] = written(engine, http, "P38A-1", "Patient")
    assert len(results) == 3
    pid, base = patient["id"], engine.repository.base_url
    assert sorted(r["id"] for r in results) == _ids(http, f"Observation?subject=Patient/{pid}") \
        == _ids(http, f"Observation?patient={base}/Patient/{pid}") == _ids(http, f"Observation?patient={pid}")
    for result in results:
        assert _ids(http, f"DiagnosticReport?result=Observation/{result['id']}") == [report["id"]]
        assert _ids(http, f"DiagnosticReport?result={base}/Observation/{result['id']}") == [report["id"]]
        provenances = _ids(http, f"Provenance?target=Observation/{result['id']}")
        assert len(provenances) == 1
        assert _ids(http, f"Provenance?target=Observation/{result['id']}/_history/1") == provenances
    assert _ids(http, f"DiagnosticReport?result=Observation/{results[0]['id']}x") == []
    assert _ids(http, f"Observation?subject=Patient/{pid}x") == []
