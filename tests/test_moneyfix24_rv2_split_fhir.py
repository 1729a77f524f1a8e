"""rvmoney24b: split admissions from FHIR clients that rank Encounter.diagnosis within its use
(AD / DD / billing), and the report's CLI (`huren split-admissions`) against the API on one store,
local-day edges written in UTC. Real HTTP (PUT /fhir, GET /reports/split-admissions), the real store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine import cli
from tests.test_moneyfix24_planned import CAROL, condition, pairs, put, stay
from tests.test_moneyfix24_planned import county as county  # noqa: F401  (the fixture)
from tests.test_recognition_world import A

ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"


def ranked(*entries: tuple[str, str, int]) -> list[dict[str, Any]]:
    return [{"condition": {"reference": ref}, "rank": rank, "use": {"coding": [{"system": ROLE, "code": use}]}}
            for ref, use, rank in entries]


def test_the_discharge_principal_decides_not_an_admission_diagnosis_of_chemo(county: Any) -> None:
    """Carol, discharged with pneumonia (J18.9) on 03-05, comes back on 03-08 booked for a chemotherapy
    cycle (admission diagnosis AD rank 1: Z51.1); the cycle is not given, she is treated for pneumonia
    again: discharge diagnosis DD rank 1 J18.9 (the 病案首页's principal diagnosis, what the fund pays
    by). 3 days, J18 shared: suspected. The mend takes any rank-1 entry as the principal, so the
    admission diagnosis exempts it."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "J18.9"))
    chemo = put(http, condition("chemo", carol, "Z51.1"))
    pneu = put(http, condition("pneu", carol, "J18.9"))
    enc = stay(w, "c-2", carol, "2026-03-08T08:00:00+08:00", "2026-03-15T09:00:00+08:00")
    enc["diagnosis"] = ranked((chemo, "AD", 1), (pneu, "DD", 1))
    again = put(http, enc)
    assert pairs(engine, http) == [(first, again, 3)]


def test_guard_a_chemo_cycle_ranked_by_use_is_planned(county: Any) -> None:
    """Guard: a cycle whose discharge principal (DD rank 1) is Z51.1, C34.1 DD rank 2, billing rank 1
    Z51.1: planned, not listed after a C34 surgery stay."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    chemo = put(http, condition("chemo", carol, "Z51.1"))
    cancer = put(http, condition("cancer", carol, "C34.1"))
    enc = stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00")
    enc["diagnosis"] = ranked((chemo, "DD", 1), (cancer, "DD", 2), (chemo, "billing", 1))
    put(http, enc)
    assert pairs(engine, http) == []


def test_guard_cli_and_api_agree_at_local_day_edges(county: Any, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Guard: stays written in UTC across the local midnight (discharged 03-05T16:30Z = 03-06 00:30 in
    Funing; readmitted 03-21T15:59Z = 03-21 23:59): 15 local days, listed; the CLI prints the same JSON."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "u-1", carol, "2026-03-01T00:00:00Z", "2026-03-05T16:30:00Z", "I10"))
    again = put(http, stay(w, "u-2", carol, "2026-03-21T15:59:00Z", "2026-03-25T16:30:00Z", "I10"))  # 03-26 local
    late = put(http, stay(w, "u-3", carol, "2026-04-09T16:00:00Z", "2026-04-12T09:00:00Z", "I10"))  # 04-10 local
    assert pairs(engine, http) == [(first, again, 15)]
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
    api = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-10", headers=auditor).json()
    assert [(p["readmission"]["encounter"], p["readmission"]["admitted"], p["gap_days"]) for p in api["pairs"]] == [
        (again, "2026-03-21", 15), (late, "2026-04-10", 15)]
    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["split-admissions", "--from", "2026-03-01", "--to", "2026-04-10", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == api


def test_guard_a_deleted_principal_exempts_nothing_and_no_500(county: Any) -> None:
    """Guard: the cycle's rank-1 Z51.1 Condition deleted (410 on read) and a rank-2 reference to a
    Condition that never was (404): the report answers 200; with no principal left the readmission
    for C34 is suspected."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    chemo = put(http, condition("chemo", carol, "Z51.1"))
    cancer = put(http, condition("cancer", carol, "C34.1"))
    enc = stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00")
    enc["diagnosis"] = ranked((chemo, "DD", 1), (cancer, "DD", 2), ("Condition/never", "DD", 3))
    again = put(http, enc)
    assert pairs(engine, http) == []
    assert http.delete(f"/fhir/{chemo}").status_code in (200, 204)
    assert http.get(f"/fhir/{chemo}").status_code == 410
    assert pairs(engine, http) == [(first, again, 5)]
