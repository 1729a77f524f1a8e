"""``Patient/$family-withdraw`` tells nothing of a grant the caller may not manage (twenty-first
round, probe21).

Found: the route read the Consent before asking whether the caller may record family access at
all, so a clinician's token (or any client without ``system/Consent.cu``) was answered 403 for a
family grant that exists and 404 for a made-up id; and a grant since deleted answered 410 to
anyone -- another resident included -- where a made-up id answered 404. Now a caller who is not a
resident is refused by their rights before any Consent is read, and a deleted grant reads like a
missing one. Real HL7 over HTTP, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_resident_family import SUN, bearer, family_feeds, params
from tests.test_resident_record_ui import QIAN, ZHAO


def _token(engine: Any, kind: str, scopes: list[str], **kw: Any) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-x", kind=kind, client_id=f"{kind}-app", scopes=scopes, **kw)
    return bearer(token)


def _answer(http: TestClient, consent: str, headers: dict[str, str]) -> tuple[int, str]:
    r = http.post("/fhir/Patient/$family-withdraw", headers=headers,
                  json=params(consent={"reference": consent}, idCardChecked=True))
    assert r.status_code < 500, r.text
    return r.status_code, r.json()["issue"][0]["diagnostics"] if r.status_code >= 400 else ""


def test_a_withdrawal_tells_no_one_but_a_manager_that_a_grant_exists(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
                  "Content-Type": "x-application/hl7-v2+er7"}
        for message in family_feeds():
            assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
        zhao = sorted(engine.identity.patients_for_number(ZHAO))[0]
        qian = sorted(engine.identity.patients_for_number(QIAN))[0]
        desk = bearer(engine.auth.issue_system_token("desk", "system/Consent.cru system/RelatedPerson.cru"))
        grants = []
        for _ in range(2):
            r = http.post("/fhir/Patient/$family-grant", headers=desk, json=params(
                patient={"reference": f"Patient/{zhao}"}, proxyNationalId=SUN, proxyName="孙伟",
                relationship="CHILD", idCardChecked=True))
            assert r.status_code == 201, r.text
            grants.append("Consent/" + next(p["resource"]["id"] for p in r.json()["parameter"] if p["name"] == "consent"))
        live, deleted = grants
        hospital = bearer(engine.auth.issue_system_token("his"))
        assert http.delete(f"/fhir/{deleted}", headers=hospital).status_code in (200, 204)
        made_up = "Consent/no-such-consent"
        callers = {"clinician": _token(engine, "user", ["user/*.rs"]),
                   "lab system": bearer(engine.auth.issue_system_token("lis", "system/Observation.cru")),
                   "another resident": _token(engine, "patient", ["patient/*.rs"], patient=qian)}
        for who, headers in callers.items():
            answers = {ref: _answer(http, ref, headers) for ref in (live, deleted, made_up)}
            assert answers[live] == answers[made_up] and answers[deleted] == answers[made_up], (who, answers)
        # the desk still withdraws, and the resident's own sign-in too
        assert _answer(http, live, desk) == (200, "")
        assert _answer(http, deleted, desk)[0] == 404
        assert http.get(f"/fhir/{live}", headers=hospital).json()["status"] == "inactive"
