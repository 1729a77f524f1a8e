"""money24: the settlement's answers at their edges, as the bureau's auditor derives them from
README "Insurance" and DOMAIN.md -- ChargeItems POSTed over real HTTP, ``GET /reports/settlement``.

- The year of a charge line is its **local** date at the institution (Asia/Shanghai, +08:00): a line
  a FHIR client writes in UTC at 2026-12-31T16:30Z was made on 2027-01-01 at the hospital.
- The primary-care share is "at least 16 %": 159.99 of 1000.00 is 15.999 %, not met, though it
  shows as 16.00 % to the hundredth; exactly 160.00 of 1000.00 is met.
- Tiers at their edges (exactly 5 %, 10 % over; exactly 10 %, 15 % under) are whole segments.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.settings import Settings
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer

BILLING = "system/*.cruds"


def amount_site(tmp_path: Path) -> Path:
    """A site folder (``tmp_path``/site) whose ``insurance/settlement.yaml`` is the shipped rules with
    ``basis: amount`` (the money tests' settlement by line amounts); one copy of the folder the
    settlement and coverage test files each wrote (suitedup31)."""
    folder = tmp_path / "site"
    (folder / "insurance").mkdir(parents=True)
    (folder / "insurance" / "settlement.yaml").write_text(RULES.replace("basis: fund_share", "basis: amount"), "utf-8")
    return folder


@pytest.fixture
def county(settings: Settings, tmp_path: Path) -> Any:
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine

    folder = tmp_path / "site"
    (folder / "insurance").mkdir(parents=True)
    # a 2027 too, so that a line of 2027 has a year to count in
    year_2026 = RULES[RULES.index('      "2026":'):]
    rules = RULES + year_2026.replace('"2026":', '"2027":', 1)
    (folder / "insurance" / "settlement.yaml").write_text(rules, "utf-8")
    engine = Engine(settings.with_(site=folder))
    http = TestClient(create_app(engine))
    auth = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-billing", BILLING),
            "Content-Type": "application/fhir+json"}

    def post(*lines: dict[str, Any]) -> None:
        for line in lines:
            res = http.post("/fhir/ChargeItem", content=body({k: v for k, v in line.items() if k != "id"}),
                            headers=auth)
            assert res.status_code == 201, res.text

    yield engine, http, post
    engine.close()


def settlement(engine: Any, http: Any, year: int) -> dict[str, Any]:
    res = http.get(f"/reports/settlement?year={year}", headers=insurer(engine))
    assert res.status_code == 200, res.text
    return res.json()


def by_type(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (region,) = report["regions"]
    (community,) = region["communities"]
    return {s["insurance_type"]: s for s in community["settlements"]}


def steps(s: dict[str, Any]) -> list[tuple[str, D]]:
    return [(x["step"], D(str(x["amount"]))) for x in s["steps"]]


def test_a_line_belongs_to_the_year_of_its_local_date(county: Any) -> None:
    engine, http, post = county
    post(
        # 2026-12-31 16:30 UTC is 2027-01-01 00:30 in Fuing: a line of 2027
        charge("a", "2026-12-31T16:30:00Z", ident("FNXRMYY"), "100.00", "100.00", "employee"),
        # 2025-12-31 17:00 UTC is 2026-01-01 01:00 there: a line of 2026
        charge("b", "2025-12-31T17:00:00Z", ident("FNXRMYY"), "200.00", "200.00", "employee"),
        # written with the local offset: as written
        charge("c", "2026-12-31T23:59:00+08:00", ident("FNXRMYY"), "40.00", "40.00", "employee"),
        # a time written in another zone: 2027-01-01 00:30 +09:00 is 2026-12-31 23:30 in Funing
        charge("d", "2027-01-01T00:30:00+09:00", ident("FNXRMYY"), "8.00", "8.00", "employee"),
        # a date alone, and a local time without an offset: as written
        charge("e", "2027-01-01", ident("FNXRMYY"), "1.00", "1.00", "employee"),
    )
    y2026, y2027 = by_type(settlement(engine, http, 2026))["employee"], by_type(settlement(engine, http, 2027))["employee"]
    assert (y2026["lines"], D(str(y2026["spending"]))) == (3, D("248.00"))
    assert (y2027["lines"], D(str(y2027["spending"]))) == (2, D("101.00"))


def test_the_primary_care_share_is_at_least_its_minimum_not_rounded_up_to_it(county: Any) -> None:
    engine, http, post = county
    yilin, county_hospital = ident("FNYLWSY"), ident("FNXRMYY")
    post(charge("p", "2026-03-01T08:00:00+08:00", yilin, "159.99", "159.99", "resident"),
         charge("q", "2026-03-01T08:00:00+08:00", county_hospital, "840.01", "840.01", "resident"))
    pc = settlement(engine, http, 2026)["regions"][0]["communities"][0]["primary_care"]
    assert D(str(pc["spending"])) == D("159.99") and D(str(pc["of"])) == D("1000.00")
    assert pc["met"] is False, pc  # 15.999 % is below 16 %
    # one fen more: exactly 16 %, which is "at least 16 %"
    post(charge("r", "2026-03-02T08:00:00+08:00", yilin, "0.01", "0.01", "resident"),
         charge("s", "2026-03-02T08:00:00+08:00", county_hospital, "-0.01", "-0.01", "resident"))
    pc = settlement(engine, http, 2026)["regions"][0]["communities"][0]["primary_care"]
    assert D(str(pc["spending"])) == D("160.00") and D(str(pc["of"])) == D("1000.00")
    assert pc["met"] is True, pc


@pytest.mark.parametrize(("spent", "tiers", "fund_share", "fund_pays", "year_end"), [
    # employee budget 1000.00, prepaid 600.00; overspend: 70 % to 5 %, 60 % to 10 %, nothing above
    ("1050.00", ["35.00", "0.00", "0.00"], "35.00", "1035.00", "435.00"),  # exactly 5 % over
    ("1050.01", ["35.00", "0.01", "0.00"], "35.01", "1035.01", "435.01"),  # a fen into the second
    ("1100.00", ["35.00", "30.00", "0.00"], "65.00", "1065.00", "465.00"),  # exactly 10 % over
    ("1100.01", ["35.00", "30.00", "0.00"], "65.00", "1065.00", "465.00"),  # a fen above: the fund pays none of it
])
def test_overspend_tiers_at_their_edges(county: Any, spent: str, tiers: list[str], fund_share: str,
                                        fund_pays: str, year_end: str) -> None:
    engine, http, post = county
    post(charge("o", "2026-05-01T08:00:00+08:00", ident("FNXRMYY"), spent, spent, "employee"))
    emp = by_type(settlement(engine, http, 2026))["employee"]
    got = steps(emp)
    assert [a for k, a in got if k == "overspend-tier"] == [D(t) for t in tiers]
    assert dict(got)["fund-share-of-overspend"] == D(fund_share)
    assert dict(got)["community-bears"] == D(spent) - D("1000.00") - D(fund_share)
    assert dict(got)["fund-pays"] == D(fund_pays) and dict(got)["year-end"] == D(year_end)


@pytest.mark.parametrize(("spent", "tiers", "retained", "fund_pays"), [
    # resident budget 2000.00; surplus: the community keeps 80 % to 10 %, 60 % to 15 %, nothing above
    ("1800.00", ["160.00", "0.00", "0.00"], "160.00", "1960.00"),  # exactly 10 % under
    ("1700.00", ["160.00", "60.00", "0.00"], "220.00", "1920.00"),  # exactly 15 % under
    ("1699.99", ["160.00", "60.00", "0.00"], "220.00", "1919.99"),  # a fen beyond: kept by no one but the fund
])
def test_surplus_tiers_at_their_edges(county: Any, spent: str, tiers: list[str], retained: str,
                                      fund_pays: str) -> None:
    engine, http, post = county
    post(charge("u", "2026-05-01T08:00:00+08:00", ident("FNXRMYY"), spent, spent, "resident"))
    res = by_type(settlement(engine, http, 2026))["resident"]
    got = steps(res)
    assert dict(got)["prepaid"] == D("1200.00")  # 12 × 5 % = 60 %, the ceiling
    assert [a for k, a in got if k == "surplus-tier"] == [D(t) for t in tiers]
    assert dict(got)["retained"] == D(retained)
    assert dict(got)["returned-to-fund"] == D("2000.00") - D(spent) - D(retained)
    assert dict(got)["fund-pays"] == D(fund_pays)
    assert dict(got)["year-end"] == D(fund_pays) - D("1200.00")


def test_an_hl7_charge_line_sent_in_utc_counts_in_its_local_year(settings: Settings, tmp_path: Path) -> None:
    """DFT^P03 over POST /hl7v2: FT1-4 ``20261231163000+0000`` is 2027-01-01 00:30 in Funing (a line of
    2027); ``20261231100000`` (no offset: the hospital's own time) is 2026's."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine
    from tests.test_convert_families import PID, PV1, message, msh
    from tests.test_convert_families import post as post_hl7

    account = PID.replace("|13800000000", "|13800000000|||||ACC-88^^^FNXRMYY^AN")
    folder = amount_site(tmp_path)
    with Engine(settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", BILLING)
        bar = message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20261101", account, PV1,
                      "IN1|1|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260101|20271231||"
                      "310^职工基本医疗保险^CNYBXZ")
        dft = message(msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20261231", account, PV1,
                      "FT1|1|T-7001||20261231163000+0000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                      "FT1|2|T-7002||20261231100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")
        assert post_hl7(http, bar) == "AA" and post_hl7(http, dft) == "AA"
        emp = by_type(settlement(engine, http, 2026))["employee"]
        assert (emp["lines"], D(str(emp["spending"]))) == (1, D("40.00"))


def test_the_prepayment_stops_at_its_ceiling(settings: Settings, tmp_path: Path) -> None:
    """6 % a month for 12 months is 72 % of the budget: the fund prepays at most the 60 % ceiling
    (employee budget 1000.00: 600.00, not 720.00), and the year-end balance is figured on that."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine

    folder = tmp_path / "site"
    (folder / "insurance").mkdir(parents=True)
    (folder / "insurance" / "settlement.yaml").write_text(RULES.replace("monthly: 0.05", "monthly: 0.06"), "utf-8")
    with Engine(settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        auth = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-billing", BILLING),
                "Content-Type": "application/fhir+json"}
        line = charge("x", "2026-05-01T08:00:00+08:00", ident("FNXRMYY"), "900.00", "900.00", "employee")
        assert http.post("/fhir/ChargeItem", content=body({k: v for k, v in line.items() if k != "id"}),
                         headers=auth).status_code == 201
        got = dict(steps(by_type(settlement(engine, http, 2026))["employee"]))
    assert (got["prepayment-monthly"], got["prepayment-ceiling"], got["prepaid"]) == (D("60.00"), D("600.00"),
                                                                                        D("600.00"))
    # 100.00 under: the community keeps 80 %; the fund pays 900.00 + 80.00, less 600.00 prepaid
    assert (got["fund-pays"], got["year-end"]) == (D("980.00"), D("380.00"))
