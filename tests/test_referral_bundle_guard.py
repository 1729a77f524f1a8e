"""A referral Task created in the same transaction Bundle as its ServiceRequest meets the workflow
rule before anything is stored, on both storage backends (MongoDB without a replica set, and
mongomock, cannot roll back a write a hook refuses afterwards).

The Task states only a Task.status (no referral businessStatus): it is known to be a referral's
only through its focus, the ServiceRequest of the same Bundle. Born ``completed``, it is refused
with a 409 OperationOutcome whichever entry comes first, and neither resource is stored.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import (
    COUNTY,
    TOWN,
    WANG,
    bearer,
    created,
    engine,
    feed,
    one,
    referral_bundle,
    result,
)

__all__ = ["engine"]  # the fixture (both storage backends), shared with the FHIR scenario


def status_only(bundle: dict[str, Any], status: str) -> dict[str, Any]:
    task = bundle["entry"][1]["resource"]
    task.pop("businessStatus")
    task["status"] = status
    return bundle


@pytest.mark.parametrize("task_first", [False, True])
def test_a_task_born_completed_in_its_referrals_bundle_stores_nothing(engine: Engine, http: TestClient,
                                                                       task_first: bool) -> None:
    town = bearer(engine, "his-town")
    feed(http, engine, result(TOWN, WANG, "YL100", "T-1", "XCG^血常规^L", "WBC^白细胞计数^L", "20261120093000"))
    patient = "Patient/" + one(http, town, f"/fhir/Patient?identifier=urn:huren:mrn:{TOWN}|YL100")["id"]
    bundle = status_only(referral_bundle(patient, TOWN, COUNTY, "胸痛", "2026-11-25"), "completed")
    if task_first:
        bundle["entry"].reverse()
    r = http.post("/fhir", json=bundle, headers=town)
    assert r.status_code == 409, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "conflict"
    assert "cannot start as 'completed'" in outcome["issue"][0]["diagnostics"]
    referrals = http.get("/fhir/ServiceRequest", params={"category": "http://snomed.info/sct|3457005"}, headers=town)
    assert referrals.json()["total"] == 0
    assert http.get("/fhir/Task", headers=town).json()["total"] == 0
    assert engine.referrals.rows.find(None) == []

    # the same Bundle with a Task that starts as requested is stored, both entries
    ok = status_only(referral_bundle(patient, TOWN, COUNTY, "胸痛", "2026-11-25"), "requested")
    if task_first:
        ok["entry"].reverse()
    r = http.post("/fhir", json=ok, headers=town)
    task_id = created(r, "Task")
    assert engine.referrals.rows.find(None)[0]["task"] == f"Task/{task_id}"
