"""probesec26: CDS Hooks 2.0 service probed through real HTTP against the real app.

Expected answers from CDS Hooks 2.0 (cds-hooks.hl7.org/2.0): §Discovery (services: hook,
description, id REQUIRED), §HTTP Request (hookInstance REQUIRED: "a universally unique
identifier (UUID) for this particular hook call"; context REQUIRED), §Card Attributes (uuid,
summary "<140-character", indicator info|warning|critical, source.label REQUIRED,
selectionBehavior REQUIRED when suggestions), §Trusting CDS Clients (JWT: iss, aud, exp, iat, jti).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.module_store import module_sqlite_eng  # noqa: F401 -- a fixture (shared_two's engine)
from tests.test_cds_hooks import bearer, draft, hook_request
from tests.test_recognition_world import ALICE, BOB, A, B, World, cbc

SELECT = "/cds-services/huren-recognition-select"
SIGN = "/cds-services/huren-recognition-sign"


def _two(engine: Any) -> dict[str, Any]:
    """Alice and Bob each with a CBC at hospital A, each registered at hospital B."""
    w = World(engine)
    alice_a, alice_b = w.patient(A, ALICE, mrn="A-1"), w.patient(B, ALICE, mrn="B-1")
    bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
    a_prior = w.report(A, alice_a, cbc(A), "2026-03-10T09:00:00+08:00")
    b_prior = w.report(A, bob_a, cbc(A), "2026-03-11T09:00:00+08:00")
    return {"http": TestClient(create_app(engine)), "alice": alice_b, "bob": bob_b, "bob_a": bob_a,
            "alice_prior": f"DiagnosticReport/{a_prior.resource['id']}",
            "bob_prior": f"DiagnosticReport/{b_prior.resource['id']}"}


@pytest.fixture
def two(engine: Any) -> dict[str, Any]:
    """``_two`` on the test's own engine: for the tests whose hook calls keep cards or audit reads."""
    return _two(engine)


@pytest.fixture(scope="module")
def shared_two(module_sqlite_eng: Any) -> dict[str, Any]:  # noqa: F811
    """``_two`` once a module (``module_store.module_sqlite_eng``: the ``engine`` fixture's engine), for the tests
    that only read the discovery or send what is refused (400, 401) or names no one stored: each had built the
    county on an engine of its own (trim43's rule)."""
    return _two(module_sqlite_eng)


def test_discovery_shape(shared_two: dict[str, Any]) -> None:
    two = shared_two
    r = two["http"].get("/cds-services")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    for s in r.json()["services"]:
        assert s["hook"] in ("order-select", "order-sign") and s["description"] and s["id"]
        assert all(isinstance(v, str) and "{{context.patientId}}" in v for v in s["prefetch"].values())


@pytest.mark.parametrize("body", [
    {"hook": "order-select", "hookInstance": str(uuid.uuid4())},  # no context
    {"hook": "order-select", "hookInstance": str(uuid.uuid4()), "context": []},
    {"hook": "order-select", "hookInstance": str(uuid.uuid4()), "context": {"userId": "Practitioner/x"}},
    {"hookInstance": str(uuid.uuid4()), "context": {"patientId": "x"}},  # no hook
    {"hook": "order-select", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "x"}, "prefetch": ["x"]},
    {"hook": "order-select", "hookInstance": str(uuid.uuid4()),
     "context": {"patientId": "x", "draftOrders": {"entry": {"a": 1}}}},
    {"hook": "order-select", "hookInstance": str(uuid.uuid4()), "context": {"patientId": "x", "selections": "a"}},
])
def test_malformed_hook_requests_are_400(module_sqlite_eng: Any, shared_two: dict[str, Any], body: dict) -> None:  # noqa: F811
    engine, two = module_sqlite_eng, shared_two
    r = two["http"].post(SELECT, json=body, headers=bearer(engine))
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_body_not_json_is_400(module_sqlite_eng: Any, shared_two: dict[str, Any]) -> None:  # noqa: F811
    engine, two = module_sqlite_eng, shared_two
    r = two["http"].post(SELECT, content=b"{not json", headers={**bearer(engine), "Content-Type": "application/json"})
    assert r.status_code == 400


def test_hook_instance_that_is_not_a_uuid_is_refused(module_sqlite_eng: Any, shared_two: dict[str, Any]) -> None:  # noqa: F811
    """§HTTP Request: hookInstance is a UUID. huren keys the card it keeps for feedback on
    hookInstance + draft id alone; a non-UUID value ("1", "x") is taken as is."""
    engine, two = module_sqlite_eng, shared_two
    p = two["alice"]
    for bad in ("1", "x", "not-a-uuid"):
        body = {**hook_request("order-sign", p, [draft("d1", cbc(B), p)]), "hookInstance": bad}
        r = two["http"].post(SIGN, json=body, headers=bearer(engine))
        assert r.status_code == 400, (bad, r.status_code, r.text[:200])


def test_a_second_callers_card_does_not_replace_the_first(engine: Any, two: dict[str, Any]) -> None:
    """Two EHR clients use the same hookInstance and the same local draft id "d1" (draft ids are the
    client's own), for two different people. Each card must stay the one its caller was shown: the
    first doctor's "recognise" feedback must be recorded for Alice's order, not Bob's."""
    http = two["http"]
    hi = str(uuid.uuid4())
    a_body = {**hook_request("order-sign", two["alice"], [draft("d1", cbc(B), two["alice"])]), "hookInstance": hi}
    b_body = {**hook_request("order-sign", two["bob"], [draft("d1", cbc(B), two["bob"])]), "hookInstance": hi}
    ehr1 = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "ehr-1", "system/ServiceRequest.crus system/DiagnosticReport.rs")}
    ehr2 = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "ehr-2", "system/ServiceRequest.crus system/DiagnosticReport.rs")}
    [a_card] = http.post(SIGN, json=a_body, headers=ehr1).json()["cards"]
    assert two["alice_prior"] in a_card["detail"]
    [b_card] = http.post(SIGN, json=b_body, headers=ehr2).json()["cards"]
    assert two["bob_prior"] in b_card["detail"]
    fb = {"feedback": [{"card": a_card["uuid"], "outcome": "accepted",
                        "acceptedSuggestions": [{"id": a_card["suggestions"][0]["uuid"]}]}]}
    r = http.post(SIGN + "/feedback", json=fb, headers=ehr1)
    assert r.status_code == 200, r.text
    from engine.recognition.state import CARDS
    kept = engine.recognition.store.collection(CARDS).get(a_card["uuid"])
    # what the feedback was recorded against: the card row the service kept
    assert kept["patient"] == two["alice"] and kept["recognisable"] == [two["alice_prior"]], kept


def test_card_shape_and_no_one_elses_results(engine: Any, two: dict[str, Any]) -> None:
    p = two["alice"]
    body = hook_request("order-sign", p, [draft("d1", cbc(B), p)])
    r = two["http"].post(SIGN, json=body, headers=bearer(engine))
    assert r.status_code == 200
    [card] = r.json()["cards"]
    assert uuid.UUID(card["uuid"])
    assert 0 < len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert card["selectionBehavior"] in ("at-most-one", "any")
    for s in card["suggestions"]:
        assert s["label"] and all(a["type"] in ("create", "update", "delete") and a["description"]
                                  for a in s["actions"])
    for link in card["links"]:
        assert link["type"] in ("absolute", "smart") and link["label"] and link["url"].startswith("http")
    for reason in card["overrideReasons"]:
        assert reason["code"] and reason["system"]
    text = str(card)
    assert two["alice_prior"] in text
    assert two["bob_prior"] not in text and two["bob"].split("/")[1] not in text and BOB not in text


def test_unknown_patient_without_prefetch_gets_no_cards(module_sqlite_eng: Any, shared_two: dict[str, Any]) -> None:  # noqa: F811
    """A patientId that is not stored and no prefetch: nobody is known, nobody's results shown."""
    engine, two = module_sqlite_eng, shared_two
    p = "Patient/not-stored"
    body = hook_request("order-sign", p, [draft("d1", cbc(B), p)])
    r = two["http"].post(SIGN, json=body, headers=bearer(engine))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_draft_naming_another_patient_shows_only_the_context_persons_results(engine: Any, two: dict[str, Any]) -> None:
    p = two["alice"]
    body = hook_request("order-sign", p, [draft("d1", cbc(B), two["bob"])])  # draft's subject is Bob
    r = two["http"].post(SIGN, json=body, headers=bearer(engine))
    assert r.status_code == 200
    assert two["bob_prior"] not in r.text


def test_fhir_authorization_in_the_body_is_not_a_credential(module_sqlite_eng: Any, shared_two: dict[str, Any]) -> None:  # noqa: F811
    """fhirAuthorization is for the service to call the client's FHIR server; it must not stand in
    for the caller's own authentication."""
    engine, two = module_sqlite_eng, shared_two
    p = two["alice"]
    token = engine.auth.issue_system_token("ehr-b", "system/ServiceRequest.crus system/DiagnosticReport.rs")
    body = {**hook_request("order-sign", p, [draft("d1", cbc(B), p)]), "fhirServer": "https://ehr.example/fhir",
            "fhirAuthorization": {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                  "scope": "system/ServiceRequest.crus", "subject": "ehr-b"}}
    r = two["http"].post(SIGN, json=body)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_a_self_signed_cds_client_jwt_is_not_accepted(module_sqlite_eng: Any, shared_two: dict[str, Any]) -> None:  # noqa: F811
    """§Trusting CDS Clients describes a JWT the client signs itself (iss, aud = the service URL,
    exp, iat, jti). huren takes only its own access tokens (usageRequirements says so); a JWT signed
    by a registered client's key is not one, whatever its claims."""
    engine, two = module_sqlite_eng, shared_two
    key = ec.generate_private_key(ec.SECP384R1())
    import json as _json
    jwk = _json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "ES384"})
    engine.auth.registry.add("ehr-jwt", scopes=["system/ServiceRequest.cru"], kind="system", jwks={"keys": [jwk]})
    now = int(time.time())
    own = jwt.encode({"iss": "ehr-jwt", "sub": "ehr-jwt", "aud": "http://testserver" + SIGN, "exp": now + 60,
                      "iat": now, "jti": str(uuid.uuid4()), "kind": "system", "scope": "system/ServiceRequest.cru"},
                     key, algorithm="ES384", headers={"kid": "k1"})
    p = two["alice"]
    r = two["http"].post(SIGN, json=hook_request("order-sign", p, [draft("d1", cbc(B), p)]),
                         headers={"Authorization": f"Bearer {own}"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_feedback_for_a_card_of_another_service_is_404(engine: Any, two: dict[str, Any]) -> None:
    p = two["alice"]
    [card] = two["http"].post(SIGN, json=hook_request("order-sign", p, [draft("d1", cbc(B), p)]),
                              headers=bearer(engine)).json()["cards"]
    fb = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}]}
    assert two["http"].post(SELECT + "/feedback", json=fb, headers=bearer(engine)).status_code == 404


def test_a_card_showing_a_result_is_audited_against_the_record_the_result_is_in(engine: Any,
                                                                               two: dict[str, Any]) -> None:
    """IHE BALP (and README "Audit trail": one entity per patient touched, each resource with whose
    it is): a card shown for Alice's record at B names her result filed under her record at A; the
    interaction must be findable under that record too, so the trail of the record whose data was
    disclosed shows it (records are linked by the MPI, and links can be undone)."""
    p = two["alice"]
    r = two["http"].post(SIGN, json=hook_request("order-sign", p, [draft("d1", cbc(B), p)]), headers=bearer(engine))
    assert len(r.json()["cards"]) == 1
    alice_a = engine.repository.read("DiagnosticReport", two["alice_prior"].split("/")[1])["subject"]["reference"]
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "audit-office", "system/AuditEvent.rs", kind="auditor")}
    found = two["http"].get(f"/fhir/AuditEvent?patient={alice_a}&_count=100", headers=auditor).json()
    ops = [e["resource"] for e in found.get("entry", [])
           if any(d.get("valueString", "").startswith("cds:") for x in e["resource"].get("entity", [])
                  for d in x.get("detail", []))]
    # control: a plain read of that result is found under that record
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", "system/DiagnosticReport.rs")}
    assert two["http"].get(f"/fhir/{two['alice_prior']}", headers=reader).status_code == 200
    control = two["http"].get(f"/fhir/AuditEvent?patient={alice_a}&_count=100", headers=auditor).json()
    assert any(e["resource"]["subtype"][0]["code"] == "read" for e in control.get("entry", []))
    assert ops, f"no AuditEvent of the CDS call under {alice_a}"


def test_check_recognition_is_audited_against_the_record_the_result_is_in(engine: Any, two: dict[str, Any]) -> None:
    """The same for $check-recognition, which returns the result itself (a DiagnosticReport filed
    under Alice's record at A) for an order on her record at B."""
    p = two["alice"]
    h = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "ehr-b", "system/ServiceRequest.crus system/DiagnosticReport.rs system/Patient.rs")}
    sr = {**draft("d1", cbc(B), p), "status": "active"}
    r = two["http"].post("/fhir/ServiceRequest/$check-recognition", json=sr, headers=h)
    assert r.status_code == 200, r.text
    assert two["alice_prior"].split("/")[1] in r.text
    alice_a = engine.repository.read("DiagnosticReport", two["alice_prior"].split("/")[1])["subject"]["reference"]
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "audit-office", "system/AuditEvent.rs", kind="auditor")}
    found = two["http"].get(f"/fhir/AuditEvent?patient={alice_a}&_count=100", headers=auditor).json()
    ops = [e["resource"] for e in found.get("entry", [])
           if any(d.get("valueString", "") == "$check-recognition" for x in e["resource"].get("entity", [])
                  for d in x.get("detail", []))]
    # control: a plain read of that result is found under that record
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", "system/DiagnosticReport.rs")}
    assert two["http"].get(f"/fhir/{two['alice_prior']}", headers=reader).status_code == 200
    control = two["http"].get(f"/fhir/AuditEvent?patient={alice_a}&_count=100", headers=auditor).json()
    assert any(e["resource"]["subtype"][0]["code"] == "read" for e in control.get("entry", []))
    assert ops, f"no AuditEvent of $check-recognition under {alice_a}"
