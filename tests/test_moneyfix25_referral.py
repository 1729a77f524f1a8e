"""moneyfix25: a referral's deductible is counted in the month its patient arrived.

The township (一级, 200.00) refers a resident up to the county (三级, 800.00) last month; the county
accepts; the patient arrives now. The admission is this month's: this month's report shows its 600.00
and last month's, reported when it closed, stays 0.00 (money25 counted the deductible in the written
month, rewriting a month already reported, and never in the month of the admission). Real HTTP through
the app: the Bundle POSTed by the township, the Task walked by the county with PUT /fhir/Task, the
report read at GET /reports/referrals.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_money24_referral_report import patient
from tests.test_moneyfix25_rv_referral import _walk
from tests.test_referral_e2e import (
    COUNTY,
    TOWN,
    WANG,
    arrival_month,
    bearer,
    created,
    engine,
    referral_bundle,
)

__all__ = ["engine"]


def _last_month(month: str | None = None) -> str:
    """The month before ``month`` (default: this one; the referral is written then, whatever today is)."""
    first = date.fromisoformat((month or arrival_month()) + "-01")
    return (first - timedelta(days=1)).isoformat()[:7]


def _report(http: TestClient, engine: Engine, start: str, end: str, **params: str) -> dict:
    auditor = bearer(engine, "insurer", "system/DetectedIssue.rs", kind="auditor")
    r = http.get("/reports/referrals", params={"from": start, "to": end, **params}, headers=auditor)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _arrived_last_month_written(engine: Engine) -> tuple[TestClient, str, str]:
    """A referral written the month before the arrival's; (client, Task id, the arrival's month taken at
    the move -- moneyfix25b: not at assert time, a month's end between them read the next month)."""
    http = TestClient(create_app(engine))
    town, county = bearer(engine, "his-town"), bearer(engine, "his-county")
    pid = patient(http, town, WANG, "YL100")
    written = _last_month()
    task = created(http.post("/fhir", json=referral_bundle(f"Patient/{pid}", TOWN, COUNTY, "胸痛",
                                                           written + "-20"), headers=town), "Task")
    arrived = _walk(http, county, task, ("accepted", "accepted"), ("arrived", "in-progress"))
    if _last_month(arrived) != written:
        pytest.skip(f"the month turned during the test (written {written}, arrived {arrived})")
    return http, task, arrived


def test_the_month_of_the_arrival_shows_the_deductible_of_a_referral_written_before(engine: Engine) -> None:
    """This month's row of the county carries the 600.00; it received no referral this month (the
    counts are last month's), and the month's referral count is 0."""
    http, _, now = _arrived_last_month_written(engine)
    report = _report(http, engine, now, now)
    rows = {(r["institution"], r["month"]): r for r in report["rows"]}
    assert set(rows) == {(COUNTY, now)}, rows
    row = rows[(COUNTY, now)]
    assert row["deductible_due"] == "600.00"
    assert (row["received"]["total"], row["accepted"], report["referrals"]) == (0, 0, 0)
    last = {r["institution"]: r for r in _report(http, engine, _last_month(now), _last_month(now))["rows"]}
    assert (last[COUNTY]["received"]["upward"], last[COUNTY]["deductible_due"]) == (1, "0.00")


def test_a_report_over_both_months_counts_it_once_in_the_arrivals_month(engine: Engine) -> None:
    """Guard: last month and this one together: one referral, 600.00 once, in this month's row."""
    http, _, now = _arrived_last_month_written(engine)
    last = _last_month(now)
    report = _report(http, engine, last, now)
    dues = {(r["institution"], r["month"]): r["deductible_due"] for r in report["rows"]}
    assert dues == {(TOWN, last): "0.00", (COUNTY, last): "0.00", (COUNTY, now): "600.00"}
    assert report["referrals"] == 1


def test_the_arrival_is_the_receiving_institutions_alone(engine: Engine) -> None:
    """Guard: asked for the township this month, nothing (it sent the referral last month and pays no
    admission); asked for the county, the 600.00; completing the stay later moves nothing."""
    http, task, now = _arrived_last_month_written(engine)
    assert _report(http, engine, now, now, institution=TOWN)["rows"] == []
    (row,) = _report(http, engine, now, now, institution=COUNTY)["rows"]
    assert row["deductible_due"] == "600.00"
    _walk(http, bearer(engine, "his-county"), task, ("completed", "completed"))
    (row,) = _report(http, engine, now, now, institution=COUNTY)["rows"]
    assert row["deductible_due"] == "600.00"


def test_a_row_kept_before_the_arrivals_month_counts_in_its_written_month(engine: Engine) -> None:
    """Guard of a store written before moneyfix25: a row with no ``admitted`` month (the arrival's month
    was not kept then) is counted as it was, in the month the referral was written."""
    http, _, now = _arrived_last_month_written(engine)
    (row,) = engine.referrals.rows.find({"to": COUNTY})
    engine.referrals.rows.replace({k: v for k, v in row.items() if k != "admitted"})
    last = {r["institution"]: r for r in _report(http, engine, _last_month(now), _last_month(now))["rows"]}
    assert last[COUNTY]["deductible_due"] == "600.00"
    assert _report(http, engine, now, now)["rows"] == []
