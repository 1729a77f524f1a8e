"""``$check-recognition`` with a ``date`` or ``institution`` it cannot use (eighteenth round,
pay18), over real HTTP: a date that is no date was read as today, and an institution huren does
not know answered "nothing recognisable" -- both a wrong answer given as a right one. They are a
400 naming the parameter now."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_recognition_world import ALICE, A, B, World, cbc

OP = "/fhir/ServiceRequest/$check-recognition"


@pytest.mark.parametrize(("extra", "words"), [
    ({"name": "date", "valueDate": "2026-13-45"}, "date"),
    ({"name": "date", "valueString": "yesterday"}, "date"),
    ({"name": "institution", "valueString": "NO-SUCH-HOSPITAL"}, "institution"),
])
def test_an_unusable_date_or_institution_is_a_400(engine: Any, extra: dict[str, Any], words: str) -> None:
    w = World(engine)
    w.report(A, w.patient(A, ALICE), cbc(A), "2026-03-10T09:00:00+08:00")
    pb = w.patient(B, ALICE, mrn="B-1")
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": pb}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}}, extra]}
    token = engine.auth.issue_system_token("ehr", "system/*.cruds")
    res = TestClient(create_app(engine)).post(OP, json=params, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 400, res.text
    body = res.json()
    assert body["resourceType"] == "OperationOutcome" and words in body["issue"][0]["diagnostics"]
