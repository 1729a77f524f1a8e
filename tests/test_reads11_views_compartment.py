"""Every way a resident can reach AuditEvents shows only their own views: no other person's id,
record, national ID, name or query values, and no count that tells how many others' there are.

张三 and 李四 are both residents; a hospital reads, searches and exports over both (and searches by
李四's national ID, one search finding nobody), 李四 reads his own record and tries 张三's. Then
张三's token asks for AuditEvents by every route the FHIR API has: searches (with and without
parameters, by 李四's patient, entity and agent, counts), reads of every record's views by id (the
bare record id, his own view id, 李四's), compartment searches, ``$everything``, ``_revinclude``,
``_include`` and history. Through the real app and the real log."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from engine.api.app import create_app
from engine.audit.view import view_id
from engine.engine import Engine
from tests.test_audit_views import LI_ID, LI_TRACES, ZHANG_ID, bearer, hospital_touches_both, resident, world

__all__ = ["world"]


@pytest.fixture
def touched(world: Engine) -> tuple[Engine, TestClient]:
    http = TestClient(create_app(world))
    hospital_touches_both(http, world)
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert http.get("/fhir/Observation/obs-li", headers=his).status_code == 200
    assert http.get(f"/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|{LI_ID}9", headers=his).status_code in (
        200, 400)  # a search that finds nobody: its record names no patient, its query does
    li = resident(world, "pt-li")
    assert http.get("/fhir/Observation/obs-li", headers=li).status_code == 200
    assert http.get("/fhir/Patient/pt-li", headers=li).status_code == 200
    assert http.get("/fhir/Observation/obs-zhang", headers=li).status_code in (403, 404)
    assert http.get("/fhir/Observation?code=http://loinc.org|2345-7", headers=li).status_code == 200
    return world, http


def _clean(response: Response, where: str) -> None:
    """What the response shows of stored data (a Bundle's entries, a resource): an error's
    diagnostics and a Bundle's links only echo the request, which named 李四 itself."""
    if response.status_code != 200:
        return
    body = response.json()
    shown = body.get("entry", []) if body.get("resourceType") == "Bundle" else body
    text = json.dumps(shown, ensure_ascii=False)
    for trace in (*LI_TRACES, "person-pt-li"):
        assert trace not in text, (where, trace, text[:2000])


def _own_views(body: dict) -> list[dict]:
    views = [e["resource"] for e in body.get("entry", []) if e["resource"]["resourceType"] == "AuditEvent"]
    for v in views:
        named = [e["what"]["reference"] for e in v.get("entity", [])
                 if (e.get("role") or {}).get("code") == "1" and "what" in e]
        assert named == ["Patient/pt-zhang"], v
    return views


def test_every_route_to_audit_events_shows_a_resident_only_their_own(touched: tuple[Engine, TestClient]) -> None:
    engine, http = touched
    me = resident(engine, "pt-zhang")
    mine = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=me)
    assert mine.status_code == 200
    assert _own_views(mine.json())

    searches = ["/fhir/AuditEvent", "/fhir/AuditEvent?_count=100", "/fhir/AuditEvent?_summary=count",
                "/fhir/AuditEvent?patient=pt-li", "/fhir/AuditEvent?patient=Patient/pt-li&_summary=count",
                "/fhir/AuditEvent?entity=Observation/obs-li", "/fhir/AuditEvent?entity=Patient/pt-li",
                "/fhir/AuditEvent?agent:identifier=urn:huren:client|his-fnxrmyy",
                "/fhir/AuditEvent?date=ge2000-01-01", "/fhir/AuditEvent?_sort=-date",
                "/fhir/Patient/pt-zhang/AuditEvent", "/fhir/Patient/pt-li/AuditEvent",
                "/fhir/Patient?_id=pt-zhang&_revinclude=AuditEvent:patient",
                "/fhir/Patient?_revinclude=AuditEvent:patient",
                "/fhir/Patient?_revinclude=AuditEvent:entity",
                "/fhir/AuditEvent?_include=AuditEvent:entity",
                "/fhir/AuditEvent?_include=AuditEvent:patient",
                "/fhir/Patient/pt-zhang/$everything", "/fhir/Patient/pt-zhang/$everything?_type=AuditEvent",
                "/fhir/Patient/pt-li/$everything?_type=AuditEvent",
                "/fhir/AuditEvent/_history", "/fhir/_history", "/fhir?_type=AuditEvent"]
    for path in searches:
        r = http.get(path, headers=me)
        _clean(r, path)
        if r.status_code == 200 and r.json().get("resourceType") == "Bundle":
            _own_views(r.json())
            total = r.json().get("total")
            if total is not None and "AuditEvent" in path and "Patient?" not in path:
                now = http.get("/fhir/AuditEvent?patient=pt-zhang&_count=1000", headers=me).json()
                assert total <= len(now["entry"]), (path, total)  # no count of others' views

    size = engine.audit.size
    assert size > 10
    for seq in range(size):
        record = f"audit-{seq}"
        for rid in (record, view_id(record, "pt-li"), view_id(record, "pt-zhang")):
            for path in (f"/fhir/AuditEvent/{rid}", f"/fhir/AuditEvent/{rid}/_history",
                         f"/fhir/AuditEvent/{rid}/_history/1", f"/fhir/AuditEvent?_id={rid}"):
                r = http.get(path, headers=me)
                _clean(r, path)
                if r.status_code == 200:
                    body = r.json()
                    _own_views(body if body["resourceType"] == "Bundle" else {"entry": [{"resource": body}]})


def test_the_other_residents_records_are_all_there_for_him_and_an_auditor(touched: tuple[Engine, TestClient]) -> None:
    """What 张三 is not shown exists: 李四 sees his own views, and the log holds the full records
    (so the test above is not passing on an empty log)."""
    engine, http = touched
    theirs = http.get("/fhir/AuditEvent?patient=pt-li", headers=resident(engine, "pt-li"))
    assert theirs.status_code == 200 and len(theirs.json()["entry"]) >= 5
    assert ZHANG_ID not in theirs.text and "obs-zhang" not in theirs.text
    records = "".join(engine.audit.events(0, engine.audit.size)[i]["id"] for i in range(engine.audit.size))
    assert records.count("audit-") == engine.audit.size
