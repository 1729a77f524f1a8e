"""After an unlink, a resident is not shown a flag or Provenance citing the other person's records
(twenty-first round, probe21).

王建国's record and 李四's were linked as one person by an operator (``$link``); while they were,
the hospital recorded a duplicate-test flag (``DetectedIssue``) on 王建国's record implicating both
results, and a Provenance naming his Patient and 李四's result -- right then, one person's records.
The operator then took 李四's record out (``$unlink``): 王建国 no longer reads 李四's result (404),
but the flag and the Provenance, his by ``patient``/``target``, still showed him its id, and the
flag what it says of it. A record built from others (``confidentiality.DERIVED``) is now refused
whole to a confined caller when a record it cites names someone else (judged as it stands, a
deleted one by its last version), as an AuditEvent naming another's record already was. Real HL7
over MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_derived_writes import OTHER, _token, _written

__all__ = ["fhir"]


def _params(**values: Any) -> dict[str, Any]:
    kinds = {"source": "valueReference", "target": "valueReference", "reason": "valueString"}
    return {"resourceType": "Parameters", "parameter": [{"name": k, kinds[k]: v} for k, v in values.items()]}


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry") or ()}


def test_an_unlinked_person_s_records_are_not_named_by_the_resident_s_flags(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("UL1", "DOC-UL1", "ul1.rtf"), document("UL2", "DOC-UL2", "ul2.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, theirs = _written(engine, "UL1"), _written(engine, "UL2")
    me, other = mine["Patient"], theirs["Patient"]
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("mpi", "system/Patient.rus")}
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    linked = fhir.post("/fhir/Patient/$link", headers=operator, json=_params(
        source={"reference": other}, target={"reference": me}, reason="同一人"))
    assert linked.status_code == 200, linked.text
    resident = _token(engine, "patient", ["patient/*.rs"], patient=me.split("/", 1)[1])
    assert fhir.get(f"/fhir/{theirs['Observation']}", headers=resident).status_code == 200  # one person now
    written = {}
    for name, body in (
            ("flag", {"resourceType": "DetectedIssue", "status": "final", "patient": {"reference": me},
                      "code": {"text": "重复检查"}, "detail": "两次出院小结",
                      "implicated": [{"reference": mine["Observation"]}, {"reference": theirs["Observation"]}]}),
            ("provenance", {"resourceType": "Provenance", "recorded": "2026-12-01T00:00:00Z",
                            "target": [{"reference": me}, {"reference": theirs["Observation"]}],
                            "agent": [{"who": {"reference": mine["Organization"]}}]}),
            ("own flag", {"resourceType": "DetectedIssue", "status": "final", "patient": {"reference": me},
                          "code": {"text": "重复检查"}, "implicated": [{"reference": mine["Observation"]}]})):
        r = fhir.post(f"/fhir/{body['resourceType']}", json=body, headers=hospital)
        assert r.status_code == 201, r.text
        written[name] = f"{body['resourceType']}/{r.json()['id']}"
        assert fhir.get(f"/fhir/{written[name]}", headers=resident).status_code == 200, name
    unlinked = fhir.post("/fhir/Patient/$unlink", headers=operator, json=_params(
        source={"reference": other}, reason="不是同一人"))
    assert unlinked.status_code == 200, unlinked.text
    assert fhir.get(f"/fhir/{theirs['Observation']}", headers=resident).status_code == 404
    pid = me.split("/", 1)[1]
    flags = fhir.get(f"/fhir/DetectedIssue?patient={pid}", headers=resident)
    provs = fhir.get(f"/fhir/Provenance?patient={pid}", headers=resident)
    everything = fhir.get(f"/fhir/Patient/{pid}/$everything", headers=resident)
    for name in ("flag", "provenance"):
        ref = written[name]
        assert fhir.get(f"/fhir/{ref}", headers=resident).status_code == 404, name
        assert fhir.get(f"/fhir/{ref}/_history/1", headers=resident).status_code == 404, name
    other_id = theirs["Observation"].split("/", 1)[1]
    for listed in (flags, provs, everything):
        assert other_id not in listed.text
    assert _ids(flags) == {written["own flag"].split("/", 1)[1]} and flags.json()["total"] == 1
    assert fhir.get(f"/fhir/DetectedIssue?patient={pid}&_summary=count", headers=resident).json()["total"] == 1
    assert written["provenance"].split("/", 1)[1] not in _ids(provs)
    assert fhir.get(f"/fhir/{written['own flag']}", headers=resident).status_code == 200
