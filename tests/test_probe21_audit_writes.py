"""An AuditEvent a caller writes answers the same whether an entity it names is a record withheld
from them or a made-up one (twenty-first round, probe21).

Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store (SQLite).
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


def _event(patient: str, entity: str) -> dict[str, Any]:
    return {"resourceType": "AuditEvent", "recorded": "2026-12-01T00:00:00Z",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
            "agent": [{"requestor": True, "who": {"reference": patient}}], "source": {"observer": {"display": "app"}},
            "entity": [{"what": {"reference": patient}}, {"what": {"reference": entity}}]}


def _answer(fhir: TestClient, body: dict[str, Any], headers: dict[str, str]) -> tuple[Any, ...]:
    """(status, diagnostics) -- or, once created, (201, the entities read back, their count in
    ``AuditEvent?_id=``)."""
    r = fhir.post("/fhir/AuditEvent", json=body, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code != 201:
        return r.status_code, r.json()["issue"][0]["diagnostics"]
    rid = r.json()["id"]
    back = fhir.get(f"/fhir/AuditEvent/{rid}", headers=headers)
    entities = len(back.json().get("entity") or ()) if back.status_code == 200 else None
    found = fhir.get(f"/fhir/AuditEvent?_id={rid}", headers=headers).json()["total"]
    return 201, back.status_code, entities, found


def test_a_written_audit_event_tells_nothing_of_a_withheld_entity(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("AV1", "DOC-AV1", "av1.rtf", "V"), document("AP1", "DOC-AP1", "ap1.rtf"),
                document("AO1", "DOC-AO1", "ao1.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, plain, other = _written(engine, "AV1"), _written(engine, "AP1"), _written(engine, "AO1")
    patient = very["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=patient.split("/", 1)[1])
    clinician = _token(engine, "user", ["user/*.cruds"])
    for who, h, hidden in (("clinician", clinician, [very["DocumentReference"], very["Observation"]]),
                           ("resident", resident, [very["DocumentReference"], very["Observation"],
                                                   other["DocumentReference"]])):
        made_up = _answer(fhir, _event(patient, "DocumentReference/no-such-document"), h)
        for target in hidden:
            assert fhir.get(f"/fhir/{target}", headers=h).status_code == 404, (who, target)
            assert _answer(fhir, _event(patient, target), h) == made_up, (who, target, made_up)
        shown = _answer(fhir, _event(patient, plain["DocumentReference"]), h)
        assert shown == (201, 200, 2, 1), (who, shown)
