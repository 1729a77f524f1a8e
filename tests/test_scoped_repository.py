"""``ScopedRepository`` over every backend: what a confined caller gets, and that the shared
repository asks it for everything reached indirectly (chains, includes, Bundle entries, matches)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.auth.caller import Caller
from engine.errors import Forbidden, NotFound
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.repository.scoped import ScopedRepository

BASE = "http://huren.test/fhir"


def _patient(pid: str, number: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": "urn:test:id", "value": number}]}


def _obs(oid: str, pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "Hb"},
            "subject": {"reference": f"Patient/{pid}"}, **extra}


def _event(eid: str, *refs: str, query: str | None = None) -> dict[str, Any]:
    entity: list[dict[str, Any]] = [{"what": {"reference": r}} for r in refs]
    if query:
        entity.append({"query": query, "description": "Patient?identifier"})
        entity.append({"detail": [{"type": "operation", "valueString": "search"},
                                  {"type": "reason", "valueString": "asked about NB by phone"}]})
    return {"resourceType": "AuditEvent", "id": eid, "recorded": "2026-11-01T00:00:00Z",
            "type": {"code": "rest"}, "agent": [{"requestor": True, "who": {"display": "his"}}],
            "source": {"observer": {"display": "huren"}}, "entity": entity, "outcomeDesc": "HTTP 200"}


@pytest.fixture
def repo(store: Store) -> FhirRepository:
    r = FhirRepository(store, base_url=BASE)
    r.update({"resourceType": "Organization", "id": "org", "name": "Hospital"})
    r.update(_patient("a1", "NA"))
    r.update(_patient("b1", "NB"))
    for n in range(7):
        r.update(_obs(f"oa{n}", "a1", performer=[{"reference": "Organization/org"}]))
    r.update(_obs("ob", "b1"))
    # names A and B: in A's compartment by definition, and must never reach A
    r.update(_obs("oab", "a1", focus=[{"reference": "Patient/b1"}]))
    r.update(_event("e-a", "Patient/a1", "Observation/oa1", query="UGF0aWVudD9pZGVudGlmaWVyPU5C"))
    r.update(_event("e-ab", "Patient/a1", "Patient/b1"))
    r.update(_event("e-a-bobs", "Patient/a1", "Observation/ob"))  # names only A, but touches B's record
    anonymous = _event("e-a-resident", "Patient/a1")  # another resident tried: shown without who
    anonymous["agent"] = [{"requestor": True, "who": {"identifier": {"system": "urn:huren:resident"}}}]
    r.update(anonymous)
    named = _event("e-a-b-agent", "Patient/a1")  # ... but never with their identity
    named["agent"] = [{"requestor": True, "who": {"identifier": {"system": "urn:huren:resident", "value": "person-b"}}}]
    r.update(named)
    return r


def resident(repo: FhirRepository, scopes: tuple[str, ...] = ("patient/*.rs",)) -> ScopedRepository:
    return ScopedRepository(repo, Caller("person-a", "patient", scopes, "app", patient_ids=frozenset({"a1"}),
                                         person="person-a", patient="a1"))


def ids(result: Any) -> list[str]:
    return sorted(r["id"] for r in result.resources)


def test_a_confined_caller_gets_only_what_names_no_one_else(repo: FhirRepository) -> None:
    a = resident(repo)
    assert ids(a.search("Observation", [])) == [f"oa{n}" for n in range(7)]
    with pytest.raises(NotFound) as missing:
        a.read("Observation", "oab")
    with pytest.raises(NotFound) as other:
        a.read("Observation", "ob")
    assert missing.value.diagnostics == other.value.diagnostics == "this Observation is not known"
    assert ids(a.search("AuditEvent", [])) == ["e-a", "e-a-resident"]
    [event] = a.search("AuditEvent", [("_id", "e-a")]).resources
    assert all("query" not in x for x in event["entity"])
    assert [d["type"] for x in event["entity"] for d in x.get("detail", [])] == ["operation"]  # no free text
    assert any(x.get("description") == "Patient?identifier" for x in event["entity"])  # names, no values
    assert {"code": "SUBSETTED"}.items() <= event["meta"]["tag"][-1].items()
    assert any("query" in x for x in repo.read("AuditEvent", "e-a")["entity"])  # the stored event is untouched


def test_paging_and_totals_count_what_the_caller_may_see(repo: FhirRepository) -> None:
    a = resident(repo)
    pages, offset = [], 0
    while True:
        page = a.search("Observation", [("_count", "3"), ("_offset", str(offset))])
        assert page.total == 7
        pages += [r["id"] for r in page.resources]
        if not page.has_next:
            break
        offset += 3
    assert sorted(pages) == [f"oa{n}" for n in range(7)]
    assert a.search("Observation", [("_summary", "count")]).total == 7
    assert a.search("AuditEvent", [("_summary", "count")]).total == 2


def test_chains_and_includes_reach_only_what_the_caller_may_read(repo: FhirRepository) -> None:
    a = resident(repo)
    assert ids(a.search("Observation", [("subject:Patient.identifier", "NB")])) == []
    assert ids(a.search("AuditEvent", [("patient.identifier", "NB")])) == []
    assert ids(a.search("AuditEvent", [("patient", "b1")])) == []
    inc = a.search("Patient", [("_revinclude", "AuditEvent:patient"), ("_revinclude", "Observation:subject")])
    assert sorted(r["id"] for r in inc.included) == sorted([*(f"oa{n}" for n in range(7)), "e-a", "e-a-resident"])
    system = ScopedRepository(repo, Caller("his", "system", ("system/Observation.rs",), "his"))
    with pytest.raises(Forbidden):  # the chain is a Patient search the token does not permit
        system.search("Observation", [("subject:Patient.identifier", "NB")])
    inc = system.search("Observation", [("_id", "oa0"), ("_include", "Observation:subject")])
    assert inc.included == []  # no Patient read scope: not included


def test_bundle_entries_and_conditional_matches_go_through_the_caller(repo: FhirRepository) -> None:
    a = resident(repo, ("patient/*.cruds",))
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/ob"}},
        {"request": {"method": "GET", "url": "Observation/nothing"}},
        {"request": {"method": "GET", "url": "AuditEvent?patient=b1"}},
        {"request": {"method": "PUT", "url": "Observation/ob"}, "resource": _obs("ob", "a1")},
        {"request": {"method": "POST", "url": "Observation"}, "resource": _obs("x", "b1")},
    ]}
    out = a.batch(batch, [])["entry"]
    assert out[0] == out[1] and out[0]["response"]["status"].startswith("404")
    assert "entry" not in out[2]["resource"]
    assert out[3]["response"]["status"].startswith("404")  # B's record reads as unknown, and is not changed
    assert out[4]["response"]["status"].startswith("403")
    assert repo.read("Observation", "ob")["subject"]["reference"] == "Patient/b1"
    # If-None-Exist matching B's record does not answer with it: a new record of A's is made
    created = a.create(_obs("", "a1"), if_none_exist="_id=ob")
    assert created.created and created.resource["id"] != "ob"
    with pytest.raises(Forbidden):
        a.delete("Observation", "oa0")
    with pytest.raises(NotFound):
        a.update(_obs("ob", "a1"))
