"""rvmoney25: probes of money25's "the referral deductible is counted once the patient arrived".

Real HTTP through the app: the referral Bundle POSTed by the township, the Task walked by the county
with PUT /fhir/Task, the report read at GET /reports/referrals.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_money24_referral_report import patient
from tests.test_referral_e2e import (
    COUNTY,
    TOWN,
    WANG,
    bearer,
    created,
    engine,
    month_stored,
    move,
    referral_bundle,
)

__all__ = ["engine"]


def _walk(http: TestClient, county: dict[str, str], task_id: str, *states: tuple[str, str]) -> str:
    """The moves; the month huren stored the arrival in (taken at the move, moneyfix25b), "" without one."""
    task, arrived = http.get(f"/fhir/Task/{task_id}", headers=county).json(), ""
    for state, status in states:
        r = http.put(f"/fhir/Task/{task_id}", json=move(task, state, status), headers=county)
        assert r.status_code == 200, (state, r.text)
        task = r.json()
        arrived = arrived or (month_stored(task) if state == "arrived" else "")
    return arrived


def _rows(http: TestClient, engine: Engine, month: str) -> dict[str, Any]:
    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    report = http.get(f"/reports/referrals?from={month}&to={month}", headers=auditor)
    assert report.status_code == 200, report.text
    return {row["institution"]: row for row in report.json()["rows"]}


def test_a_referral_marked_in_error_after_arrival_pays_nothing(engine: Engine) -> None:
    """Guard: arrived (600.00 due), then the Task is entered in error: the report counts nothing."""
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    pid = patient(http, town, WANG, "YL100")
    task = created(http.post("/fhir", json=referral_bundle(f"Patient/{pid}", TOWN, COUNTY, "胸痛", "2026-11-20"),
                             headers=town), "Task")
    arrived = _walk(http, county, task, ("accepted", "accepted"), ("arrived", "in-progress"))
    # moneyfix25: the arrival's month, where the deductible is counted since finding 5's mend
    assert _rows(http, engine, arrived)[COUNTY]["deductible_due"] == "600.00"
    _walk(http, county, task, ("entered-in-error", "entered-in-error"))
    assert _rows(http, engine, arrived).get(COUNTY, {}).get("deductible_due", "0.00") == "0.00"


def test_the_deductible_of_an_arrival_is_not_put_back_into_a_month_already_reported(engine: Engine) -> None:
    """FINDING (documented as left by money25). Written 2026-11-20 and accepted; the patient arrives
    now (December). November's report said 0.00 due when November closed; the arrival later rewrites
    November to 600.00, and December -- the month of the admission that pays -- never shows it."""
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    pid = patient(http, town, WANG, "YL100")
    task = created(http.post("/fhir", json=referral_bundle(f"Patient/{pid}", TOWN, COUNTY, "胸痛", "2026-11-20"),
                             headers=town), "Task")
    _walk(http, county, task, ("accepted", "accepted"))
    november = _rows(http, engine, "2026-11")[COUNTY]["deductible_due"]
    assert november == "0.00"
    _walk(http, county, task, ("arrived", "in-progress"))
    assert _rows(http, engine, "2026-11")[COUNTY]["deductible_due"] == november, "November rewritten after it closed"
