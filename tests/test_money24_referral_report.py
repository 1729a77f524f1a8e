"""money24: a referral entered in error never happened -- the referral report (and the indicator
that reads its tally) counts it nowhere.

The township (FNYLWSY, 一级) refers two residents up to the county hospital (FNXRMYY, 三级) in FHIR
transaction Bundles over real HTTP; the county accepts the first. The second was a mistake: its Task
goes to entered-in-error (the workflow allows it from any state). A third, written with its
ServiceRequest entered-in-error, is the same mistake said on the request; a fourth is withdrawn
(cancelled) before the county answers -- the insurance indicator of the same tally counted none of
these three, the report all of them. The auditor's
``GET /reports/referrals`` must show one upward referral sent and received, not four: the
county's 下转/上转 ratio is sent down ÷ received up, and a mistake counted as an upward referral
lowers it.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_referral_e2e import COUNTY, LI, TOWN, WANG, bearer, created, engine, move, referral_bundle

__all__ = ["engine"]


def patient(http: TestClient, headers: dict[str, str], person: str, mrn: str) -> str:
    body = {"resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": person,
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "NNCHN"}]}},
                           {"system": f"urn:huren:mrn:{TOWN}", "value": mrn}],
            "name": [{"text": mrn}]}
    r = http.post("/fhir/Patient", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_a_referral_entered_in_error_counts_nowhere(engine: Engine) -> None:
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    wang, li = patient(http, town, WANG, "YL100"), patient(http, town, LI, "YL200")

    first = created(http.post("/fhir", json=referral_bundle(f"Patient/{wang}", TOWN, COUNTY, "胸痛", "2026-11-20"),
                              headers=town), "Task")
    task = http.get(f"/fhir/Task/{first}", headers=county).json()
    assert http.put(f"/fhir/Task/{first}", json=move(task, "accepted", "accepted"), headers=county).status_code == 200

    mistake = created(http.post("/fhir", json=referral_bundle(f"Patient/{li}", TOWN, COUNTY, "录错", "2026-11-21"),
                                headers=town), "Task")
    task = http.get(f"/fhir/Task/{mistake}", headers=town).json()
    r = http.put(f"/fhir/Task/{mistake}", json=move(task, "entered-in-error", "entered-in-error"), headers=town)
    assert r.status_code == 200, r.text

    withdrawn = created(http.post("/fhir", json=referral_bundle(f"Patient/{li}", TOWN, COUNTY, "撤回", "2026-11-23"),
                                  headers=town), "Task")
    task = http.get(f"/fhir/Task/{withdrawn}", headers=town).json()
    assert http.put(f"/fhir/Task/{withdrawn}", json=move(task, "cancelled", "cancelled"), headers=town).status_code == 200

    wrong = referral_bundle(f"Patient/{li}", TOWN, COUNTY, "录错", "2026-11-22")
    wrong["entry"][0]["resource"]["status"] = "entered-in-error"
    created(http.post("/fhir", json=wrong, headers=town), "Task")

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    report = http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor)
    assert report.status_code == 200, report.text
    rows: dict[str, Any] = {row["institution"]: row for row in report.json()["rows"]}
    assert report.json()["referrals"] == 1
    assert rows[TOWN]["sent"] == {"upward": 1, "downward": 0, "lateral": 0, "unknown": 0, "total": 1}
    assert rows[COUNTY]["received"] == {"upward": 1, "downward": 0, "lateral": 0, "unknown": 0, "total": 1}
    # accepted, the patient not yet arrived: no admission, no deductible yet (money25; it was 600.00)
    assert (rows[COUNTY]["accepted"], rows[COUNTY]["deductible_due"]) == (1, "0.00")


def test_the_return_rate_is_of_upward_referrals_completed(engine: Engine) -> None:
    """回转率: of the upward referrals an institution received and completed, the share it referred
    back down. The township received one downward referral and completed it: it has no upward
    referral to return, so its return rate is not 0 % (none returned) but none at all; the county
    completed one upward referral and referred it back: 100 %."""
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    wang, li = patient(http, town, WANG, "YL100"), patient(http, town, LI, "YL200")

    def walk(task_id: str, headers: dict[str, str], *states: tuple[str, str]) -> None:
        task = http.get(f"/fhir/Task/{task_id}", headers=headers).json()
        for state, status in states:
            r = http.put(f"/fhir/Task/{task_id}", json=move(task, state, status), headers=headers)
            assert r.status_code == 200, (state, r.text)
            task = r.json()

    done = (("accepted", "accepted"), ("arrived", "in-progress"), ("completed", "completed"))
    up = created(http.post("/fhir", json=referral_bundle(f"Patient/{wang}", TOWN, COUNTY, "胸痛", "2026-11-20"),
                           headers=town), "Task")
    walk(up, county, *done, ("referred-back", "completed"))
    down = created(http.post("/fhir", json=referral_bundle(f"Patient/{li}", COUNTY, TOWN, "康复", "2026-11-21"),
                             headers=county), "Task")
    walk(down, town, *done)

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    rows = {row["institution"]: row for row in
            http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor).json()["rows"]}
    assert (rows[COUNTY]["completed"], rows[COUNTY]["returned"]) == (1, 1)
    assert rows[COUNTY]["ratios"]["return_rate"] == 1.0
    assert (rows[TOWN]["completed"], rows[TOWN]["returned"]) == (1, 0)
    assert rows[TOWN]["ratios"]["return_rate"] is None
