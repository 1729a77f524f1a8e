"""Two residents and a hospital: the AuditEvents a resident can read name that resident only.

The hospital searches over both residents (by code, and by 李四's national ID), reads one of
张三's results and exports 李四's record. Through the real FHIR API, 张三's token then searches
and reads AuditEvents: every event is about 张三, names no other patient, no other resident's
resources and none of the query values, while the signed log still holds the complete records
for auditors. "Who looked at my record" lists the hospital's accesses in the resident's terms.
"""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from stdnum.cn import ric

from engine.api.app import create_app
from engine.audit.view import view_id
from engine.audit.who_looked import who_looked
from engine.engine import Engine

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}
ZHANG_ID = "32092319900101123" + ric.calc_check_digit("32092319900101123" + "0")
LI_ID = "32092319921120004" + ric.calc_check_digit("32092319921120004" + "0")


def _patient(pid: str, number: str, name: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"text": name}],
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": number, "type": NNCHN}]}


def _obs(oid: str, pid: str) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}], "text": "Glucose"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-09-20T08:00:00+08:00",
            "performer": [{"reference": "Organization/fnxrmyy"}],
            "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                              "code": "mmol/L"}}


@pytest.fixture
def world(engine: Engine) -> Engine:
    repo = engine.repository
    repo.update({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"})
    repo.update(_patient("pt-zhang", ZHANG_ID, "张三"))
    repo.update(_patient("pt-li", LI_ID, "李四"))
    repo.update(_obs("obs-zhang", "pt-zhang"))
    repo.update(_obs("obs-li", "pt-li"))
    return engine


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def resident(engine: Engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    return bearer(token)


def hospital_touches_both(http: TestClient, engine: Engine) -> None:
    his = bearer(engine.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    r = http.get("/fhir/Observation?code=http://loinc.org|2345-7&_include=Observation:subject", headers=his)
    assert r.status_code == 200 and r.json()["total"] == 2
    assert http.get(f"/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|{LI_ID}", headers=his).status_code == 200
    assert http.get(f"/fhir/Observation?subject:Patient.identifier={LI_ID}", headers=his).status_code == 200
    assert http.get("/fhir/Observation/obs-zhang", headers=his).status_code == 200
    assert http.get("/fhir/Patient/pt-li/$everything", headers=his).status_code == 200


LI_TRACES = ("pt-li", "obs-li", LI_ID, "李四")


def test_a_resident_reads_only_audit_events_about_themselves(world: Engine) -> None:
    http = TestClient(create_app(world))
    hospital_touches_both(http, world)
    me = resident(world, "pt-zhang")

    r = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=me)
    assert r.status_code == 200, r.text
    events = [e["resource"] for e in r.json()["entry"]]
    kinds = sorted(next(c["code"] for c in ev["subtype"]) for ev in events)
    assert kinds == ["read", "search"]  # the code search (it returned 张三) and the read of his result
    for text in (r.text, *(http.get(f"/fhir/AuditEvent/{ev['id']}", headers=me).text for ev in events)):
        for trace in LI_TRACES:
            assert trace not in text
    for ev in events:
        assert [e["what"]["reference"] for e in ev["entity"] if e.get("role", {}).get("code") == "1"] == ["Patient/pt-zhang"]
        assert not any("query" in e for e in ev["entity"])  # the raw query stays in the signed log
    search = next(ev for ev in events if ev["subtype"][0]["code"] == "search")
    assert {e["what"]["reference"] for e in search["entity"] if "what" in e} == {"Patient/pt-zhang",
                                                                                "Observation/obs-zhang/_history/1"}
    stored = world.repository.read("AuditEvent", search["id"])  # as stored (a resident's app may be shown less)
    assert any(e.get("description") == "Observation?_include&code" for e in stored["entity"]), stored["entity"]

    everything = http.get("/fhir/AuditEvent", headers=me)  # no parameters: still only his own
    assert everything.status_code == 200
    assert {e["resource"]["id"] for e in everything.json().get("entry", [])} == {ev["id"] for ev in events}
    assert not any(t in everything.text for t in LI_TRACES)

    # 李四's view of the same search exists, and 张三 cannot read it
    record_id = stored["entity"][-1]["detail"][-1]["valueString"]
    theirs = view_id(record_id, "pt-li")
    assert world.repository.read("AuditEvent", theirs)["entity"][0]["what"]["reference"] == "Patient/pt-li"
    assert http.get(f"/fhir/AuditEvent/{theirs}", headers=me).status_code in (403, 404)

    # the signed log keeps the complete record: both patients and the query with 李四's ID number
    records = [world.audit.events(seq, 1)[0] for seq in range(world.audit.size)]
    by_id = next(rec for rec in records if any(
        LI_ID in base64.b64decode(e.get("query", "")).decode() for e in rec.get("entity", [])))
    assert by_id["subtype"][0]["code"] == "search"
    code_search = next(rec for rec in records if rec["id"] == record_id)
    assert {"Patient/pt-zhang", "Patient/pt-li"} <= {e.get("what", {}).get("reference")
                                                      for e in code_search["entity"]}


def test_who_looked_at_my_record_lists_only_my_accesses(world: Engine) -> None:
    http = TestClient(create_app(world))
    hospital_touches_both(http, world)
    names = {"his-fnxrmyy": "阜宁县人民医院 HIS"}

    mine = who_looked(world.repository, {"pt-zhang"}, names=names.get)
    assert [(a.who, a.who_name, a.role, a.what, a.resource_types, a.outcome) for a in mine] == [
        ("his-fnxrmyy", "阜宁县人民医院 HIS", "system", "read", ("Observation",), "success"),
        ("his-fnxrmyy", "阜宁县人民医院 HIS", "system", "search", ("Observation",), "success"),
    ]
    assert mine[0].when >= mine[1].when and all(a.record.startswith("audit-") for a in mine)

    theirs = who_looked(world.repository, {"pt-li"})
    assert sorted(a.what for a in theirs) == ["export", "search", "search", "search"]
    assert not any("pt-zhang" in str(a.as_json()) or "obs-zhang" in str(a.as_json()) for a in theirs)

    # the resident's own look is listed too, as theirs
    assert http.get("/fhir/Observation/obs-li", headers=resident(world, "pt-li")).status_code == 200
    latest = who_looked(world.repository, {"pt-li"})[0]
    assert (latest.role, latest.who, latest.what, latest.via_app) == ("resident", "person-pt-li", "read", "phr")


def test_views_are_valid_r4_audit_events_for_every_shape_of_record(engine: Engine) -> None:
    """The light path stores views without validating each one: this proves the fixed shape valid."""
    from engine.audit.events import build_event, requestor_agent
    from engine.audit.view import views_of

    system = requestor_agent(kind="system", subject="his-a", address="10.0.0.7")
    person = requestor_agent(kind="patient", subject="person-1", address="10.0.0.8", client_id="phr")
    nobody = requestor_agent(kind=None, subject=None, address=None)
    obs = {"resourceType": "Observation", "id": "o1", "meta": {"versionId": "2"}, "subject": {"reference": "Patient/a"}}
    records = [
        build_event(action="read", origin="n", agents=system, patient_ids=["a"], resources=[obs],
                    owners={"Observation/o1/_history/2": ["a"]}),
        build_event(action="search", origin="n", agents=person, patient_ids=["a", "b"],
                    resources=["Observation/o1", "Observation/o2", "Organization/x"],
                    owners={"Observation/o1": ["a"], "Observation/o2": ["b"]}, query="Observation?code=1&_count=5"),
        build_event(action="operation", origin="n", agents=system, outcome="4", outcome_desc="HTTP 403",
                    patient_ids=["b"], detail={"operation": "$everything", "cards": 3}),
        build_event(action="token", origin="n", agents=nobody, detail={"grant_type": "client_credentials"}),
        build_event(action="hl7v2-receive", origin="n", agents=system, patient_ids=["a"],
                    resources=["DiagnosticReport/d1"], detail={"message": "FN^1", "channel": "mllp"}),
    ]
    shown = 0
    for seq, record in enumerate(records):
        for view in views_of({**record, "id": f"audit-{seq}"}):
            engine.validator.validate(view)  # raises on anything R4 or huren's rules refuse
            shown += 1
    assert shown == 6


def test_another_residents_attempt_on_my_record_shows_without_their_identity(world: Engine) -> None:
    """李四 tries 张三's Patient record (refused, as if absent): 张三 sees that a resident tried, not who."""
    http = TestClient(create_app(world))
    assert http.get("/fhir/Patient/pt-zhang", headers=resident(world, "pt-li")).status_code == 404
    assert http.get("/fhir/Patient/pt-zhang", headers=resident(world, "pt-zhang")).status_code == 200
    r = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=resident(world, "pt-zhang"))
    assert r.status_code == 200 and len(r.json()["entry"]) == 2
    assert not any(trace in r.text for trace in LI_TRACES)
    mine = who_looked(world.repository, {"pt-zhang"})
    assert sorted((a.role, a.who, a.outcome) for a in mine) == [("resident", "", "refused"),
                                                               ("resident", "person-pt-zhang", "success")]
    record = world.audit.get(0)["data"]  # the signed log knows who it was
    assert "person-pt-li" in record


def test_views_answer_the_parameters_residents_and_auditors_use_and_refuse_the_rest(world: Engine) -> None:
    """The views index patient, date, entity and agent only (each indexed parameter is rows per
    audited read): those four find the hospital's read; one left out answers 400 naming it."""
    http = TestClient(create_app(world))
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert http.get("/fhir/Observation/obs-zhang", headers=his).status_code == 200
    auditor = bearer(world.auth.issue_system_token("auditor", "system/*.rs"))
    for query in ("patient=pt-zhang", "entity=Observation/obs-zhang", "agent:identifier=urn:huren:client|his-fnxrmyy",
                  "date=ge2000-01-01&patient=pt-zhang"):
        r = http.get(f"/fhir/AuditEvent?{query}&_sort=-date", headers=auditor)
        assert r.status_code == 200, (query, r.text)
        reads = [e["resource"] for e in r.json().get("entry", [])
                 if any(s.get("code") == "read" for s in e["resource"].get("subtype", []))
                 and any((a.get("who") or {}).get("identifier", {}).get("value") == "his-fnxrmyy"
                         for a in e["resource"]["agent"])]
        assert reads, query
    r = http.get("/fhir/AuditEvent?action=R", headers=auditor)
    assert r.status_code == 400 and "action" in r.text
    assert r.json()["resourceType"] == "OperationOutcome"
