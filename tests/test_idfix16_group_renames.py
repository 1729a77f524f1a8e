"""The patient index judges a write group by the group's own new versions (sixteenth round, idfix16).

A FHIR transaction Bundle (over HTTP through FastAPI, into the real store: SQLite and mongomock) that renames all of a
person's linked records alike (张三 -> 张山, same national ID and birth date) leaves them linked: each
record's hook used to check it against the other records' index entries, which still held their
old names (their hooks run after it), so the first one decided ended in conflict. The neighbours
keep their answers: records renamed in a group still conflict with a record of the person the group
left alone; a birth date that contradicts the ID number is a conflict on every record; a record
that moves to another ID number in the group no longer counts against the one that stays.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import check_character

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
ZHANG = "32092319900101123" + check_character("32092319900101123")  # born 1990-01-01, male
OTHER = "32092319900101131" + check_character("32092319900101131")  # same birth and sex, another person


def patient(pid: str, name: str = "张三", number: str = ZHANG, birth: str = "1990-01-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": birth, "name": [{"text": name}],
            "identifier": [{"system": f"urn:huren:mrn:{pid.split('-')[0].upper()}", "value": pid},
                           {"value": number, "type": NNCHN}]}


@pytest.fixture
def engine(backend_settings):
    """The engine on each storage backend (SQLite, mongomock): the index is the same code on both."""
    eng = Engine(backend_settings)
    yield eng
    eng.close()


@pytest.fixture
def http(engine, client_token):
    for pid in ("fn-1", "fz-7", "fy-3"):
        assert engine.repository.update(patient(pid)).issues == []
    assert engine.identity.person_compartment("fn-1") == {"fn-1", "fz-7", "fy-3"}
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(engine)
        yield client


def transaction(http: TestClient, *records: dict[str, Any]) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"Patient/{r['id']}"}} for r in records]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200 and r.json()["type"] == "transaction-response", r.text


def state(engine, http: TestClient) -> dict[str, tuple[str, list[str]]]:
    """Each record's index status and the ``seealso`` links its stored version (read over HTTP) holds."""
    out = {}
    for pid in ("fn-1", "fz-7", "fy-3"):
        stored = http.get(f"/fhir/Patient/{pid}").json()
        links = sorted(link["other"]["reference"].split("/")[1] for link in stored.get("link", [])
                       if link["type"] == "seealso")
        out[pid] = (engine.identity.record(pid)["status"], links)
    return out


@pytest.mark.parametrize("order", [("fn-1", "fz-7", "fy-3"), ("fy-3", "fz-7", "fn-1")])
def test_a_group_renaming_every_record_alike_keeps_them_linked(engine, http, order):
    transaction(http, *(patient(pid, "张山") for pid in order))
    assert state(engine, http) == {"fn-1": ("linked", ["fy-3", "fz-7"]), "fz-7": ("linked", ["fn-1", "fy-3"]),
                                   "fy-3": ("linked", ["fn-1", "fz-7"])}
    assert engine.identity.conflicts() == []
    persons = {engine.identity.record(pid)["person"] for pid in order}
    assert len(persons) == 1 and None not in persons


@pytest.mark.parametrize("order", [("fn-1", "fz-7"), ("fz-7", "fn-1")])
def test_records_renamed_in_a_group_still_conflict_with_one_it_left_alone(engine, http, order):
    transaction(http, *(patient(pid, "张山") for pid in order))
    assert state(engine, http) == {"fn-1": ("conflict", []), "fz-7": ("conflict", []), "fy-3": ("linked", [])}


def test_a_birth_date_against_the_id_number_on_every_record_is_a_conflict_on_each(engine, http):
    transaction(http, *(patient(pid, birth="1990-01-02") for pid in ("fn-1", "fz-7", "fy-3")))
    assert {pid: s for pid, (s, _) in state(engine, http).items()} == dict.fromkeys(("fn-1", "fz-7", "fy-3"), "conflict")


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0)])
def test_a_record_moving_to_another_id_number_no_longer_counts_against_the_rest(engine, http, order):
    # fn-1 is corrected to another person's number (its name as it was); the two left rename alike
    group = [patient("fn-1", number=OTHER), patient("fz-7", "张山"), patient("fy-3", "张山")]
    transaction(http, *(group[i] for i in order))
    assert state(engine, http) == {"fn-1": ("linked", []), "fz-7": ("linked", ["fy-3"]), "fy-3": ("linked", ["fz-7"])}
    assert engine.identity.record("fn-1")["person"] != engine.identity.record("fz-7")["person"]
