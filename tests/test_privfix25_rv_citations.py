"""rvpriv25 review probes: privmend25's "every record shown to a resident cites only records that
name no one else", and its resident-write rule. Real HTTP through the FastAPI app, the real store."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import B_NID, _h, build_world, ids, resident

EFF = "2026-09-20T08:00:00+08:00"


def _obs(rid, pid, **extra):
    return {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "血压"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": EFF,
            "valueQuantity": {"value": 120, "unit": "mmHg"},
            "performer": [{"reference": "Organization/org-1"}], **extra}


CASES = {
    # a reference in an extension (any element: "by any reference, in any element")
    "obs-rv-ext": {"extension": [{"url": "http://example.org/fhir/related",
                                  "valueReference": {"reference": "Observation/obs-b"}}]},
    # a versioned reference
    "obs-rv-ver": {"hasMember": [{"reference": "Observation/obs-b/_history/1"}]},
    # a contained Observation citing B's result (the contained record is A's record's own part)
    "obs-rv-cont": {"contained": [{"resourceType": "Observation", "id": "part", "status": "final",
                                   "code": {"text": "x"}, "hasMember": [{"reference": "Observation/obs-b"}]}],
                    "hasMember": [{"reference": "#part"}]},
    # a logical reference by B's national ID number
    "obs-rv-nid": {"focus": [{"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": B_NID}}]},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    client = world.probe_client
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    for rid, extra in CASES.items():
        r = client.put(f"/fhir/Observation/{rid}", json=_obs(rid, "pa", **extra), headers=sysh)
        assert r.status_code in (200, 201), (rid, r.text)
    # an absolute reference at this server's own base (the base its Bundles' fullUrl carry)
    full = client.get("/fhir/Observation?_id=obs-b", headers=sysh).json()["entry"][0]["fullUrl"]
    r = client.put("/fhir/Observation/obs-rv-abs", headers=sysh,
                   json=_obs("obs-rv-abs", "pa", hasMember=[{"reference": full}]))
    assert r.status_code in (200, 201), r.text
    return client


@pytest.mark.parametrize("rid", [*CASES, "obs-rv-abs"])
def test_a_record_citing_bs_in_any_form_is_withheld_from_a(http, world, rid):
    """Read 404 like a missing id; not listed, not in $everything; the total counts what is listed.
    ``obs-rv-nid`` is a FINDING (left): a logical reference by B's national ID number is shown to
    A -- the national ID system is not a ``person_systems`` entry (confined.yaml), so nothing reads it."""
    h = resident(world)
    real = http.get(f"/fhir/Observation/{rid}", headers=h)
    fake = http.get("/fhir/Observation/obs-rv-zz", headers=h)
    assert real.status_code == fake.status_code == 404, (rid, real.text[:400])
    page = http.get("/fhir/Observation?_count=500&_total=accurate", headers=h).json()
    assert rid not in ids(page) and page["total"] == len(ids(page)), (rid, page.get("total"), ids(page))
    ev = http.get("/fhir/Patient/pa/$everything?_count=1000", headers=h).json()
    assert rid not in ids(ev), (rid, sorted(ids(ev)))


def test_a_scope_limited_app_writes_an_observation_citing_her_own_encounter(http, world):
    """FINDING (refusal where accept): a resident's app with ``patient/Observation.cruds`` alone (a
    blood-pressure app) writes her reading citing her own visit (Encounter/enc-a, in her compartment,
    naming no one else; shown to her when read back). The new write check asks ``can_read`` -- a
    read, so the app's scopes -- of every cited Encounter: 422 "cites a record that is not known".
    Nothing is hidden by the refusal (a read-back of the record would be 200). 201 on the base."""
    t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="bp-app",
                                  scopes=["patient/Observation.cruds"], patient="pa")
    r = http.post("/fhir/Observation", headers=_h(t),
                  json=_obs("x", "pa", encounter={"reference": "Encounter/enc-a"}))
    assert r.status_code == 201, r.text[:400]


def test_a_scope_limited_app_cannot_tell_bs_encounter_from_a_made_up_one(http, world):
    """Guard: the same app citing B's visit and a made-up one is answered alike."""
    t, _ = world.auth.issue_token(subject="person-pa", kind="patient", client_id="bp-app",
                                  scopes=["patient/Observation.cruds"], patient="pa")
    real = http.post("/fhir/Observation", headers=_h(t), json=_obs("x", "pa", encounter={"reference": "Encounter/enc-b"}))
    fake = http.post("/fhir/Observation", headers=_h(t), json=_obs("x", "pa", encounter={"reference": "Encounter/enc-zz"}))
    assert real.status_code == fake.status_code and real.text == fake.text, (real.text, fake.text)
