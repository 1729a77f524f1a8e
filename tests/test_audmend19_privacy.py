"""A record a label withholds from its own resident (V) must not show in that resident's audit
trail: neither when another resident's read of it is refused, nor when a hospital system reads it.

The AuditEvent view and "who looked at my record" are the resident's; they named
``Observation/obs-zhang-v`` (its id, and by its type that such a record exists) although a read of
it answers him 404. The event of a hospital's read stays, naming his Patient and no withheld record.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_audit_views import _obs, bearer, resident, world

__all__ = ["world"]

V = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}


def _labelled(world: Any) -> TestClient:
    obs = _obs("obs-zhang-v", "pt-zhang")
    obs["meta"] = V
    world.repository.update(obs)
    http = TestClient(create_app(world))
    assert http.get("/fhir/Observation/obs-zhang-v", headers=resident(world, "pt-zhang")).status_code == 404
    return http


def test_another_residents_refused_read_of_my_v_record_is_not_in_my_trail(world: Any) -> None:
    http = _labelled(world)
    zhang = resident(world, "pt-zhang")
    before = http.get("/ui/me/who-looked", headers=zhang).json()["entries"]
    assert http.get("/fhir/Observation/obs-zhang-v", headers=resident(world, "pt-li")).status_code == 404
    assert http.get("/fhir/Observation/obs-zhang", headers=resident(world, "pt-li")).status_code == 404
    events = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=zhang)
    assert events.status_code == 200
    assert "obs-zhang-v" not in events.text
    # the refused read of his ordinary result is his to see (aud19), as "another resident"
    assert re.search(r"Observation/obs-zhang(?!-)", events.text)
    entries = http.get("/ui/me/who-looked", headers=zhang).json()["entries"]
    assert [(e["role"], e["outcome"], e["resource_types"]) for e in entries[:len(entries) - len(before)]] == [
        ("other-resident", "refused", ["Observation"])]  # the one refused read of the V record: not there
    # li's own trail names nobody else's record either
    assert "pt-zhang" not in http.get("/fhir/AuditEvent", headers=resident(world, "pt-li")).text


def test_a_hospital_read_of_my_v_record_shows_the_read_not_the_record(world: Any) -> None:
    http = _labelled(world)
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert http.get("/fhir/Observation/obs-zhang-v", headers=his).status_code == 200
    assert http.get("/fhir/Observation/obs-zhang", headers=his).status_code == 200
    zhang = resident(world, "pt-zhang")
    events = http.get("/fhir/AuditEvent?patient=pt-zhang&_count=100", headers=zhang)
    assert events.status_code == 200
    assert "obs-zhang-v" not in events.text
    assert re.search(r"Observation/obs-zhang(?!-)", events.text)  # the ordinary result read stays named
    system_reads = [e["resource"] for e in events.json()["entry"]
                    if any((a.get("who") or {}).get("identifier", {}).get("value") == "his-fnxrmyy"
                           for a in e["resource"].get("agent") or ())]
    assert len(system_reads) == 2  # both reads are his to know of; one names no record
    assert sorted(len([x for x in ev["entity"] if "what" in x]) for ev in system_reads) == [1, 2]
    for ev in system_reads:  # a view read by id is the same as the search's
        one = http.get(f"/fhir/AuditEvent/{ev['id']}", headers=zhang)
        assert one.status_code == 200 and "obs-zhang-v" not in one.text
    looked = http.get("/ui/me/who-looked", headers=zhang).json()["entries"]
    his_reads = [e for e in looked if e["who"] == "his-fnxrmyy"]
    assert sorted(tuple(e["resource_types"]) for e in his_reads) == [(), ("Observation",)]
    # the hospital's auditors still see it all: the log and an unconfined reader are unchanged
    assert "obs-zhang-v" in http.get("/fhir/AuditEvent?patient=pt-zhang&_count=100", headers=his).text
