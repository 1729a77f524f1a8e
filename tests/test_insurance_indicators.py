"""A month of the demo community (阜宁县医共体) over HL7 and FHIR gives the insurer's indicators as
MeasureReports with figures worked out by hand.

March 2026. The county hospital (FNXRMYY, 三级) admits 张三 over HL7 (ADT^A03, 2 – 6 March) and
bills the stay in a DFT^P03: 3000.00 + 1500.50, no fund share stated. A second stay there (20 March
– 2 April, FHIR) bills 800.00, of which the fund pays 600.00. The township centre (FNYLWSY, 一级)
admits and discharges a resident (10 – 12 March) for 600.00, fund 540.00. The 二级 hospital (FNZYY)
bills an outpatient 200.00 (no fund share) and repeats a blood count the township did two days
before (a duplicate-test flag, 20.00 at stake). A year before, March 2025: FNXRMYY 4000.00, FNYLWSY
500.00. Referrals: the township refers one up to the county (5 March), FNZYY one up (12 March),
the county one down (8 March) and one out of the county to 南京鼓楼医院 (9 March); a second one out
of the county (25 March) is cancelled and counts for nothing.

By hand:
- per-admission cost (discharged in March): FNXRMYY 4500.50 / 1, FNYLWSY 600.00 / 1; community
  5100.50 / 2 = 2550.25 (the April discharge is not March's);
- out-of-pocket share (lines stating a fund share): FNXRMYY 200.00 / 800.00 = 0.2500, FNYLWSY
  60.00 / 600.00 = 0.1000; community 260.00 / 1400.00 = 0.1857;
- spending growth: 6100.50 / 4500.00 − 1 = 0.3557; FNXRMYY 5300.50 / 4000.00 − 1 = 0.3251;
  FNYLWSY 0.2000; FNZYY no baseline, no score;
- county treatment rate: 2 admissions inside ÷ (2 + 1 referral out) = 0.6667; FNXRMYY 1 / 2;
- out-of-county referrals: 1 (FNXRMYY);
- two-way ratio: 1 downward sent ÷ 2 upward received = 0.5000 (all at FNXRMYY);
- duplicate tests: 1 at FNZYY, 20.00 at stake.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import cli
from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.alerts import FLAG_DETAIL
from engine.insurance.charges import FUND_SHARE_EXT, INSURANCE_TYPE_EXT
from engine.measures import FIGURES_EXT
from tests.test_convert_families import PID, message, msh, post
from tests.test_recognition_world import ALICE, A, B, C, World, cbc
from tests.test_referral_e2e import referral_bundle

COUNTY, SECOND, TOWN = A, B, C
ROOT = Path(__file__).resolve().parents[1]
PV1_STAY = ("PV1|1|I|内科^201^1^FNXRMYY||||D001^李^医生||||||||||||V-E1|||||||||||||||||||||||||"
            "20260302080000|20260306100000")
INSURER = "system/DetectedIssue.rs system/ChargeItem.rs system/Encounter.rs"


def org(code: str) -> dict[str, Any]:
    return {"identifier": {"system": "urn:huren:institution", "value": code}}


def line(cid: str, inst: str, day: str, amount: str, fund: str | None = None, stay: str | None = None,
         status: str = "billable") -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "ChargeItem", "id": cid, "status": status,
                           "code": {"text": "诊疗"}, "subject": {"reference": "Patient/p1"},
                           "occurrenceDateTime": day, "performingOrganization": org(inst),
                           "priceOverride": {"value": float(amount), "currency": "CNY"},
                           "extension": [{"url": INSURANCE_TYPE_EXT, "valueCode": "resident"}]}
    if fund is not None:
        res["extension"].append({"url": FUND_SHARE_EXT, "valueMoney": {"value": float(fund), "currency": "CNY"}})
    if stay:
        res["context"] = {"reference": f"Encounter/{stay}"}
    return res


def stay(eid: str, inst: str, start: str, end: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"}, "period": {"start": start, "end": end},
            "serviceProvider": org(inst)}


def put(http: TestClient, resource: dict[str, Any]) -> None:
    r = http.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text


def refer(http: TestClient, sending: str, receiving: str, day: str, cancel: bool = False) -> None:
    bundle = referral_bundle("Patient/p1", sending, receiving, "转诊", day)
    if cancel:
        task = bundle["entry"][1]["resource"]
        task["status"] = "cancelled"
        task["businessStatus"]["coding"][0]["code"] = "cancelled"
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text


@pytest.fixture
def march(engine: Engine) -> TestClient:
    return fill_march(engine)


def fill_march(engine: Engine) -> TestClient:
    """The month of the module notes, stored through the real paths; returns an auditor's client."""
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    put(http, {"resourceType": "Patient", "id": "p1", "name": [{"text": "王五"}]})
    # HL7: the county's first stay and its bill
    assert post(http, message(msh("ADT^A03^ADT_A03", "A1"), "EVN|A03|20260306100000", PID, PV1_STAY)) == "AA"
    assert post(http, message(msh("DFT^P03^DFT_P03", "D1"), "EVN|P03|20260306", PID, PV1_STAY,
                              "FT1|1|T-1||20260303100000||CG|SURG-01^阑尾切除术^L||1|1||3000.00&CNY",
                              "FT1|2|T-2||20260304100000||CG|DRUG-7^头孢曲松^L||1|1||1500.50&CNY")) == "AA"
    # FHIR: the second county stay (discharged in April), the township stay, an outpatient line
    put(http, stay("e2", COUNTY, "2026-03-20T09:00:00+08:00", "2026-04-02T10:00:00+08:00"))
    put(http, stay("e3", TOWN, "2026-03-10T09:00:00+08:00", "2026-03-12T10:00:00+08:00"))
    for res in (line("c-e2", COUNTY, "2026-03-21T10:00:00+08:00", "800.00", "600.00", "e2"),
                line("c-e3", TOWN, "2026-03-11T10:00:00+08:00", "600.00", "540.00", "e3"),
                line("c-out", SECOND, "2026-03-15T10:00:00+08:00", "200.00"),
                line("c-void", COUNTY, "2026-03-15T10:00:00+08:00", "999.00", "0", status="not-billable"),
                line("c-2025a", COUNTY, "2025-03-10T10:00:00+08:00", "4000.00"),
                line("c-2025b", TOWN, "2025-03-11T10:00:00+08:00", "500.00"),
                line("c-feb", COUNTY, "2026-02-27T10:00:00+08:00", "7000.00")):
        put(http, res)
    refer(http, TOWN, COUNTY, "2026-03-05")
    refer(http, COUNTY, TOWN, "2026-03-08")
    refer(http, COUNTY, "NJGLYY", "2026-03-09")
    refer(http, SECOND, COUNTY, "2026-03-12")
    refer(http, TOWN, "SZDYYY", "2026-03-25", cancel=True)
    # a repeated blood count at FNZYY two days after the township's
    w = World(engine)
    pc, pb = w.patient(TOWN, ALICE), w.patient(SECOND, ALICE, mrn="B-1")
    w.report(TOWN, pc, cbc(TOWN), "2026-03-01T09:00:00+08:00")
    w.report(SECOND, pb, cbc(SECOND), "2026-03-03T09:00:00+08:00")
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("insurer", INSURER, kind="auditor")
    return http


def score(group: dict[str, Any]) -> D | None:
    value = (group.get("measureScore") or {}).get("value")
    return None if value is None else D(str(value))


def figures(group: dict[str, Any]) -> tuple[D, D]:
    ext = next(e for e in group["extension"] if e["url"] == FIGURES_EXT)["extension"]
    return D(str(ext[0]["valueDecimal"])), D(str(ext[1]["valueDecimal"]))


def by(report: dict[str, Any], stratifier: str) -> dict[str, dict[str, Any]]:
    [s] = [s for s in report["group"][0]["stratifier"] if s["code"][0]["text"] == stratifier]
    return {st["value"]["text"]: st for st in s["stratum"]}


def test_a_month_of_the_community_gives_the_indicators_worked_by_hand(march: TestClient) -> None:
    check_worked_example(march)


def test_the_same_month_on_each_storage_backend(backend_settings: Any) -> None:
    with Engine(backend_settings) as engine:
        check_worked_example(fill_march(engine))


def check_worked_example(march: TestClient) -> None:
    res = march.get("/reports/indicators", params={"month": "2026-03"})
    assert res.status_code == 200, res.text
    bundle = res.json()
    reports = {e["resource"]["measure"]: e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "MeasureReport"}
    from fhir.resources.R4B.measurereport import MeasureReport

    for mr in reports.values():
        MeasureReport.model_validate(mr)
        assert mr["reporter"]["identifier"] == {"system": "urn:huren:community", "value": "funing"}
        assert mr["period"] == {"start": "2026-03-01", "end": "2026-03-31"}

    cost = reports["urn:huren:Measure/huren-per-admission-cost"]
    group = cost["group"][0]
    assert figures(group) == (D("5100.50"), D("2")) and score(group) == D("2550.25")
    assert group["measureScore"]["code"] == "CNY"
    assert {k: score(v) for k, v in by(cost, "institution").items()} == {COUNTY: D("4500.50"), TOWN: D("600.00")}
    pops = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    assert pops == {"measure-population": 2, "measure-observation": 3}

    oop = reports["urn:huren:Measure/huren-out-of-pocket-share"]
    assert figures(oop["group"][0]) == (D("260.00"), D("1400.00")) and score(oop["group"][0]) == D("0.1857")
    assert {k: score(v) for k, v in by(oop, "institution").items()} == {COUNTY: D("0.2500"), TOWN: D("0.1000")}

    growth = reports["urn:huren:Measure/huren-spending-growth"]
    assert figures(growth["group"][0]) == (D("6100.50"), D("4500.00")) and score(growth["group"][0]) == D("0.3557")
    assert {k: score(v) for k, v in by(growth, "institution").items()} == {
        COUNTY: D("0.3251"), TOWN: D("0.2000"), SECOND: None}

    county = reports["urn:huren:Measure/huren-county-treatment-rate"]
    assert figures(county["group"][0]) == (D("2"), D("3")) and score(county["group"][0]) == D("0.6667")
    assert {k: score(v) for k, v in by(county, "institution").items()} == {COUNTY: D("0.5000"), TOWN: D("1.0000")}

    out = reports["urn:huren:Measure/huren-out-of-county-referrals"]
    assert score(out["group"][0]) == D("1") and set(by(out, "institution")) == {COUNTY}

    two_way = reports["urn:huren:Measure/huren-two-way-referral-ratio"]
    assert figures(two_way["group"][0]) == (D("1"), D("2")) and score(two_way["group"][0]) == D("0.5000")

    dup_n = reports["urn:huren:Measure/huren-duplicate-test-count"]
    dup_money = reports["urn:huren:Measure/huren-duplicate-test-money"]
    assert score(dup_n["group"][0]) == D("1") and score(dup_money["group"][0]) == D("20.00")
    # a count states its numerator and no denominator (not a denominator of 0)
    for count in (dup_n, dup_money, out):
        parts = next(e for e in count["group"][0]["extension"] if e["url"] == FIGURES_EXT)["extension"]
        assert [p["url"] for p in parts if "valueDecimal" in p] == ["numerator"]
        # an amount says what it adds up (measures.yaml numerator_unit, evid35); a count says nothing
        assert [p["valueCoding"]["code"] for p in parts if p["url"] == "numeratorUnit"] == (["CNY"] if count is dup_money else [])
    assert set(by(dup_money, "institution")) == {SECOND}
    assert set(by(cost, "month")) == {"2026-03"}


def test_evaluate_measure_for_one_institution_and_the_measures_are_published(march: TestClient, engine: Engine) -> None:
    measure = engine.repository.read("Measure", "huren-per-admission-cost")
    assert measure["scoring"]["coding"][0]["code"] == "continuous-variable"
    res = march.get("/fhir/Measure/huren-per-admission-cost/$evaluate-measure",
                    params={"periodStart": "2026-03-01", "periodEnd": "2026-03-31", "reporter": COUNTY})
    assert res.status_code == 200, res.text
    mr = res.json()
    assert mr["reporter"]["identifier"]["value"] == COUNTY and score(mr["group"][0]) == D("4500.50")
    # two months: the April discharge counts in April
    res = march.get("/fhir/Measure/huren-per-admission-cost/$evaluate-measure",
                    params={"periodStart": "2026-03-01", "periodEnd": "2026-04-30", "subject": "funing"})
    months = by(res.json(), "month")
    assert score(months["2026-04"]) == D("800.00") and score(months["2026-03"]) == D("2550.25")
    # a period is required; an unknown measure is a 404
    assert march.get("/fhir/Measure/huren-per-admission-cost/$evaluate-measure").status_code == 400
    assert march.get("/fhir/Measure/nope/$evaluate-measure").status_code == 404
    # bad requests are OperationOutcomes with a 4xx, never a 500
    for params in ({"month": "2026-13"}, {"month": "march"}, {"month": "2026-03", "community": "nowhere"},
                   {"month": "2026-03", "institution": "NOWHERE"}):
        r = march.get("/reports/indicators", params=params)
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (params, r.text)
    assert march.get("/reports/indicators").status_code == 400
    r = march.get("/fhir/Measure/huren-per-admission-cost/$evaluate-measure",
                  params={"periodStart": "2026-03-31", "periodEnd": "2026-03-01"})
    assert r.status_code == 400 and "ends before it starts" in r.text
    # a system client without ChargeItem rights may not see the figures
    other = {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr", "system/DetectedIssue.rs", kind="auditor")}
    assert march.get("/fhir/Measure/huren-per-admission-cost/$evaluate-measure", headers=other,
                     params={"periodStart": "2026-03-01", "periodEnd": "2026-03-31"}).status_code == 403


def active_alerts(bundle: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["code"]["coding"][0]["code"], f["subject"]["identifier"]["value"]): f
            for f in (e["resource"] for e in bundle["entry"]) if f["resourceType"] == "Flag"}


def test_thresholds_crossed_raise_flags_that_a_publish_stores_and_a_later_one_retires(
        march: TestClient, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shipped thresholds: spending growth above 10 % (community, and each institution) and the
    county treatment rate below 90 % (community only) are crossed in March; nothing else is."""
    bundle = march.get("/reports/indicators", params={"month": "2026-03"}).json()
    flags = active_alerts(bundle)
    assert set(flags) == {("huren-spending-growth-above", "funing"), ("huren-spending-growth-above", COUNTY),
                          ("huren-spending-growth-above", TOWN), ("huren-county-treatment-rate-below", "funing")}
    from fhir.resources.R4B.flag import Flag

    county = flags[("huren-county-treatment-rate-below", "funing")]
    Flag.model_validate(county)
    assert county["status"] == "active" and county["period"] == {"start": "2026-03-01", "end": "2026-03-31"}
    detail = next(e for e in county["extension"] if e["url"] == FLAG_DETAIL)["valueReference"]["reference"]
    report = next(e["resource"] for e in bundle["entry"] if f"MeasureReport/{e['resource']['id']}" == detail)
    assert report["measure"] == "urn:huren:Measure/huren-county-treatment-rate"
    assert "县域内就诊率低于 90%" in county["code"]["text"]

    # published: the reports and the four alerts are stored and searchable as FHIR
    monkeypatch.setenv("HUREN_DATA_DIR", str(engine.settings.data_dir))
    assert cli.main(["indicators", "2026-03", "--publish"]) == 0
    assert "published 8 MeasureReports, 4 active alerts" in capsys.readouterr().err
    stored = engine.repository.read("Flag", county["id"])
    assert stored["status"] == "active"
    # the bureau raises the growth threshold to 50 %: re-publishing retires the three growth alerts
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    (site / "insurance" / "thresholds.yaml").write_text(
        (ROOT / "mappings/insurance/thresholds.yaml").read_text("utf-8").replace('above: "0.10"', 'above: "0.50"'), "utf-8")
    monkeypatch.setenv("HUREN_SITE", str(site))
    assert cli.main(["indicators", "2026-03", "--publish"]) == 0
    assert "1 active alerts" in capsys.readouterr().err
    growth = flags[("huren-spending-growth-above", COUNTY)]
    with Engine(engine.settings) as fresh:  # what the other process stored
        assert fresh.repository.read("Flag", growth["id"])["status"] == "inactive"
        assert fresh.repository.read("Flag", county["id"])["status"] == "active"


def test_a_threshold_on_an_unknown_measure_names_file_and_line(settings: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    (site / "insurance" / "thresholds.yaml").write_text(
        "thresholds:\n  - measure: huren-nope\n    above: 1\n    level: warning\n    text: {zh: 无, en: none}\n", "utf-8")
    from engine.insurance.alerts import load as load_thresholds
    from engine.measures import load as load_measures
    from mappings.sitefiles import SiteError

    with pytest.raises(SiteError, match=r"thresholds.yaml:2: .*no Measure 'huren-nope'"):
        load_thresholds(site, load_measures(site))


def test_an_admission_counts_its_lines_from_months_before_and_reading_stays_in_the_period(engine: Engine) -> None:
    """A stay admitted in January and discharged in March costs all its lines in March's
    per-admission figure (January's line too), while March's spending counts only March's line.
    The indicators read what the month and its baseline hold, not the whole store: lines of other
    years and stays discharged before the period are never fetched."""
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    put(http, {"resourceType": "Patient", "id": "p1", "name": [{"text": "王五"}]})
    put(http, stay("long", SECOND, "2026-01-20T09:00:00+08:00", "2026-03-05T10:00:00+08:00"))
    put(http, stay("old", SECOND, "2024-05-01T09:00:00+08:00", "2024-05-03T10:00:00+08:00"))
    for res in (line("c-jan", SECOND, "2026-01-21T10:00:00+08:00", "1000.00", stay="long"),
                line("c-mar", SECOND, "2026-03-01T10:00:00+08:00", "500.00", stay="long"),
                line("c-old", SECOND, "2024-05-02T10:00:00+08:00", "9999.00", stay="old"),
                line("c-2023", SECOND, "2023-03-10T10:00:00+08:00", "7777.00")):
        put(http, res)
    fetched: list[str] = []
    search = engine.repository.search

    def recording_search(rtype: Any, params: Any, **kw: Any) -> Any:
        page = search(rtype, params, **kw)
        fetched.extend(f"{r['resourceType']}/{r['id']}" for r in page.resources)
        return page

    engine.repository.search = recording_search  # type: ignore[method-assign]
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("insurer", INSURER, kind="auditor")
    res = http.get("/reports/indicators", params={"month": "2026-03"})
    assert res.status_code == 200, res.text
    reports = {e["resource"]["measure"]: e["resource"] for e in res.json()["entry"]
               if e["resource"]["resourceType"] == "MeasureReport"}
    cost = reports["urn:huren:Measure/huren-per-admission-cost"]
    assert figures(cost["group"][0]) == (D("1500.00"), D("1"))
    growth = reports["urn:huren:Measure/huren-spending-growth"]
    assert figures(growth["group"][0])[0] == D("500.00")
    assert "ChargeItem/c-jan" in fetched and "ChargeItem/c-mar" in fetched
    assert not {"ChargeItem/c-old", "ChargeItem/c-2023", "Encounter/old"} & set(fetched), fetched
