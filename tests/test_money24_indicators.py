"""money24: the month an indicator counts a charge line or a discharge in is the hospital's
(+08:00), whatever zone a client wrote the time in.

Over real HTTP: a stay at FNZYY discharged at 2026-03-31T17:00:00Z (2026-04-01 01:00 in Funing) with a
line of 2026-03-10 (¥1000.00), and a line written at 2026-03-31T16:30:00Z (2026-04-01 00:30 there,
¥200.00). March: spending ¥1000.00 and no admission discharged; April: spending ¥200.00 and one
admission costing ¥1200.00. (They were counted in March: the month was read off the UTC text.)
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_insurance_indicators import INSURER, SECOND, figures, line, put, stay


def reports(http: TestClient, month: str) -> dict[str, Any]:
    res = http.get("/reports/indicators", params={"month": month})
    assert res.status_code == 200, res.text
    return {e["resource"]["measure"]: e["resource"] for e in res.json()["entry"]
            if e["resource"]["resourceType"] == "MeasureReport"}


def test_lines_and_discharges_count_in_the_local_month(engine: Engine) -> None:
    http = TestClient(create_app(engine))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", "system/*.cruds")
    put(http, {"resourceType": "Patient", "id": "p1", "name": [{"text": "王五"}]})
    put(http, stay("s1", SECOND, "2026-03-09T09:00:00+08:00", "2026-03-31T17:00:00Z"))
    put(http, line("c1", SECOND, "2026-03-10T10:00:00+08:00", "1000.00", stay="s1"))
    put(http, line("c2", SECOND, "2026-03-31T16:30:00Z", "200.00", stay="s1"))
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("insurer", INSURER, kind="auditor")

    march, april = reports(http, "2026-03"), reports(http, "2026-04")
    cost = "urn:huren:Measure/huren-per-admission-cost"
    growth = "urn:huren:Measure/huren-spending-growth"
    assert figures(march[growth]["group"][0])[0] == D("1000.00")
    assert figures(march[cost]["group"][0]) == (D("0"), D("0"))
    assert figures(april[growth]["group"][0])[0] == D("200.00")
    assert figures(april[cost]["group"][0]) == (D("1200.00"), D("1"))
