"""End to end: ChargeItems POSTed over HTTP, then ``huren settle`` and ``GET /reports/settlement``
give the same figures, every step shown; access follows the duplicate-report rule."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.charges import FUND_SHARE_EXT, INSURANCE_TYPE_EXT
from engine.settings import Settings
from tests.test_insurance_tiers import REQUIRED_LINE, SHIPPED

INSURER = "system/DetectedIssue.rs system/ChargeItem.rs"

RULES = SHIPPED.read_text("utf-8").replace(REQUIRED_LINE, "fund_pays: 0.70").replace(
    'employee: "36000000.00"', 'employee: "1000.00"').replace('resident: "54000000.00"', 'resident: "2000.00"')


def charge(cid: str, day: str, org: dict[str, Any], amount: str | None, fund: str | None, itype: str | None,
           status: str = "billable") -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": cid, "status": status,
        "code": {"coding": [{"system": "urn:huren:code:price", "code": "110200001", "display": "门诊诊查费"}]},
        "subject": {"reference": "Patient/p1"}, "occurrenceDateTime": day, "performingOrganization": org,
        "extension": [],
    }
    if amount is not None:
        res["priceOverride"] = {"value": "__" + amount, "currency": "CNY"}
    if fund is not None:
        res["extension"].append({"url": FUND_SHARE_EXT, "valueMoney": {"value": "__" + fund, "currency": "CNY"}})
    if itype is not None:
        res["extension"].append({"url": INSURANCE_TYPE_EXT, "valueCode": itype})
    if not res["extension"]:
        del res["extension"]
    return res


def body(resource: dict[str, Any]) -> bytes:
    """JSON with the money written as exact decimal numbers (``"__360.10"`` → ``360.10``)."""
    text = json.dumps(resource, ensure_ascii=False)
    for marker in {v for v in text.split('"') if v.startswith("__")}:
        text = text.replace(f'"{marker}"', marker[2:])
    return text.encode()


def ident(code: str) -> dict[str, Any]:
    return {"identifier": {"system": "urn:huren:institution", "value": code}}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    (folder / "insurance").mkdir(parents=True)
    (folder / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    return folder


def open_county(settings: Settings) -> Any:
    engine = Engine(settings)
    http = TestClient(create_app(engine))
    auth = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-billing", "system/*.cruds"),
            "Content-Type": "application/fhir+json"}
    org = {"resourceType": "Organization", "id": "org-yilin", "active": True, "name": "阜宁县益林镇中心卫生院",
           "identifier": [{"system": "urn:huren:institution", "value": "FNYLWSY"}]}
    assert http.put("/fhir/Organization/org-yilin", content=body(org), headers=auth).status_code in (200, 201)
    yilin = {"reference": "Organization/org-yilin"}
    lines = [
        # the county hospital (not primary), employee insurance: fund shares 1080.00, 8 % over 1000.00
        charge("c1", "2026-01-15T09:00:00+08:00", ident("FNXRMYY"), "500.10", "360.10", "employee"),
        charge("c2", "2026-06-30T23:59:00+08:00", ident("FNXRMYY"), "500.20", "360.20", "employee"),
        charge("c3", "2026-12-31T23:30:00+08:00", ident("FNXRMYY"), "499.70", "359.70", "employee"),
        # the township centre (primary), referenced as an Organization, resident insurance: 1700.00, 15 % under
        charge("c4", "2026-03-01T08:00:00+08:00", yilin, "1000.00", "850.05", "resident"),
        charge("c5", "2026-03-02", yilin, "1000.00", "849.95", "resident"),
        # not counted: each for its own reason
        charge("x1", "2026-04-01T08:00:00+08:00", ident("FNXRMYY"), "99.00", "99.00", "employee", "not-billable"),
        charge("x2", "2026-04-01T08:00:00+08:00", ident("FNXRMYY"), "77.00", None, "employee"),
        charge("x3", "2026-04-01T08:00:00+08:00", ident("FNXRMYY"), "55.00", "50.00", None),
        charge("x4", "2026-04-01T08:00:00+08:00", ident("ELSEWHERE"), "44.00", "40.00", "employee"),
        charge("x5", "2025-12-31T23:30:00+08:00", ident("FNXRMYY"), "1000.00", "1000.00", "employee"),
        charge("x6", "2027-01-01T00:10:00+08:00", ident("FNXRMYY"), "1000.00", "1000.00", "employee"),
        {**charge("x7", "2026-05-01T08:00:00+08:00", ident("FNXRMYY"), "33.00", "30.00", "employee"),
         "priceOverride": {"value": 33, "currency": "USD"}},
        {k: v for k, v in charge("x8", "", ident("FNXRMYY"), "12.00", "10.00", "employee").items()
         if k != "occurrenceDateTime"},
    ]
    for line in lines:
        line = {k: v for k, v in line.items() if k != "id"}  # POST: the server names each line
        res = http.post("/fhir/ChargeItem", content=body(line), headers=auth)
        assert res.status_code == 201, res.text
    return engine, http


@pytest.fixture
def county(settings: Settings, site: Path) -> Any:
    engine, http = open_county(settings.with_(site=site))
    yield engine, http
    engine.close()


def insurer(engine: Any, scopes: str = INSURER, kind: str = "auditor") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("insurer-li", scopes, kind=kind)}


def check_figures(report: dict[str, Any]) -> None:
    assert report["year"] == 2026 and report["currency"] == "CNY"
    (region,) = report["regions"]
    (community,) = region["communities"]
    assert community["community"] == "funing"
    by_type = {s["insurance_type"]: s for s in community["settlements"]}
    emp, res = by_type["employee"], by_type["resident"]
    assert D(str(emp["spending"])) == D("1080.00") and emp["lines"] == 3
    assert D(str(emp["charged"])) == D("1500.00")
    assert [(s["step"], D(str(s["amount"]))) for s in emp["steps"]] == [
        ("budget", D("1000.00")), ("spending", D("1080.00")),
        ("prepayment-monthly", D("50.00")), ("prepayment-ceiling", D("600.00")), ("prepaid", D("600.00")),
        ("overspend", D("80.00")),
        ("overspend-tier", D("35.00")), ("overspend-tier", D("18.00")), ("overspend-tier", D("0.00")),
        ("fund-share-of-overspend", D("53.00")), ("community-bears", D("27.00")),
        ("fund-pays", D("1053.00")), ("year-end", D("453.00")),
    ]
    assert emp["direction"] == "fund-pays"
    assert [(s["step"], D(str(s["amount"]))) for s in res["steps"]][5:] == [
        ("surplus", D("300.00")),
        ("surplus-tier", D("160.00")), ("surplus-tier", D("60.00")), ("surplus-tier", D("0.00")),
        ("retained", D("220.00")), ("returned-to-fund", D("80.00")),
        ("fund-pays", D("1920.00")), ("year-end", D("720.00")),
    ]
    pc = community["primary_care"]
    assert D(str(pc["spending"])) == D("1700.00") and D(str(pc["of"])) == D("2780.00")
    assert D(str(pc["share"])) == D("0.6115") and pc["met"] is True
    assert D(str(community["totals"]["balance"])) == D("1173.00")
    assert report["charges"]["counted"] == 5
    excluded = {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}
    assert excluded == {"status": (1, D("99.00")), "no-fund-share": (1, D("77.00")),
                        "no-insurance-type": (1, D("55.00")), "unknown-institution": (1, D("44.00")),
                        "currency": (1, D("33")), "no-date": (1, D("12.00"))}


def test_api_and_cli_give_the_same_settlement(county: Any, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    engine, http = county
    res = http.get("/reports/settlement?year=2026", headers=insurer(engine))
    assert res.status_code == 200, res.text
    assert b'"amount":1080.00' in res.content  # money is written as exact decimals, to the fen
    api = res.json()
    check_figures(api)
    assert http.get("/reports/settlement?year=2026&community=funing", headers=insurer(engine)).json() == api

    settings = engine.settings
    engine.close()  # the CLI opens its own engine on the same data directory
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["settle", "2026", "--format", "json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    assert from_cli == api
    assert cli.main(["settle", "2026"]) == 0
    text = capsys.readouterr().out
    assert "the fund's share of the overspend" in text and "453.00" in text and "720.00" in text
    assert "spending at primary institutions: 61.15 % of 2780.00 (at least 16 %): met" in text


def test_every_storage_backend_settles_the_same(backend_settings: Settings, site: Path) -> None:
    engine, http = open_county(backend_settings.with_(site=site))
    try:
        res = http.get("/reports/settlement?year=2026", headers=insurer(engine))
        assert res.status_code == 200, res.text
        check_figures(res.json())
    finally:
        engine.close()


def test_access_is_the_duplicate_report_rule(county: Any) -> None:
    engine, http = county
    assert http.get("/reports/settlement?year=2026").status_code == 401
    assert http.get("/reports/settlement?year=2026",
                    headers=insurer(engine, "system/DetectedIssue.rs")).status_code == 403  # no ChargeItem search
    assert http.get("/reports/settlement?year=2026",
                    headers=insurer(engine, "system/ChargeItem.rs")).status_code == 403  # not an auditor scope
    assert http.get("/reports/settlement?year=2026", headers=insurer(engine, kind="system")).status_code == 200


def test_bad_requests_and_missing_rules(county: Any, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    engine, http = county
    res = http.get("/reports/settlement?year=2031", headers=insurer(engine))
    assert res.status_code == 404 and res.json()["resourceType"] == "OperationOutcome"
    assert http.get("/reports/settlement?year=2026&community=nowhere", headers=insurer(engine)).status_code == 404
    assert http.get("/reports/settlement?year=abc", headers=insurer(engine)).status_code == 400
    assert http.get("/reports/settlement", headers=insurer(engine)).status_code == 400
    # the site drops the required share: the API says which file and field, the CLI too
    (engine.settings.site / "insurance" / "settlement.yaml").write_text(
        RULES.replace("fund_pays: 0.70", "# nothing"), "utf-8")
    res = http.get("/reports/settlement?year=2026", headers=insurer(engine))
    assert res.status_code == 409
    assert "overspend[0].fund_pays" in res.json()["issue"][0]["diagnostics"]
    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["settle", "2026"]) == 1
    err = capsys.readouterr().err
    assert "settlement.yaml" in err and "regions.funing.years.2026.overspend[0].fund_pays" in err


def test_the_same_settlement_on_each_storage_backend_with_a_period_across_months(
        backend_settings: Settings, site: Path) -> None:
    """The year's lines are found by a date-bounded search on either store: the same figures, and a
    line whose occurrencePeriod spans two months (found in both months' searches) counts once."""
    engine, http = open_county(backend_settings.with_(site=site))
    try:
        check_figures(http.get("/reports/settlement?year=2026", headers=insurer(engine)).json())
        spanning = {k: v for k, v in charge("p1", "", ident("FNXRMYY"), "10.00", "10.00", "employee").items()
                    if k not in ("id", "occurrenceDateTime")}
        spanning["occurrencePeriod"] = {"start": "2026-07-30T09:00:00+08:00", "end": "2026-08-02T09:00:00+08:00"}
        auth = {"Authorization": "Bearer " + engine.auth.issue_system_token("his-b", "system/*.cruds"),
                "Content-Type": "application/fhir+json"}
        assert http.post("/fhir/ChargeItem", content=body(spanning), headers=auth).status_code == 201
        report = http.get("/reports/settlement?year=2026", headers=insurer(engine)).json()
        assert report["charges"]["counted"] == 6
        emp = next(s for s in report["regions"][0]["communities"][0]["settlements"] if s["insurance_type"] == "employee")
        assert D(str(emp["spending"])) == D("1090.00") and emp["lines"] == 4
    finally:
        engine.close()
