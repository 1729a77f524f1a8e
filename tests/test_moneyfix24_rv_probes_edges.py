"""rvmoney24: money24's local-day reading (``charges.local_date``) at the edges of what a FHIR
dateTime may say, over real HTTP (/fhir PUT, GET /reports/indicators, /reports/split-admissions,
/reports/settlement).

``local_date`` converts a time with an offset to the institution's zone with ``astimezone``, outside
its ``try``: a dateTime the store accepted whose conversion leaves datetime's range
(9999-12-31T20:00:00Z is year 10000 in Funing) raises OverflowError, which no caller catches. On the
base the day was read off the text (``when[:10]``). (The store itself answers 500 to a PUT whose
time leaves the range in UTC -- 9999-12-31T20:00:00-05:00 -- pre-existing, last test.)
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_insurance_indicators import INSURER, SECOND, figures, line, put, stay


def feed(engine: Engine) -> TestClient:
    http = TestClient(create_app(engine), raise_server_exceptions=False)
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    put(http, {"resourceType": "Patient", "id": "p1", "name": [{"text": "王五"}]})
    return http


def auditor(engine: Engine, http: TestClient) -> None:
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("insurer", INSURER, kind="auditor")


def measures(http: TestClient, month: str) -> dict[str, Any]:
    res = http.get("/reports/indicators", params={"month": month})
    assert res.status_code == 200, res.text
    return {e["resource"]["measure"]: e["resource"] for e in res.json()["entry"]
            if e["resource"]["resourceType"] == "MeasureReport"}


def test_indicators_survive_a_discharge_written_at_the_end_of_time(engine: Engine) -> None:
    """FINDING (MED: a 500 the change introduced). A stay at FNZYY admitted in March whose end a client
    wrote as 9999-12-31T20:00:00Z (a "not yet known" placeholder): the Encounter search (``date ge``
    the day before March) finds it, ``local_date`` overflows, /reports/indicators answers 500 for the
    whole county. Expected: that stay is simply not discharged in March; the March line counts."""
    http = feed(engine)
    put(http, stay("s9", SECOND, "2026-03-09T09:00:00+08:00", "9999-12-31T20:00:00Z"))
    put(http, line("c9", SECOND, "2026-03-10T10:00:00+08:00", "100.00"))
    auditor(engine, http)
    march = measures(http, "2026-03")
    assert figures(march["urn:huren:Measure/huren-spending-growth"]["group"][0])[0] == D("100.00")
    assert figures(march["urn:huren:Measure/huren-per-admission-cost"]["group"][0]) == (D("0"), D("0"))


def test_indicators_survive_a_charge_line_at_the_end_of_time_on_a_stay(engine: Engine) -> None:
    """FINDING (MED: a 500 the change introduced). A stay discharged in March carries a line whose time a
    HIS wrote as 9999-12-31T20:00:00Z (a placeholder): the per-admission cost reads every line
    of the stay (``charges_of_visits``, whatever its date) through ``read_line`` -> ``local_date`` ->
    OverflowError -> 500. Expected: 200, the stay's cost counted (the base counted both lines: 1100.00)."""
    http = feed(engine)
    put(http, stay("s1", SECOND, "2026-03-09T09:00:00+08:00", "2026-03-20T09:00:00+08:00"))
    put(http, line("c1", SECOND, "2026-03-10T10:00:00+08:00", "1000.00", stay="s1"))
    put(http, line("c0", SECOND, "9999-12-31T20:00:00Z", "100.00", stay="s1"))
    auditor(engine, http)
    march = measures(http, "2026-03")
    cost = figures(march["urn:huren:Measure/huren-per-admission-cost"]["group"][0])
    assert cost[1] == D("1") and cost[0] in (D("1000.00"), D("1100.00"))


def test_split_admissions_survive_a_stay_ending_at_the_end_of_time(engine: Engine) -> None:
    """FINDING (MED: a 500 the change introduced). An inpatient Encounter admitted in March whose end a
    client wrote as 9999-12-31T20:00:00Z: the search for admissions overlapping the period finds it,
    ``_day`` -> ``local_date`` overflows, /reports/split-admissions answers 500. Expected: 200."""
    http = feed(engine)
    put(http, stay("s0", SECOND, "2026-03-02T08:00:00+08:00", "9999-12-31T20:00:00Z"))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token(
        "auditor-wang", "system/DetectedIssue.rs system/Encounter.rs", kind="auditor")
    res = http.get("/reports/split-admissions?from=2026-03-01&to=2026-03-31")
    assert res.status_code == 200, res.text
    assert res.json()["pairs"] == []


def test_a_time_without_offset_is_the_hospitals_own(engine: Engine) -> None:
    """GUARD. (The store refuses a FHIR time without an offset, 422.) A date alone is read as written:
    a line of 2026-03-31 and a discharge on 2026-03-31 are March's; a line at 2026-02-28T16:30:00Z is
    March's (00:30 on 03-01 in Funing), found through the search's one-day margin."""
    http = feed(engine)
    put(http, stay("s1", SECOND, "2026-03-09", "2026-03-31"))
    put(http, line("c1", SECOND, "2026-03-31", "300.00", stay="s1"))
    put(http, line("c2", SECOND, "2026-02-28T16:30:00Z", "20.00"))
    auditor(engine, http)
    march, feb = measures(http, "2026-03"), measures(http, "2026-02")
    growth, cost = "urn:huren:Measure/huren-spending-growth", "urn:huren:Measure/huren-per-admission-cost"
    assert figures(march[growth]["group"][0])[0] == D("320.00")
    assert figures(march[cost]["group"][0]) == (D("300.00"), D("1"))
    assert figures(feb[growth]["group"][0])[0] == D("0")


def test_the_store_does_not_answer_500_to_a_time_beyond_utc_range(engine: Engine) -> None:
    """FINDING (MED, pre-existing, not money24's: the repository's write path). PUT an Encounter whose end
    is 9999-12-31T20:00:00-05:00 (a valid FHIR dateTime; 10000-01-01T01:00Z in UTC): 500. Expected: the
    store keeps it or refuses it with an OperationOutcome (4xx)."""
    http = feed(engine)
    r = http.put("/fhir/Encounter/s5", json=stay("s5", SECOND, "2026-03-09T09:00:00+08:00", "9999-12-31T20:00:00-05:00"))
    assert r.status_code < 500, r.text
