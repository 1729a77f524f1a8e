"""rvmoney24: the referral report after money24 (one ``stands`` rule, return rate of upward referrals)
read three ways over the same stored referrals -- ``GET /reports/referrals``, ``huren referrals --format
json`` and the 下转/上转 indicator of ``GET /reports/indicators`` -- must give one figure.

FHIR transaction Bundles over real HTTP (the township FNYLWSY 一级, the county FNXRMYY 三级):
- up 1: accepted, arrived, completed, referred back (returned);
- up 2: accepted, arrived, completed (not returned);
- up 3: entered in error (counts nowhere);
- down 1: the county refers a resident down; the township completes it.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.engine import Engine
from tests.test_insurance_indicators import figures
from tests.test_money24_referral_report import patient
from tests.test_referral_e2e import COUNTY, LI, TOWN, WANG, bearer, created, move, referral_bundle

DONE = (("accepted", "accepted"), ("arrived", "in-progress"), ("completed", "completed"))


def test_report_cli_and_indicator_agree(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """GUARD."""
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    wang, li = patient(http, town, WANG, "YL100"), patient(http, town, LI, "YL200")

    def walk(task_id: str, headers: dict[str, str], *states: tuple[str, str]) -> None:
        task = http.get(f"/fhir/Task/{task_id}", headers=headers).json()
        for state, status in states:
            r = http.put(f"/fhir/Task/{task_id}", json=move(task, state, status), headers=headers)
            assert r.status_code == 200, (state, r.text)
            task = r.json()

    def refer(who: str, sending: str, receiving: str, day: str, headers: dict[str, str]) -> str:
        return created(http.post("/fhir", json=referral_bundle(f"Patient/{who}", sending, receiving, "转诊", day),
                                 headers=headers), "Task")

    walk(refer(wang, TOWN, COUNTY, "2026-11-10", town), county, *DONE, ("referred-back", "completed"))
    walk(refer(li, TOWN, COUNTY, "2026-11-11", town), county, *DONE)
    walk(refer(li, TOWN, COUNTY, "2026-11-12", town), town, ("entered-in-error", "entered-in-error"))
    walk(refer(li, COUNTY, TOWN, "2026-11-13", county), town, *DONE)

    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs system/ChargeItem.rs system/Encounter.rs",
                     kind="auditor")
    res = http.get("/reports/referrals?from=2026-11&to=2026-11", headers=auditor)
    assert res.status_code == 200, res.text
    report = res.json()
    rows = {r["institution"]: r for r in report["rows"]}
    assert report["referrals"] == 3
    assert rows[COUNTY]["received"]["upward"] == 2 and rows[COUNTY]["sent"]["downward"] == 1
    assert (rows[COUNTY]["completed_upward"], rows[COUNTY]["returned"]) == (2, 1)
    assert rows[COUNTY]["ratios"]["return_rate"] == 0.5
    assert rows[COUNTY]["ratios"]["downward_to_upward"] == 0.5
    assert rows[TOWN]["ratios"]["return_rate"] is None  # it completed a downward referral only

    ind = http.get("/reports/indicators", params={"month": "2026-11"}, headers=auditor)
    assert ind.status_code == 200, ind.text
    two_way = next(e["resource"] for e in ind.json()["entry"]
                   if e["resource"]["resourceType"] == "MeasureReport"
                   and e["resource"]["measure"].endswith("huren-two-way-referral-ratio"))
    assert figures(two_way["group"][0]) == (D(sum(r["sent"]["downward"] for r in report["rows"])),
                                            D(sum(r["received"]["upward"] for r in report["rows"])))

    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    if settings.site is not None:
        monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["referrals", "2026-11", "--format", "json"]) == 0
    got: dict[str, Any] = json.loads(capsys.readouterr().out)["referrals"]
    assert got == report
