"""Confidentiality labels (v3 R, V) are enforced on ``/fhir``, not only stored.

A hospital marks a discharge summary restricted (TXA-18 ``R`` → ``DocumentReference.securityLabel``)
or a psychiatric note very restricted (``V``), or a result ``meta.security`` R. Before this round
every caller with the type's scope read them. Now (``engine.auth.confidentiality``): the hospital
systems read everything; the resident reads their own ``R`` but not ``V``; an auditor and a staff
member read neither -- a withheld record answers like a missing one through read, search and its
totals, ``vread``, ``_history``, a Bundle ``GET``, ``_include``, ``$everything``, and it cannot be
written over. Real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _doc(did: str, code: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": did, "status": "current",
        "subject": {"reference": "Patient/zhang"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "content": [{"attachment": {"contentType": "text/plain", "data": "5Ye66Zmi5bCP57uT"}}]}
    if code:
        doc["securityLabel"] = [{"coding": [{"system": CONF, "code": code}]}]
    return doc


def _obs(oid: str, value: float, code: str | None = None, order: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/zhang"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
        "performer": [{"reference": "Organization/fnxrmyy"}], "valueQuantity": {"value": value, "unit": "mmol/L"}}
    if code:
        obs["meta"] = {"security": [{"system": CONF, "code": code}]}
    if order:
        obs["basedOn"] = [{"reference": f"ServiceRequest/{order}"}]
    return obs


def _order(sid: str, code: str | None) -> dict[str, Any]:
    order: dict[str, Any] = {"resourceType": "ServiceRequest", "id": sid, "status": "active", "intent": "order",
                             "subject": {"reference": "Patient/zhang"}, "code": {"text": "HIV RNA"}}
    if code:
        order["meta"] = {"security": [{"system": CONF, "code": code}]}
    return order


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path_factory.mktemp("api18") / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
        for body in ({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"},
                     {"resourceType": "Patient", "id": "zhang", "name": [{"text": "张三"}]},
                     _doc("plain", None), _doc("restricted", "R"), _doc("very", "V"), _doc("normal", "N"),
                     _order("hiv", "R"), _obs("open", 5.5), _obs("later", 6.1), _obs("later", 6.1, "R"),
                     _obs("via-order", 7.2, order="hiv")):
            r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
            assert r.status_code in (200, 201), r.text
        yield engine, http, system
    engine.close()


def _bearer(engine: Any, kind: str, scopes: list[str], **kw: Any) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"{kind}-x", kind=kind, client_id=f"{kind}-app", scopes=scopes, **kw)
    return {"Authorization": f"Bearer {token}"}


def _ids(bundle: dict[str, Any], rtype: str) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry") or () if e["resource"]["resourceType"] == rtype}


def test_an_auditor_and_a_clinician_read_no_restricted_record(world: Any) -> None:
    engine, http, system = world
    auditor = _bearer(engine, "auditor", ["system/DocumentReference.rs", "system/Observation.rs",
                                          "system/ServiceRequest.rs", "system/Patient.rs"])
    clinician = _bearer(engine, "user", ["user/Patient.rs", "user/Observation.rs", "user/ServiceRequest.crus",
                                         "user/DocumentReference.rs"])
    for who in (auditor, clinician):
        missing = http.get("/fhir/DocumentReference/no-such", headers=who)
        assert missing.status_code == 404
        assert http.get("/fhir/DocumentReference/plain", headers=who).status_code == 200
        assert http.get("/fhir/DocumentReference/normal", headers=who).status_code == 200
        for path in ("/fhir/DocumentReference/restricted", "/fhir/DocumentReference/very",
                     "/fhir/DocumentReference/restricted/_history/1", "/fhir/DocumentReference/very/_history"):
            r = http.get(path, headers=who)
            assert (r.status_code, r.text) == (404, missing.text), path
        found = http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=who).json()
        assert (_ids(found, "DocumentReference"), found["total"]) == ({"plain", "normal"}, 2)
        count = http.get("/fhir/DocumentReference?subject=Patient/zhang&_summary=count", headers=who).json()
        assert count["total"] == 2
        # a result labelled in its second version: neither version, nor its history
        for path in ("/fhir/Observation/later", "/fhir/Observation/later/_history/1", "/fhir/Observation/later/_history"):
            assert http.get(path, headers=who).status_code == 404, path
        obs = http.get("/fhir/Observation?subject=Patient/zhang&_include=Observation:based-on", headers=who).json()
        assert _ids(obs, "Observation") == {"open", "via-order"} and obs["total"] == 2
        assert _ids(obs, "ServiceRequest") == set()  # the restricted order is not included
        chained = http.get("/fhir/Observation?based-on:ServiceRequest.status=active", headers=who).json()
        assert chained.get("total") == 0, chained  # nor found through a chain
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": "DocumentReference/restricted"}},
            {"request": {"method": "GET", "url": "Observation/later/_history/1"}}]}
        entries = http.post("/fhir", json=batch, headers=who).json()["entry"]
        assert [e["response"]["status"][:3] for e in entries] == ["404", "404"]
    # a clinician may write orders, not over one they may not read
    r = http.put("/fhir/ServiceRequest/hiv", json=_order("hiv", None), headers=clinician)
    assert r.status_code == 404, r.text
    assert http.get("/fhir/ServiceRequest/hiv", headers=system).json()["meta"]["security"][0]["code"] == "R"


def test_the_resident_reads_their_restricted_record_not_a_very_restricted_one(world: Any) -> None:
    engine, http, _ = world
    me = _bearer(engine, "patient", ["patient/*.rs"], patient="zhang")
    assert http.get("/fhir/DocumentReference/restricted", headers=me).status_code == 200
    missing = http.get("/fhir/DocumentReference/no-such", headers=me)
    r = http.get("/fhir/DocumentReference/very", headers=me)
    assert (r.status_code, r.text) == (404, missing.text)
    found = http.get("/fhir/DocumentReference", headers=me).json()
    assert _ids(found, "DocumentReference") == {"plain", "normal", "restricted"} and found["total"] == 3
    everything = http.get("/fhir/Patient/zhang/$everything", headers=me).json()
    assert "very" not in _ids(everything, "DocumentReference")
    assert {"restricted", "plain"} <= _ids(everything, "DocumentReference")


def test_the_hospital_systems_read_every_record_as_sent(world: Any) -> None:
    _, http, system = world
    for path in ("/fhir/DocumentReference/restricted", "/fhir/DocumentReference/very", "/fhir/Observation/later/_history/1"):
        assert http.get(path, headers=system).status_code == 200, path
    found = http.get("/fhir/DocumentReference?subject=Patient/zhang", headers=system).json()
    assert found["total"] == 4


def test_a_family_member_reads_neither_restricted_nor_very_restricted(world: Any) -> None:
    engine, http, system = world
    related = {"resourceType": "RelatedPerson", "id": "sun", "patient": {"reference": "Patient/zhang"},
               "identifier": [{"system": "urn:huren:family", "value": "person-sun"}], "active": True}
    consent = {"resourceType": "Consent", "id": "grant", "status": "active",
               "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                     "code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": "Patient/zhang"},
               "provision": {"type": "permit", "actor": [{"role": {"text": "proxy"},
                                                          "reference": {"reference": "RelatedPerson/sun"}}]}}
    for body in (related, consent):
        r = http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=system)
        assert r.status_code == 201, r.text
    son = _bearer(engine, "patient", ["patient/*.rs"], patient="zhang", person="person-sun",
                  extra={"acting": "sun", "consent": "grant"})
    assert http.get("/fhir/DocumentReference/plain", headers=son).status_code == 200
    for path in ("/fhir/DocumentReference/restricted", "/fhir/DocumentReference/very"):
        assert http.get(path, headers=son).status_code == 404, path
    found = http.get("/fhir/DocumentReference", headers=son).json()
    assert _ids(found, "DocumentReference") == {"plain", "normal"} and found["total"] == 2


def test_an_auditor_search_of_a_type_without_a_security_index_is_screened(world: Any) -> None:
    engine, http, system = world
    event = {"resourceType": "AuditEvent", "id": "labelled", "recorded": "2026-12-01T08:00:00Z",
             "meta": {"security": [{"system": CONF, "code": "V"}]},
             "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
             "agent": [{"who": {"display": "his"}, "requestor": True}], "source": {"observer": {"display": "his"}},
             "entity": [{"what": {"reference": "Patient/zhang"}}]}
    assert http.put("/fhir/AuditEvent/labelled", json=event, headers=system).status_code == 201
    plain = {**event, "id": "unlabelled"}
    del plain["meta"]
    assert http.put("/fhir/AuditEvent/unlabelled", json=plain, headers=system).status_code == 201
    auditor = _bearer(engine, "auditor", ["system/AuditEvent.rs"])
    query = "/fhir/AuditEvent?_id=labelled,unlabelled&patient=Patient/zhang"
    assert http.get(query, headers=system).json()["total"] == 2
    shown = http.get(query, headers=auditor).json()
    assert (_ids(shown, "AuditEvent"), shown["total"]) == ({"unlabelled"}, 1)
    assert http.get(query + "&_summary=count", headers=auditor).json()["total"] == 1
