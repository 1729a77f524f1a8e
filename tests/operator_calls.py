"""An operator's patient-index call as the desk makes it (``$link``/``$unlink`` over HTTP), shared by the
identity and recognition tests that need one."""

from __future__ import annotations

from fastapi.testclient import TestClient


def operate(http: TestClient, op: str, source: str, target: str | None = None) -> None:
    """``POST /fhir/Patient/$<op>`` with the record, the other record if any, and a reason; must answer 200."""
    params = [{"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
              {"name": "reason", "valueString": "checked at the desk"}]
    if target:
        params.append({"name": "target", "valueReference": {"reference": f"Patient/{target}"}})
    r = http.post(f"/fhir/Patient/${op}", json={"resourceType": "Parameters", "parameter": params})
    assert r.status_code == 200, r.text
