"""money25: a charge line takes the insurance type of the Coverage in force on its day.

A resident insured as 城乡居民 (IN1-15 ``390``, resident) until 2026-06-30 becomes an employee (职工,
``310``) from 2026-07-01: the account's BAR^P01 carries both IN1 segments with their periods (IN1-12/13
→ ``Coverage.period``). A line of March is the resident fund's, a line of September the employee
fund's. Before, the line's type was read from the account's first Coverage whatever its period: both
lines were settled as resident. A line on a day no Coverage covers has no insurance type (listed, not
counted), never the type of a Coverage that had ended.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from engine.settings import Settings
from tests.test_convert_families import PID, PV1, message, msh
from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import BILLING, amount_site, by_type, settlement

ACCOUNT = PID.replace("|13800000000", "|13800000000|||||ACC-91^^^FNXRMYY^AN")


def test_the_line_takes_the_coverage_of_its_day(settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine

    folder = amount_site(tmp_path)
    with Engine(settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", BILLING)
        bar = message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                      "IN1|1|CN-RURAL^城乡居民医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20250101|20260630||"
                      "390^城乡居民基本医疗保险^CNYBXZ",
                      "IN1|2|CN-URBAN^城镇职工医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20260701|20271231||"
                      "310^职工基本医疗保险^CNYBXZ")
        dft = message(msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20260915", ACCOUNT, PV1,
                      "FT1|1|T-8001||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                      "FT1|2|T-8002||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY",
                      # the last day of the resident cover and the first of the employee one
                      "FT1|3|T-8003||20260630230000||CG|DRUG-7^头孢曲松^L||1|1||7.00&CNY",
                      "FT1|4|T-8004||20260701000500||CG|DRUG-7^头孢曲松^L||1|1||5.00&CNY")
        assert post_hl7(http, bar) == "AA" and post_hl7(http, dft) == "AA"
        report = settlement(engine, http, 2026)
        types = by_type(report)
        assert (types["resident"]["lines"], D(str(types["resident"]["spending"]))) == (2, D("307.00"))
        assert (types["employee"]["lines"], D(str(types["employee"]["spending"]))) == (2, D("45.00"))
        assert report["charges"]["counted"] == 4


def test_a_day_no_coverage_covers_has_no_type(settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.engine import Engine

    folder = amount_site(tmp_path)
    with Engine(settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", BILLING)
        bar = message(msh("BAR^P01^BAR_P01", "S1"), "EVN|P01|20260101", ACCOUNT, PV1,
                      "IN1|1|CN-RURAL^城乡居民医保|YB001^^^FNYB|阜宁县医疗保障局||||||||20250101|20260331||"
                      "390^城乡居民基本医疗保险^CNYBXZ")
        dft = message(msh("DFT^P03^DFT_P03", "S2"), "EVN|P03|20260915", ACCOUNT, PV1,
                      "FT1|1|T-8101||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                      "FT1|2|T-8102||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")
        assert post_hl7(http, bar) == "AA" and post_hl7(http, dft) == "AA"
        report = settlement(engine, http, 2026)
        resident = by_type(report)["resident"]
        assert (resident["lines"], D(str(resident["spending"]))) == (1, D("300.00"))
        excluded = {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}
        assert excluded == {"no-insurance-type": (1, D("40.00"))}
