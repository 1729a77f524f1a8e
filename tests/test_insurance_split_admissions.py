"""Split admissions (分解住院) over real HTTP: Encounters and Conditions PUT through /fhir, the rule
as data (window, classes, same condition by code prefix, planned readmissions excluded), one person
across institutions through the MPI; API and CLI agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import ALICE, BOB, A, B, World, national_id

CAROL = national_id("32092319700505002")
ICD10 = "http://hl7.org/fhir/sid/icd-10"
AUDITOR = "system/DetectedIssue.rs system/Encounter.rs"


@pytest.fixture
def county(tmp_path: Path) -> Any:
    site = tmp_path / "site"
    site.mkdir()
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site))
    http = TestClient(create_app(engine))
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
    w = World(engine)
    n = 0

    def put(resource: dict[str, Any]) -> None:
        res = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=system)
        assert res.status_code in (200, 201), res.text

    def stay(inst: str, patient: str, start: str, end: str | None, *, dx: str | None = None, reason: str | None = None,
             linked: str | None = None, cls: str = "IMP") -> str:
        nonlocal n
        n += 1
        eid = f"enc-{n}"
        enc: dict[str, Any] = {
            "resourceType": "Encounter", "id": eid, "status": "finished" if end else "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "subject": {"reference": patient}, "period": {"start": start, **({"end": end} if end else {})},
            "serviceProvider": {"reference": w.organization(inst)},
        }
        if reason:
            enc["reasonCode"] = [{"coding": [{"system": ICD10, "code": reason}]}]
        if linked:  # FHIR style: the Encounter names its diagnosis
            put({"resourceType": "Condition", "id": f"cond-{n}", "subject": {"reference": patient},
                 "code": {"coding": [{"system": ICD10, "code": linked}]}})
            enc["diagnosis"] = [{"condition": {"reference": f"Condition/cond-{n}"}}]
        put(enc)
        if dx:  # HL7 DG1 style: the Condition names its encounter
            put({"resourceType": "Condition", "id": f"dg1-{n}", "subject": {"reference": patient},
                 "encounter": {"reference": f"Encounter/{eid}"}, "code": {"coding": [{"system": ICD10, "code": dx}]}})
        return f"Encounter/{eid}"

    alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    bob, carol = w.patient(A, BOB, mrn="A-2"), w.patient(A, CAROL, mrn="A-3")
    e = {}
    e["alice1"] = stay(A, alice_a, "2026-03-01T10:00:00+08:00", "2026-03-10T09:00:00+08:00", dx="J18.9")
    e["alice2"] = stay(B, alice_b, "2026-03-15T08:00:00+08:00", "2026-03-18T09:00:00+08:00", linked="J18.0")
    stay(B, alice_b, "2026-03-19T08:00:00+08:00", "2026-03-19T12:00:00+08:00", dx="J18.0", cls="AMB")  # outpatient
    stay(A, alice_a, "2026-03-25T08:00:00+08:00", "2026-03-26T09:00:00+08:00", dx="Z51.1")  # planned chemotherapy
    e["bob1"] = stay(A, bob, "2026-03-01T08:00:00+08:00", "2026-03-05T09:00:00+08:00", reason="I10")
    e["bob2"] = stay(A, bob, "2026-03-20T08:00:00+08:00", "2026-03-22T09:00:00+08:00", reason="I10")  # 15 days
    stay(A, bob, "2026-04-07T08:00:00+08:00", None, reason="I10")  # 16 days after 03-22: outside
    stay(A, carol, "2026-03-01T08:00:00+08:00", "2026-03-03T09:00:00+08:00", dx="K35.8")
    stay(A, carol, "2026-03-05T08:00:00+08:00", "2026-03-09T09:00:00+08:00", dx="J18.1")  # another condition
    yield engine, http, e
    engine.close()


def auditor(engine: Any, scopes: str = AUDITOR) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("auditor-wang", scopes, kind="auditor")}


def test_readmissions_for_the_same_condition_within_the_window(county: Any, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    engine, http, e = county
    res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine))
    assert res.status_code == 200, res.text
    report = res.json()
    got = [(p["first"]["encounter"], p["readmission"]["encounter"], p["gap_days"], p["conditions"],
            p["same_institution"]) for p in report["pairs"]]
    assert got == [
        (e["alice1"], e["alice2"], 5, ["J18"], False),  # discharged at A, readmitted at B: one person
        (e["bob1"], e["bob2"], 15, ["I10"], True),  # exactly the window
    ]
    assert report["rule"]["window_days"] == 15 and report["count"] == 2
    # a period that starts after the first stay still sees it as the earlier admission
    later = http.get("/reports/split-admissions?from=2026-03-15&to=2026-03-15", headers=auditor(engine)).json()
    assert [p["readmission"]["encounter"] for p in later["pairs"]] == [e["alice2"]]

    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["split-admissions", "--from", "2026-03-01", "--to", "2026-04-30", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == report
    assert cli.main(["split-admissions", "--from", "2026-03-01", "--to", "2026-04-30"]) == 0
    assert "gap 15 d  I10" in capsys.readouterr().out


def test_the_rule_is_site_data(county: Any) -> None:
    engine, http, e = county
    folder = engine.settings.site / "insurance"
    folder.mkdir()
    (folder / "split_admission.yaml").write_text("window_days: 4\nclasses: [IMP]\nprefix: 3\n", "utf-8")
    report = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine)).json()
    assert report["count"] == 0  # Alice's 5 days are past a 4-day window; Carol's K35 then J18 are two conditions
    (folder / "split_admission.yaml").write_text("window_days: 5\nclasses: [IMP]\nprefix: 3\n", "utf-8")
    report = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine)).json()
    assert [p["readmission"]["encounter"] for p in report["pairs"]] == [e["alice2"]]
    (folder / "split_admission.yaml").write_text("window_days: 5\nclasses: [IMP]\nprefix: 5\n", "utf-8")
    report = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine)).json()
    assert report["count"] == 0  # compared on 5 characters, J18.9 and J18.0 differ
    (folder / "split_admission.yaml").write_text("window_days: 20\nclasses: [IMP]\nprefix: 3\nexclude: []\n", "utf-8")
    report = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine)).json()
    assert report["count"] == 3  # Bob's third stay (16 days) now counts; Z51 never matched J18 anyway
    (folder / "split_admission.yaml").write_text("window_days: -1\nclasses: [IMP]\nprefix: 3\n", "utf-8")
    res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-04-30", headers=auditor(engine))
    assert res.status_code == 409
    assert "split_admission.yaml:1: window_days" in res.json()["issue"][0]["diagnostics"]


def test_bad_requests_and_access(county: Any) -> None:
    engine, http, _ = county
    url = "/reports/split-admissions"
    assert http.get(url + "?from=2026-03-01&to=2026-04-30").status_code == 401
    assert http.get(url + "?from=2026-03-01&to=2026-04-30",
                    headers=auditor(engine, "system/DetectedIssue.rs")).status_code == 403
    assert http.get(url + "?from=2026-04-30&to=2026-03-01", headers=auditor(engine)).status_code == 400
    assert http.get(url + "?from=2026-03-01", headers=auditor(engine)).status_code == 400
    assert http.get(url + "?from=2026-02-30&to=2026-03-01", headers=auditor(engine)).status_code == 400
