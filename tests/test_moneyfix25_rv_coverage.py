"""rvmoney25: probes of money25's "a charge line takes the Coverage in force on its day".

Real bytes through the real path: the account and its Coverages as a BAR over POST /hl7v2, the lines
as a DFT, Coverages edited with PUT /fhir/Coverage, the settlement read at GET /reports/settlement.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert_families import PV1, message, msh
from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import BILLING, amount_site, by_type, settlement
from tests.test_money25_coverage_period import ACCOUNT

RESIDENT = "IN1|1|CN-RURAL^城乡居民医保|YB001^^^FNYB|阜宁县医疗保障局||||||||{start}|{end}||390^城乡居民基本医疗保险^CNYBXZ"
EMPLOYEE = "IN1|{n}|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||{start}|{end}||310^职工基本医疗保险^CNYBXZ"


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    folder = amount_site(tmp_path)
    with Engine(settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", BILLING)
        yield engine, http


def _dft(control: str, *lines: str) -> bytes:
    return message(msh("DFT^P03^DFT_P03", control), "EVN|P03|20260915", ACCOUNT, PV1, *lines)


def _types(report: dict[str, Any]) -> dict[str, tuple[int, D]]:
    """Lines and spending of each insurance type that has lines."""
    return {k: (v["lines"], D(str(v["spending"]))) for k, v in by_type(report).items() if v["lines"]}


def _coverages(http: TestClient) -> dict[str, dict[str, Any]]:
    """The account's Coverages by their IN1-15 code."""
    (account,) = [e["resource"] for e in http.get("/fhir/Account").json().get("entry", [])]
    out = {}
    for c in account.get("coverage") or ():
        cov = http.get(f"/fhir/{c['coverage']['reference']}").json()
        out[cov["type"]["coding"][0]["code"]] = cov
    return out


def test_a_later_bar_naming_only_the_new_coverage_keeps_the_earlier_months_resident(world: Any) -> None:
    """FINDING. The HIS sends the patient's current insurance: first 城乡居民 (to 06-30), then, after the switch,
    a BAR^P05 naming only the 职工 cover (from 07-01). March was the resident fund's all along. The later
    BAR replaces Account.coverage, so March (300.00) is now excluded as no-insurance-type (base: counted as
    employee)."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20260630"))) == "AA"
    assert post_hl7(http, message(msh("BAR^P05^BAR_P05", "S2"), "EVN|P05|20260701", ACCOUNT, PV1,
                                  EMPLOYEE.format(n=1, start="20260701", end="20271231"))) == "AA"
    assert post_hl7(http, _dft("S3", "FT1|1|T-9001||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                               "FT1|2|T-9002||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")) == "AA"
    report = settlement(engine, http, 2026)
    assert _types(report) == {"resident": (1, D("300.00")), "employee": (1, D("40.00"))}, (
        _types(report), report["charges"].get("excluded"))


def test_a_period_end_at_an_instant_is_not_the_whole_day_after(world: Any) -> None:
    """FINDING. A client writes the resident cover's end as the instant the employee cover starts,
    2026-07-01T00:00:00+08:00 (R4: an end includes what matches it at its precision -- here that one
    second). A line at 10:00 on 07-01 is after the resident cover ended: the employee fund's."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20260630"),
                                  EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    covs = _coverages(http)
    resident, employee = covs["390"], covs["310"]
    resident["period"] = {"start": "2025-01-01T00:00:00+08:00", "end": "2026-07-01T00:00:00+08:00"}
    employee["period"] = {"start": "2026-07-01T00:00:00+08:00", "end": "2027-12-31T23:59:59+08:00"}
    for cov in (resident, employee):
        cov.pop("meta", None)
        r = http.put(f"/fhir/Coverage/{cov['id']}", json=cov)
        assert r.status_code == 200, r.text
    assert post_hl7(http, _dft("S3", "FT1|1|T-9101||20260701100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("40.00"))}


def test_a_month_precision_end_includes_its_last_day_only(world: Any) -> None:
    """Guard: an end of ``2026-06`` covers every day of June and none of July."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20260630"))) == "AA"
    (cov,) = _coverages(http).values()
    cov["period"] = {"start": "2025", "end": "2026-06"}
    cov.pop("meta", None)
    assert http.put(f"/fhir/Coverage/{cov['id']}", json=cov).status_code == 200
    assert post_hl7(http, _dft("S3", "FT1|1|T-9201||20260630230000||CG|DRUG-7^头孢曲松^L||1|1||7.00&CNY",
                               "FT1|2|T-9202||20260701000500||CG|DRUG-7^头孢曲松^L||1|1||5.00&CNY")) == "AA"
    report = settlement(engine, http, 2026)
    assert _types(report) == {"resident": (1, D("7.00"))}
    excluded = {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}
    assert excluded == {"no-insurance-type": (1, D("5.00"))}


def test_an_entered_in_error_coverage_gives_no_type(world: Any) -> None:
    """Guard: the first IN1's Coverage marked entered-in-error: the line takes the second's type."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20271231"),
                                  EMPLOYEE.format(n=2, start="20250101", end="20271231"))) == "AA"
    resident = _coverages(http)["390"]
    resident["status"] = "entered-in-error"
    resident.pop("meta", None)
    assert http.put(f"/fhir/Coverage/{resident['id']}", json=resident).status_code == 200
    assert post_hl7(http, _dft("S3", "FT1|1|T-9301||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("300.00"))}


def test_a_deleted_coverage_does_not_fail_the_settlement(world: Any) -> None:
    """FINDING (also on base). One of the account's Coverages is deleted (DELETE /fhir/Coverage/x): the settlement still
    answers, the line under the Coverage that remains (``_account_types`` catches NotFound, not Gone:
    the whole year's settlement is a 410)."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20271231"),
                                  EMPLOYEE.format(n=2, start="20250101", end="20271231"))) == "AA"
    resident = _coverages(http)["390"]
    assert http.delete(f"/fhir/Coverage/{resident['id']}").status_code in (200, 204)
    assert post_hl7(http, _dft("S3", "FT1|1|T-9401||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("300.00"))}


def test_a_cancelled_coverage_gives_no_type(world: Any) -> None:
    """FINDING. R4 Coverage.status ``cancelled``: "the instance is withdrawn, rescinded or reversed" --
    no cover. The first IN1's Coverage (城乡居民) cancelled, the second (职工) active, both periods
    open: the line is the employee fund's. ``_account_types`` skips only entered-in-error."""
    engine, http = world
    assert post_hl7(http, message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                                  RESIDENT.format(start="20250101", end="20271231"),
                                  EMPLOYEE.format(n=2, start="20250101", end="20271231"))) == "AA"
    resident = _coverages(http)["390"]
    resident["status"] = "cancelled"
    resident.pop("meta", None)
    assert http.put(f"/fhir/Coverage/{resident['id']}", json=resident).status_code == 200
    assert post_hl7(http, _dft("S3", "FT1|1|T-9501||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("300.00"))}
