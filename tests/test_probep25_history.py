"""probep25: versions of a record that once belonged to someone else (twenty-fifth round).

A hospital files a result under B, then corrects it to A (the same Observation id, version 2 names
A: what a FHIR client's correction or a moved order does); and it registers A's record with B's
national ID by mistake, then corrects it. The current versions are each person's own; the earlier
ones are the other person's. Real HTTP, the real store."""

from __future__ import annotations

import pytest

from tests.test_probep25_privacy import A_NID, B_NID, NNCHN, _h, _obs, _patient, build_world, resident


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


@pytest.fixture(scope="module")
def http(world):
    client = world.probe_client
    sysh = _h(world.auth.issue_system_token("his-a", "system/*.cruds"))
    steps = [_obs("obs-moved", "pb", 11.1), _obs("obs-moved", "pa", 11.1),   # B's, then corrected to A
             _obs("obs-away", "pa", 12.2), _obs("obs-away", "pb", 12.2)]     # A's, then corrected to B
    wrong = _patient("pa2", B_NID, "赵二", "PA2-MRN")  # A's second record, first with B's number
    steps += [wrong, _patient("pa2", A_NID, "赵二", "PA2-MRN")]
    for r in steps:
        resp = client.put(f"/fhir/{r['resourceType']}/{r['id']}", json=r, headers=sysh)
        assert resp.status_code in (200, 201), resp.text
    assert NNCHN
    return client


def _versions(resp):
    assert resp.status_code in (200, 404), resp.text[:300]
    if resp.status_code == 404:
        return []
    return [(e.get("resource") or {}).get("subject", {}).get("reference") for e in resp.json().get("entry", [])]


def test_a_does_not_see_the_version_that_was_bs(http, world):
    h = resident(world, "pa")
    assert http.get("/fhir/Observation/obs-moved", headers=h).status_code == 200  # hers now
    v1 = http.get("/fhir/Observation/obs-moved/_history/1", headers=h)
    assert v1.status_code == 404, ("B's version 1 shown to A", v1.text[:400])
    assert "Patient/pb" not in _versions(http.get("/fhir/Observation/obs-moved/_history", headers=h))


def test_a_does_not_see_the_version_that_is_bs_now(http, world):
    h = resident(world, "pa")
    assert http.get("/fhir/Observation/obs-away", headers=h).status_code == 404  # B's now
    hist = http.get("/fhir/Observation/obs-away/_history", headers=h)
    missing = http.get("/fhir/Observation/zz-missing/_history", headers=h)
    assert hist.status_code == missing.status_code, (hist.text[:400], missing.text[:300])
    assert "Patient/pb" not in hist.text
    v2 = http.get("/fhir/Observation/obs-away/_history/2", headers=h)
    assert v2.status_code == 404 and "Patient/pb" not in v2.text


def test_b_does_not_see_the_version_that_is_as_now(http, world):
    h = resident(world, "pb")
    v2 = http.get("/fhir/Observation/obs-moved/_history/2", headers=h)
    assert v2.status_code == 404 and "Patient/pa" not in v2.text, v2.text[:400]
    assert "Patient/pa" not in http.get("/fhir/Observation/obs-moved/_history", headers=h).text


def test_a_earlier_version_of_her_record_with_bs_number(http, world):
    """A's second record once carried B's national ID (a registration mistake, corrected): A's
    token may read the record's history, but the version naming B's number names B."""
    h = resident(world, "pa2")  # a token for that record (FHIR writes link no records by number here)
    assert http.get("/fhir/Patient/pa2", headers=h).status_code == 200
    for path in ("/fhir/Patient/pa2/_history/1", "/fhir/Patient/pa2/_history"):
        r = http.get(path, headers=h)
        assert B_NID not in r.text, (path, r.status_code, r.text[:600])
