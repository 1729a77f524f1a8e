"""money24: split admissions (分解住院) count days at the hospital (+08:00), not in the zone a
client wrote the time in.

The window is 15 days between a discharge and a readmission for the same condition
(``mappings/insurance/split_admission.yaml``). Over real HTTP (Encounters and Conditions PUT through
/fhir), two readmissions whose times a client wrote in UTC:

- Bob is discharged 2026-03-05 09:00 (+08:00) and readmitted at 2026-03-20T16:30:00Z, which is
  2026-03-21 00:30 in Funing: 16 days, outside the window -- not a suspected split admission (it was
  listed, read as 2026-03-20, 15 days).
- Carol is discharged at 2026-03-04T17:00:00Z, 2026-03-05 01:00 in Funing, and readmitted
  2026-03-20 08:00 (+08:00): 15 days, inside the window -- suspected (it was missed, read as 16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import BOB, A, World, national_id

CAROL = national_id("32092319700505002")
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def test_the_gap_is_counted_in_local_days(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    try:
        http = TestClient(create_app(engine))
        system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
        w = World(engine)

        def stay(eid: str, patient: str, start: str, end: str) -> str:
            enc = {"resourceType": "Encounter", "id": eid, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                   "subject": {"reference": patient}, "period": {"start": start, "end": end},
                   "serviceProvider": {"reference": w.organization(A)},
                   "reasonCode": [{"coding": [{"system": ICD10, "code": "I10"}]}]}
            res = http.put(f"/fhir/Encounter/{eid}", json=enc, headers=system)
            assert res.status_code in (200, 201), res.text
            return f"Encounter/{eid}"

        bob, carol = w.patient(A, BOB, mrn="A-2"), w.patient(A, CAROL, mrn="A-3")
        stay("bob-1", bob, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00")
        stay("bob-2", bob, "2026-03-20T16:30:00Z", "2026-03-25T09:00:00+08:00")  # 03-21 00:30 locally: 16 days
        carol_1 = stay("carol-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-04T17:00:00Z")  # 03-05 01:00 locally
        carol_2 = stay("carol-2", carol, "2026-03-20T08:00:00+08:00", "2026-03-22T09:00:00+08:00")  # 15 days

        auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
            "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
        res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor)
        assert res.status_code == 200, res.text
        got: list[tuple[Any, ...]] = [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"],
                                       p["first"]["discharged"], p["readmission"]["admitted"])
                                      for p in res.json()["pairs"]]
        assert got == [(carol_1, carol_2, 15, "2026-03-05", "2026-03-20")]
    finally:
        engine.close()


def test_a_stay_inside_a_longer_one_does_not_hide_its_discharge(tmp_path: Path) -> None:
    """Bob's long stay at A (01-01 to 03-01, I10) holds a short one at B (01-10 to 01-12, I10, say a
    transfer out and back); he is readmitted at A on 03-05 for I10: 4 days after the long stay's
    discharge -- suspected. The check looked back from the readmission by admission date and stopped
    at the short stay (52 days), never reaching the long one."""
    from tests.test_recognition_world import B

    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    try:
        http = TestClient(create_app(engine))
        system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
        w = World(engine)

        def stay(eid: str, inst: str, patient: str, start: str, end: str) -> str:
            enc = {"resourceType": "Encounter", "id": eid, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                   "subject": {"reference": patient}, "period": {"start": start, "end": end},
                   "serviceProvider": {"reference": w.organization(inst)},
                   "reasonCode": [{"coding": [{"system": ICD10, "code": "I10"}]}]}
            assert http.put(f"/fhir/Encounter/{eid}", json=enc, headers=system).status_code in (200, 201)
            return f"Encounter/{eid}"

        bob_a, bob_b = w.patient(A, BOB, mrn="A-2"), w.patient(B, BOB, mrn="B-2")
        long = stay("long", A, bob_a, "2026-01-01T08:00:00+08:00", "2026-03-01T09:00:00+08:00")
        stay("short", B, bob_b, "2026-01-10T08:00:00+08:00", "2026-01-12T09:00:00+08:00")
        again = stay("again", A, bob_a, "2026-03-05T08:00:00+08:00", "2026-03-08T09:00:00+08:00")
        auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
            "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
        res = http.get("/reports/split-admissions?from=2026-01-01&to=2026-03-31", headers=auditor)
        assert res.status_code == 200, res.text
        assert [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"])
                for p in res.json()["pairs"]] == [(long, again, 4)]
    finally:
        engine.close()


def test_a_planned_readmission_coded_with_its_disease_is_never_suspected(tmp_path: Path) -> None:
    """README: planned readmissions (``exclude``: Z51) are never suspected. A chemotherapy cycle is
    coded Z51.1 with the cancer beside it (C34.1, as ICD-10 coding rules ask): Carol's second stay, 5
    days after a C34.1 stay, is a planned cycle -- not a split admission (it was listed: the two share
    C34). A third stay, C34.1 alone 3 days after the cycle, is not planned: suspected, paired with the
    cycle's discharge."""
    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    try:
        http = TestClient(create_app(engine))
        system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
        w = World(engine)
        carol = w.patient(A, CAROL, mrn="A-3")

        def stay(eid: str, start: str, end: str, *codes: str) -> str:
            enc = {"resourceType": "Encounter", "id": eid, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                   "subject": {"reference": carol}, "period": {"start": start, "end": end},
                   "serviceProvider": {"reference": w.organization(A)},
                   "reasonCode": [{"coding": [{"system": ICD10, "code": c}]} for c in codes]}
            assert http.put(f"/fhir/Encounter/{eid}", json=enc, headers=system).status_code in (200, 201)
            return f"Encounter/{eid}"

        stay("surgery", "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1")
        cycle = stay("cycle", "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00", "Z51.1", "C34.1")
        back = stay("back", "2026-03-15T08:00:00+08:00", "2026-03-18T09:00:00+08:00", "C34.1")
        auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
            "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
        res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-03-31", headers=auditor)
        assert res.status_code == 200, res.text
        assert [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"])
                for p in res.json()["pairs"]] == [(cycle, back, 3)]
    finally:
        engine.close()
