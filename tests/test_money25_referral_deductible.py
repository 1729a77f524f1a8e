"""money25: the referral report counts a referral's deductible when the patient was admitted.

``deductible_due`` is "the exact sum the received admissions pay" of their deductibles (住院起付线;
deductibles.yaml: an upward referral admission pays the difference of the two hospitals'). A referral
the county accepted is not an admission: the patient may never come (accepted, then cancelled; or
still on the way). Only a referral whose patient arrived (arrived, completed, referred back) is an
admission that pays. The township (一级, 200.00) refers three residents up to the county (三级,
800.00): one accepted and not yet arrived, one arrived, one completed. Due: 2 × 600.00, not 3 × 600.00.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_money24_referral_report import patient
from tests.test_recognition_world import national_id
from tests.test_referral_e2e import (
    COUNTY,
    LI,
    TOWN,
    WANG,
    bearer,
    created,
    deductible_due,
    engine,
    month_stored,
    move,
    referral_bundle,
)

__all__ = ["engine"]
ZHAO = national_id("32092319700505003")


def test_an_accepted_referral_pays_no_deductible_before_the_patient_arrives(engine: Engine) -> None:
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")

    def walk(task_id: str, *states: tuple[str, str]) -> str:
        """The moves; the month huren stored the arrival in (taken at the move), "" without one."""
        task, arrived = http.get(f"/fhir/Task/{task_id}", headers=county).json(), ""
        for state, status in states:
            r = http.put(f"/fhir/Task/{task_id}", json=move(task, state, status), headers=county)
            assert r.status_code == 200, (state, r.text)
            task = r.json()
            arrived = arrived or (month_stored(task) if state == "arrived" else "")
        return arrived

    tasks = []
    for person, mrn, day in ((WANG, "YL100", "2026-11-20"), (LI, "YL200", "2026-11-21"), (ZHAO, "YL300", "2026-11-22")):
        pid = patient(http, town, person, mrn)
        tasks.append(created(http.post("/fhir", json=referral_bundle(f"Patient/{pid}", TOWN, COUNTY, "胸痛", day),
                                       headers=town), "Task"))
    walk(tasks[0], ("accepted", "accepted"))
    arrived = {walk(tasks[1], ("accepted", "accepted"), ("arrived", "in-progress")),
               walk(tasks[2], ("accepted", "accepted"), ("arrived", "in-progress"), ("completed", "completed"))}
    if len(arrived) > 1:
        pytest.skip(f"the month turned between the two arrivals ({sorted(arrived)}): no one month to read")
    (month,) = arrived

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    report = http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor)
    assert report.status_code == 200, report.text
    rows = {row["institution"]: row for row in report.json()["rows"]}
    assert rows[COUNTY]["accepted"] == 3
    # the admissions pay in the month the patients arrived (now), moneyfix25: it was the written month
    assert deductible_due(http, auditor, COUNTY, month) == "1200.00"

    # the patient of the first comes: now the third admission pays
    third = walk(tasks[0], ("arrived", "in-progress"))
    if third != month:
        pytest.skip(f"the month turned before the third arrival ({month} -> {third})")
    assert deductible_due(http, auditor, COUNTY, month) == "1800.00"
