"""A name's or address's part written once: ``family`` and ``given`` rows hold what ``name`` states.

R4's ``Patient.family`` is ``Patient.name.family`` and ``address-city`` is ``Patient.address.city``:
each of their values is one of ``name``'s (``address``'s) values too, so a Patient wrote the same
text twice (``王`` under ``name`` and under ``family``). The parts are derived from the parameters'
expressions (``SearchParams.folded``); the wider parameter's row is left out where a part states it,
and ``name=`` / ``address=`` read their parts' rows too (``query.widen``). Every search by them
answers as before, over HTTP on both backends; the SQLite test counts the rows a Patient writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.fhir import FhirRepository
from engine.repository.searchparams import load
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings

FHIR = "application/fhir+json"
WANG = {"resourceType": "Patient", "id": "p1", "name": [{"family": "王", "given": ["芳"], "text": "王芳"}],
        "address": [{"line": ["江苏省盐城市阜宁县"], "city": "阜宁", "state": "江苏", "postalCode": "224400",
                     "text": "江苏阜宁江苏省盐城市阜宁县"}]}
# a second patient whose address is its city alone, and whose family is Li's (an ASCII spelling)
LI = {"resourceType": "Patient", "id": "p2", "name": [{"family": "Li", "given": ["Si"]}],
      "address": [{"city": "Yancheng"}]}
NAMELESS = {"resourceType": "Patient", "id": "p3", "gender": "male"}


@pytest.fixture
def http(backend_settings: Settings, client_token: Any) -> Iterator[TestClient]:
    engine = Engine(backend_settings)
    try:
        with TestClient(create_app(engine)) as client:
            client.headers["Authorization"] = "Bearer " + client_token(engine)
            for r in (WANG, LI, NAMELESS):
                got = client.put(f"/fhir/Patient/{r['id']}", json=r, headers={"Content-Type": FHIR})
                assert got.status_code in (200, 201), got.text
            yield client
    finally:
        engine.close()


def _found(http: TestClient, **params: str) -> list[str]:
    got = http.get("/fhir/Patient", params=params)
    assert got.status_code == 200, got.text
    return sorted(e["resource"]["id"] for e in got.json().get("entry", []))


def test_name_and_address_searches_answer_from_the_parts_rows(http: TestClient) -> None:
    assert _found(http, name="王") == ["p1"]  # the family part's row
    assert _found(http, name="芳") == ["p1"]  # the given part's row
    assert _found(http, name="王芳") == ["p1"]  # name's own row (its text)
    assert _found(http, name="li") == ["p2"]  # case-folded, from family's row
    assert _found(http, name="si") == ["p2"]
    assert _found(http, **{"name:exact": "Li"}) == ["p2"]
    assert _found(http, **{"name:exact": "li"}) == []
    assert _found(http, **{"name:contains": "i"}) == ["p2"]
    assert _found(http, family="王") == ["p1"] and _found(http, given="王") == []
    assert _found(http, family="芳") == [] and _found(http, given="芳") == ["p1"]
    assert _found(http, address="阜宁") == ["p1"]  # city's row (and the line's own)
    assert _found(http, address="江苏") == ["p1"]
    assert _found(http, address="2244") == ["p1"]  # postal code's row
    assert _found(http, address="yan") == ["p2"]
    assert _found(http, **{"address:exact": "Yancheng"}) == ["p2"]
    assert _found(http, **{"address-city": "阜宁"}) == ["p1"] and _found(http, **{"address-state": "阜宁"}) == []
    assert _found(http, name="王", address="阜宁") == ["p1"]
    assert _found(http, **{"name:missing": "true"}) == ["p3"]
    assert _found(http, **{"address:missing": "false"}) == ["p1", "p2"]  # p2: a city, no address row
    assert _found(http, **{"address:missing": "true"}) == ["p3"]
    ordered = http.get("/fhir/Patient", params={"_sort": "name", "name:missing": "false"}).json()
    assert [e["resource"]["id"] for e in ordered["entry"]] == ["p2", "p1"]  # "li" < "王"


def test_a_patient_writes_each_part_once(tmp_path: Path) -> None:
    """The rows of WANG: ``name`` keeps only its text (王 and 芳 are family's and given's rows),
    ``address`` its line and text; before, ``name`` had 3 rows and ``address`` 5."""
    store = SqliteStore(tmp_path / "huren.db")
    repo = FhirRepository(store)
    repo.update(WANG)
    (rid,) = store.query("SELECT rid FROM fhir_resource WHERE id = 'p1'")[0]
    rows = store.query("SELECT raw FROM ix_string WHERE rid = ? ORDER BY raw", (rid,))
    assert sorted(r[0] for r in rows) == sorted(["王芳", "王", "芳", "江苏省盐城市阜宁县", "江苏阜宁江苏省盐城市阜宁县",
                                                 "阜宁", "江苏", "224400"])
    li = repo.indexer.rows(LI)  # the sort keys are still the first text of all: family's, city's
    assert (li.sort["name"], li.sort["address"], sorted(li.strings)) == ("li", "yancheng", [
        ("address-city", "yancheng", "Yancheng"), ("family", "li", "Li"), ("given", "si", "Si"), ("name", "lisi", "LiSi")])
    assert load().folded("Patient") == {"name": ("family", "given"),
                                        "address": ("address-city", "address-country", "address-postalcode",
                                                    "address-state")}
    store.close()

