"""moneyfix24: which readmission is planned -- by its principal diagnosis only, a diagnosis the record
still stands by, and only the chemotherapy / radiotherapy sessions of ``exclude`` -- over real HTTP
(/fhir PUT, POST /hl7v2, GET /reports/split-admissions); and a stay whose end is written as a year
alone at the calendar's end is stored and read.

R4 ``Condition.verificationStatus`` (a modifier element): refuted and entered-in-error make the Condition
not valid (counted nowhere); unconfirmed, provisional and differential are not established (they never
exempt a readmission); confirmed, or none stated (R4: optional, and the DG1 conversion states none), exempts
when it is the principal diagnosis.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert_families import PID, message, msh, post
from tests.test_recognition_world import BOB, A, World, national_id

CAROL = national_id("32092319700505002")
ICD10 = "http://hl7.org/fhir/sid/icd-10"
STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@pytest.fixture
def county(tmp_path: Path) -> Iterator[Any]:
    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")
    yield engine, http, World(engine)
    engine.close()


def put(http: TestClient, resource: dict[str, Any]) -> str:
    res = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert res.status_code in (200, 201), res.text
    return f"{resource['resourceType']}/{resource['id']}"


def stay(w: World, eid: str, patient: str, start: str, end: str, *reasons: str,
         diagnoses: tuple[tuple[str, int | None], ...] = ()) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter", "id": eid, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": patient}, "period": {"start": start, "end": end},
        "serviceProvider": {"reference": w.organization(A)}}
    if reasons:
        enc["reasonCode"] = [{"coding": [{"system": ICD10, "code": c}]} for c in reasons]
    if diagnoses:
        enc["diagnosis"] = [{"condition": {"reference": ref}, **({"rank": rank} if rank else {})}
                            for ref, rank in diagnoses]
    return enc


def condition(cid: str, patient: str, code: str, status: str | None = "confirmed") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Condition", "id": cid, "subject": {"reference": patient},
                           "code": {"coding": [{"system": ICD10, "code": code}]}}
    if status:
        res["verificationStatus"] = {"coding": [{"system": STATUS, "code": status}]}
    return res


def pairs(engine: Engine, http: TestClient) -> list[tuple[str, str, int]]:
    auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
        "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")}
    res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-03-31", headers=auditor)
    assert res.status_code == 200, res.text
    return [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"]) for p in res.json()["pairs"]]


def test_a_palliative_care_admission_is_no_planned_cycle(county: Any) -> None:
    """Bob, discharged after lung-cancer surgery (C34.1) on 03-05, is admitted again on 03-08 with
    palliative care (Z51.5) as the principal diagnosis and C34.1 beside it. ``exclude`` means the
    chemotherapy and radiotherapy sessions admitted cycle after cycle (Z51.0, Z51.1, Z51.2), not all
    of Z51: 3 days, C34 shared, suspected. (Main exempted every Z51.x.)"""
    engine, http, w = county
    bob = w.patient(A, BOB, mrn="A-2")
    first = put(http, stay(w, "b-1", bob, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    care = put(http, condition("care", bob, "Z51.5"))
    cancer = put(http, condition("cancer", bob, "C34.1"))
    again = put(http, stay(w, "b-2", bob, "2026-03-08T08:00:00+08:00", "2026-03-20T09:00:00+08:00",
                           diagnoses=((care, 1), (cancer, 2))))
    assert pairs(engine, http) == [(first, again, 3)]


@pytest.mark.parametrize(("status", "planned"), [("confirmed", True), (None, True), ("provisional", False),
                                                 ("differential", False), ("unconfirmed", False)])
def test_a_principal_chemotherapy_diagnosis_exempts_when_the_record_stands_by_it(
        county: Any, status: str | None, planned: bool) -> None:
    """Carol's cycle names Z51.1 as its rank-1 diagnosis and C34.1 as rank 2: planned when the Z51.1
    Condition is confirmed or states no verification; a provisional, differential or unconfirmed one does
    not exempt (the pair is listed for the auditor)."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    chemo = put(http, condition("chemo", carol, "Z511", status))  # written without its dot: the same code
    cancer = put(http, condition("cancer", carol, "C34.1"))
    cycle = put(http, stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00",
                           diagnoses=((cancer, 2), (chemo, 1))))
    assert pairs(engine, http) == ([] if planned else [(first, cycle, 5)])


def test_a_comorbidity_ranked_first_is_not_the_principal_diagnosis(county: Any) -> None:
    """R4 ranks diagnoses within their ``use``: a Z51.1 ranked 1 as a comorbidity (CM) is not the
    admission's principal diagnosis; the readmission for C34.1 (ranked 1, discharge diagnosis) is suspected."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    first = put(http, stay(w, "c-1", carol, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", "C34.1"))
    put(http, condition("chemo", carol, "Z51.1"))
    put(http, condition("cancer", carol, "C34.1"))
    enc = stay(w, "c-2", carol, "2026-03-10T08:00:00+08:00", "2026-03-12T09:00:00+08:00")
    role = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
    enc["diagnosis"] = [
        {"condition": {"reference": "Condition/chemo"}, "rank": 1, "use": {"coding": [{"system": role, "code": "CM"}]}},
        {"condition": {"reference": "Condition/cancer"}, "rank": 1, "use": {"coding": [{"system": role, "code": "DD"}]}}]
    again = put(http, enc)
    assert pairs(engine, http) == [(first, again, 5)]


PV1 = ("PV1|1|I|内科^201^1^FNXRMYY||||D001^李^医生||||||||||||{visit}|||||||||||||||||||||||||"
       "{start}|{end}")


def test_over_hl7_the_admit_reason_is_the_principal_and_dg1s_name_none(county: Any) -> None:
    """HL7: a first stay (DG1 C34.9, 03-01 to 03-05); a cycle whose admit reason PV2-3 is Z51.1 (the
    Encounter's reasonCode) with DG1 C34.1: planned, not listed. A later stay (03-15 to 03-16) that sends
    Z51.1 and C34.2 as two DG1s and no admit reason: the conversion states no rank (DG1-15 is not read),
    so neither is the principal and the stay, 3 days after the cycle for C34, is suspected."""
    engine, http, _ = county

    def visit(ctl: str, number: str, start: str, end: str, *rest: str) -> None:
        assert post(http, message(msh("ADT^A03^ADT_A03", ctl), f"EVN|A03|{end}", PID,
                                  PV1.format(visit=number, start=start, end=end), *rest)) == "AA"

    # three codes of C34: the DG1 conversion keys a Condition by the patient and its code (no DG1-20), so
    # one code sent for two stays would be one Condition, moved to the later stay
    visit("S1", "V-1", "20260301080000", "20260305090000", "DG1|1||C34.9^肺癌^I10|||F")
    visit("S2", "V-2", "20260310080000", "20260312090000", "PV2|||Z51.1^肿瘤化学治疗疗程^I10",
          "DG1|1||C34.1^肺癌^I10|||F")
    visit("S3", "V-3", "20260315080000", "20260316090000", "DG1|1||Z51.1^肿瘤化学治疗疗程^I10|||F",
          "DG1|2||C34.2^肺癌^I10|||F")
    got = pairs(engine, http)
    assert len(got) == 1 and got[0][2] == 3
    cycle, later = (http.get(f"/fhir/{ref}").json() for ref in got[0][:2])
    assert [c["code"] for r in cycle["reasonCode"] for c in r["coding"]] == ["Z51.1"]
    assert "reasonCode" not in later


def test_a_stay_ending_in_the_year_9999_is_stored_and_searched(county: Any) -> None:
    """A period end written as the year alone, ``9999`` (a valid FHIR dateTime): the store's date index
    had no year after it (``datetime(10000, 1, 1)``); it is stored, found by a date search, and the
    split-admission report reads it (not discharged in March)."""
    engine, http, w = county
    carol = w.patient(A, CAROL, mrn="A-3")
    put(http, stay(w, "open", carol, "2026-03-01T08:00:00+08:00", "9999", "C34.1"))
    put(http, stay(w, "late", carol, "2026-03-02T08:00:00+08:00", "9999-12-31T20:00:00-05:00", "C34.1"))
    found = http.get("/fhir/Encounter", params={"date": "ge9999-06-01"}).json()
    assert sorted(e["resource"]["id"] for e in found.get("entry", ())) == ["late", "open"]
    assert pairs(engine, http) == []
