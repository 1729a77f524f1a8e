"""rvmoney24: probes of money24's split-admission changes (planned readmissions, local days, every
earlier stay) over real HTTP (/fhir PUT/DELETE, GET /reports/split-admissions) and the CLI.

Window 15 days, exclude [Z51] (``mappings/insurance/split_admission.yaml``: "code prefixes of planned
readmissions that are never suspected (Z51: a chemotherapy or radiotherapy session ...)").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import BOB, A, World, national_id

CAROL = national_id("32092319700505002")
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.fixture
def county(tmp_path: Path) -> Iterator[Any]:
    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    http = TestClient(create_app(engine))
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
    yield engine, http, system, World(engine)
    engine.close()


def put(http: TestClient, system: dict[str, str], resource: dict[str, Any]) -> str:
    res = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=system)
    assert res.status_code in (200, 201), res.text
    return f"{resource['resourceType']}/{resource['id']}"


def stay(w: World, eid: str, patient: str, start: str, end: str, *codes: str,
         diagnoses: tuple[tuple[str, int], ...] = ()) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": patient}, "period": {"start": start, "end": end},
        "serviceProvider": {"reference": w.organization(A)}}
    if codes:
        enc["reasonCode"] = [{"coding": [{"system": ICD10, "code": c}]} for c in codes]
    if diagnoses:
        enc["diagnosis"] = [{"condition": {"reference": ref}, "rank": rank} for ref, rank in diagnoses]
    return enc


def condition(cid: str, patient: str, code: str, status: str = "confirmed") -> dict[str, Any]:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": patient},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "resolved"}]},
            "verificationStatus": {"coding": [{"system": CLINICAL, "code": status}]},
            "code": {"coding": [{"system": ICD10, "code": code}]}}


def pairs(engine: Engine, http: TestClient, start: str = "2026-03-01", end: str = "2026-03-31") -> list[tuple[Any, ...]]:
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
    res = http.get(f"/reports/split-admissions?from={start}&to={end}", headers=auditor)
    assert res.status_code == 200, res.text
    return [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"]) for p in res.json()["pairs"]]


def test_a_z51_diagnosis_entered_in_error_does_not_make_a_readmission_planned(county: Any) -> None:
    """FINDING (HIGH). Carol is discharged 03-05 (I10) and readmitted 03-10 for I10; the readmission's
    Encounter.diagnosis also references a Condition Z51.1 that the hospital marked entered-in-error
    (a coding slip corrected). The record says it never was: the readmission is not planned, and 5 days
    for I10 is a suspected split admission. ``SplitRule.planned`` reads every coding, including the
    Conditions referenced from Encounter.diagnosis, whose verificationStatus is never looked at there
    (only the ``Condition?encounter=`` search path skips refuted / entered-in-error): the pair vanishes.
    On the base (f0ed0b7) the Z51 code was only left out of the conditions compared, and the pair was listed."""
    engine, http, system, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, system, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "I10"))
    slip = put(http, system, condition("slip", carol, "Z51.1", "entered-in-error"))
    again = put(http, system, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00", "I10",
                                   diagnoses=((slip, 2),)))
    assert pairs(engine, http) == [(first, again, 5)]


def test_a_refuted_z51_diagnosis_does_not_make_a_readmission_planned(county: Any) -> None:
    """FINDING (HIGH), as above with verificationStatus ``refuted``."""
    engine, http, system, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, system, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "I10"))
    ruled_out = put(http, system, condition("ruled-out", carol, "Z51.1", "refuted"))
    again = put(http, system, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00", "I10",
                                   diagnoses=((ruled_out, 2),)))
    assert pairs(engine, http) == [(first, again, 5)]


def test_a_secondary_palliative_care_code_does_not_make_an_emergency_readmission_planned(county: Any) -> None:
    """FINDING (MED). Bob, discharged after lung-cancer surgery (C34.1) on 03-05, is readmitted on 03-08
    for the same C34 (principal diagnosis, rank 1) and receives palliative care during the stay, coded
    Z51.5 as a secondary diagnosis (rank 2). Z51.5 is not a chemotherapy/radiotherapy cycle admitted
    cycle after cycle (the rule file's own meaning of ``exclude``); "any coding under exclude, whatever is
    coded beside" makes every readmission with any Z51.x code anywhere exempt: 3 days, C34, not listed.
    The base listed it (Z51.5 was only left out of the conditions compared)."""
    engine, http, system, w = county
    bob = w.patient(A, BOB, mrn="A-2")
    first = put(http, system, stay(w, "b-1", bob, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    principal = put(http, system, condition("principal", bob, "C34.1"))
    palliative = put(http, system, condition("palliative", bob, "Z51.5"))
    again = put(http, system, stay(w, "b-2", bob, "2026-03-08T08:00:00+08:00", "2026-03-20T09:00:00+08:00",
                                   diagnoses=((principal, 1), (palliative, 2))))
    assert pairs(engine, http) == [(first, again, 3)]


def test_a_deleted_diagnosis_condition_is_not_a_500(county: Any) -> None:
    """FINDING (MED, pre-existing: the base has the same read). An Encounter.diagnosis referencing a
    Condition that was since DELETEd: ``repository.read`` raises Gone (410), which is not NotFound, and
    ``contextlib.suppress(NotFound)`` lets it through -- the whole report is refused. Expected: the deleted
    Condition counts for nothing and the I10 pair is listed."""
    engine, http, system, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, system, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "I10"))
    gone = put(http, system, condition("gone", carol, "I10"))
    again = put(http, system, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00", "I10",
                                   diagnoses=((gone, 1),)))
    assert http.delete(f"/fhir/{gone}", headers=system).status_code in (200, 204)
    assert pairs(engine, http) == [(first, again, 5)]


def test_a_real_chemotherapy_cycle_stays_unsuspected_and_the_cli_agrees_with_the_api(
        county: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """GUARD. A Z51.1 cycle (confirmed) is not suspected; a readmission written in UTC whose local day is
    in the window is; the CLI prints the same JSON as the API (it passes the site's zones too)."""
    engine, http, system, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    put(http, system, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    cycle = put(http, system, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00",
                                   "Z51.1", "C34.1"))
    # 03-27T16:30Z is 03-28 00:30 in Funing: 16 days after the cycle's 03-12 discharge -- not suspected;
    # 03-26T16:30Z is 03-27 00:30 there: 15 days -- suspected
    late = put(http, system, stay(w, "c-3", carol, "2026-03-27T16:30:00Z", "2026-03-29T09:00:00+08:00", "C34.1"))
    assert pairs(engine, http) == []
    put(http, system, stay(w, "c-3", carol, "2026-03-26T16:30:00Z", "2026-03-29T09:00:00+08:00", "C34.1"))
    assert pairs(engine, http) == [(cycle, late, 15)]
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
    report = http.get("/reports/split-admissions?from=2026-03-01&to=2026-03-31", headers=auditor).json()
    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["split-admissions", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == report
