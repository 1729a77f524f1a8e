"""rvlast25b review of the lead's privacy take (69acc94): a logical reference naming another person
(``_other_number``), through every read a resident has. Real HTTP through the FastAPI app, the real store."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import B_NID, _h, build_world, ids, resident

EFF = "2026-09-20T08:00:00+08:00"


def _obs(rid, pid, **extra):
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "血压"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF,
            "valueQuantity": {"value": 120, "unit": "mmHg"}, "performer": [{"reference": "Organization/org-1"}], **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    client = world.probe_client
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    # v1 names B by her national ID number; v2 no longer does
    r = client.put("/fhir/Observation/rl-hist", headers=sysh, json=_obs(
        "rl-hist", "pa", focus=[{"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": B_NID}}]))
    assert r.status_code in (200, 201), r.text
    r = client.put("/fhir/Observation/rl-hist", headers=sysh, json=_obs("rl-hist", "pa"))
    assert r.status_code == 200, r.text
    # B's number in an untyped logical reference under a system of no list (valid_number decides)
    r = client.put("/fhir/Observation/rl-any", headers=sysh, json=_obs(
        "rl-any", "pa", focus=[{"type": "Patient", "identifier": {"system": "urn:example:ids", "value": B_NID.lower()}}]))
    assert r.status_code in (200, 201), r.text
    # B by her hospital record number (a logical reference by the MRN system her Patient carries)
    r = client.put("/fhir/Observation/rl-mrn", headers=sysh, json=_obs(
        "rl-mrn", "pa", focus=[{"type": "Patient", "identifier": {"system": "urn:huren:mrn:FNXRMYY", "value": "PB-MRN"}}]))
    assert r.status_code in (200, 201), r.text
    return client


def test_an_older_version_naming_b_by_number_is_not_shown_in_history_or_vread(http, world):
    h = resident(world)
    assert http.get("/fhir/Observation/rl-hist", headers=h).status_code == 200  # v2 is hers alone
    hist = http.get("/fhir/Observation/rl-hist/_history", headers=h)
    assert B_NID not in hist.text, hist.text[:600]
    v1 = http.get("/fhir/Observation/rl-hist/_history/1", headers=h)
    assert B_NID not in v1.text and v1.status_code in (403, 404, 410), (v1.status_code, v1.text[:300])


def test_bs_number_under_any_system_in_lower_case_is_withheld(http, world):
    h = resident(world)
    assert http.get("/fhir/Observation/rl-any", headers=h).status_code == 404
    page = http.get("/fhir/Observation?_count=500&_total=accurate", headers=h).json()
    assert "rl-any" not in ids(page) and page["total"] == len(ids(page))


def test_a_logical_reference_by_bs_record_number_is_withheld(http, world):
    """A's Observation whose focus names B by B's MRN at the hospital (the system B's Patient carries):
    B's identifier shown to A, as B's national ID number was before privfix25."""
    h = resident(world)
    r = http.get("/fhir/Observation/rl-mrn", headers=h)
    assert r.status_code == 404 and "PB-MRN" not in r.text, r.text[:400]



B_RECORDS = {
    "RelatedPerson": {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/pb"}, "name": [{"text": "钱母"}]},
    "Device": {"resourceType": "Device", "patient": {"reference": "Patient/pb"}, "deviceName": [{"name": "B's pump", "type": "user-friendly-name"}]},
}


@pytest.mark.parametrize("rtype", sorted(B_RECORDS))
def test_an_audit_event_whose_agent_is_bs_record_does_not_show_its_id(http, world, rtype):
    """The lead exempted AuditEvent from ``_cites_others`` (judged by its ``inside`` rules, entity.what only). An
    event of A's record whose agent is a record of B's compartment (B's relative, B's device) must not show A
    that record's id: refused whole or the reference withheld."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    rid = f"rl-{rtype.lower()}-b"
    r = http.put(f"/fhir/{rtype}/{rid}", headers=sysh, json={**B_RECORDS[rtype], "id": rid})
    assert r.status_code in (200, 201), r.text
    event = {"resourceType": "AuditEvent", "id": f"rl-ae-{rtype.lower()}",
             "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
             "recorded": "2026-09-20T08:00:00+08:00", "outcome": "0",
             "agent": [{"who": {"reference": f"{rtype}/{rid}"}, "requestor": True}],
             "source": {"observer": {"reference": "Organization/org-1"}},
             "entity": [{"what": {"reference": "Patient/pa"}}]}
    r = http.put(f"/fhir/AuditEvent/{event['id']}", headers=sysh, json=event)
    assert r.status_code in (200, 201), r.text
    h = resident(world)
    got = http.get(f"/fhir/AuditEvent/{event['id']}", headers=h)
    assert rid not in got.text, (got.status_code, got.text[:500])
    page = http.get("/fhir/AuditEvent?_count=500", headers=h)
    assert rid not in page.text, page.text[:500]


@pytest.mark.parametrize("rtype", sorted(B_RECORDS))
def test_an_observation_citing_bs_record_is_withheld(http, world, rtype):
    """The comparator: A's Observation citing the same record of B's (``_cites_others``, every type)."""
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    rid = f"rl-{rtype.lower()}-b2"
    assert http.put(f"/fhir/{rtype}/{rid}", headers=sysh, json={**B_RECORDS[rtype], "id": rid}).status_code in (200, 201)
    oid = f"rl-obs-{rtype.lower()}"
    r = http.put(f"/fhir/Observation/{oid}", headers=sysh, json=_obs(oid, "pa", performer=[{"reference": f"{rtype}/{rid}"}])
                 if rtype == "RelatedPerson" else _obs(oid, "pa", device={"reference": f"{rtype}/{rid}"}))
    assert r.status_code in (200, 201), r.text
    assert http.get(f"/fhir/Observation/{oid}", headers=resident(world)).status_code == 404
