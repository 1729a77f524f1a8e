"""A ``PUT Type/{id}`` checks the body before the stored version, so a refused body says nothing of the id.

Review of privfix17 (neighbour of the remit case): a resident token with write scopes (none is
issued by the sign-in today, but the scopes allow it) sending a body about someone else got 404
at an id holding another person's record (the stored version decided first) and 403 at a free id
(the body decided): the difference told which ids hold someone's record. The body is now checked
first (``FhirRepository.update``). Real HTTP through FastAPI, a real token, the real store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app


def _resident_and_a_foreign_allergy(engine: Any) -> tuple[TestClient, dict[str, str], str, dict[str, Any], str]:
    """张三's resident client (write scopes on allergies), and 李四's stored allergy: (http, auth, 张三's
    record id, the allergy's body naming 李四, its id)."""
    repo = engine.repository
    me = repo.create({"resourceType": "Patient", "name": [{"text": "张三"}]}).resource["id"]
    other = repo.create({"resourceType": "Patient", "name": [{"text": "李四"}]}).resource["id"]
    obs = {"resourceType": "AllergyIntolerance", "code": {"text": "青霉素"},
           "patient": {"reference": f"Patient/{other}"}}
    taken = repo.create(obs).resource["id"]
    token, _ = engine.auth.issue_token(subject="person-zs", kind="patient", client_id="phr",
                                       scopes=["patient/AllergyIntolerance.cruds"], patient=me)
    return TestClient(create_app(engine)), {"Authorization": f"Bearer {token}"}, me, obs, taken


def test_a_foreign_body_is_refused_alike_at_a_taken_and_a_free_id(engine: Any) -> None:
    repo = engine.repository
    http, auth, me, obs, taken = _resident_and_a_foreign_allergy(engine)
    answers = []
    for rid in (taken, "no-such-allergy"):
        r = http.put(f"/fhir/AllergyIntolerance/{rid}", json={**obs, "id": rid}, headers=auth)
        assert r.status_code == 403, (rid, r.status_code, r.text[:300])
        answers.append(r.text)
    assert answers[0] == answers[1]
    assert repo.read("AllergyIntolerance", taken)["patient"] == obs["patient"]
    # his own body at a free id: 404 since probe21 (a resident updates only a record of theirs that is
    # there; at a free id it was a create, 201, where another person's id answered 404); POST creates
    mine = {**obs, "id": "allergy-mine", "patient": {"reference": f"Patient/{me}"}}
    assert http.put("/fhir/AllergyIntolerance/allergy-mine", json=mine, headers=auth).status_code == 404
    assert http.post("/fhir/AllergyIntolerance", json=mine, headers=auth).status_code == 201


def test_a_foreign_body_in_a_bundle_is_refused_alike_at_a_taken_and_a_free_id(engine: Any) -> None:
    """The same for a PUT entry of a batch and of a transaction (review of privfix2): the entry at a
    taken id answered 404, at a free id 403."""
    repo = engine.repository
    http, auth, me, obs, taken = _resident_and_a_foreign_allergy(engine)
    entries = [{"resource": {**obs, "id": rid}, "request": {"method": "PUT", "url": f"AllergyIntolerance/{rid}"}}
               for rid in (taken, "no-such-allergy")]
    batch = http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries}, headers=auth)
    assert batch.status_code == 200, batch.text[:300]
    statuses = [e["response"]["status"] for e in batch.json()["entry"]]
    assert [s.split()[0] for s in statuses] == ["403", "403"], statuses
    for entry in entries:
        one = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
                        headers=auth)
        assert one.status_code == 403, (entry["request"]["url"], one.status_code, one.text[:300])
    assert repo.read("AllergyIntolerance", taken)["patient"] == obs["patient"]
