"""rv42c: a review of the forty-second round's merges (xofix42, http42, the lead's decimal bound and FT1-4 DR).

Real HL7 v2 through ``POST /hl7v2`` and real HTTP through FastAPI into the real store, on each backend
(``module_eng``: SQLite, mongomock), read back over ``/fhir``. Each defect shown is a STRICT xfail naming its
severity and what it shows; a passing probe is kept only where it guards something worth guarding."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_probepay26_windows import msh
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import T24, _ct, _old_exam, _reports
from tests.test_rv42a_probes import _by_order
from tests.test_srfix35_order_code import B, http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["http", "module_eng"]


def _dft(mrn: str, transaction: str, when: str, version: str = "2.5.1") -> str:
    """The HIS's charge line: DFT^P03, FT1-2 ``transaction`` (the line's own number, its key), FT1-4 ``when``,
    25.00 CNY of an intravenous injection (two at 12.50)."""
    head = msh(B, "HIS", "DFT^P03^DFT_P03", "20261201091500+0800")
    if version != "2.5.1":
        head = head.replace("|P|2.5.1|", f"|P|{version}|")
    return (head + "EVN|P03|20261201091500\n"
            f"PID|1||{mrn}^^^{B}^MR||赵^六||19700101|M\nPV1|1|I|内科病区^301^2\n"
            f"FT1|1|{transaction}||{when}|20261201091000|CG|250101^静脉注射^L|||2|25.00&CNY|12.50&CNY\n")


def _charge(http: TestClient, transaction: str) -> dict[str, Any]:
    """The one ChargeItem of FT1-2 ``transaction``."""
    found = http.get("/fhir/ChargeItem", params={"_count": 200}).json()
    lines = [e["resource"] for e in found.get("entry") or ()
             if any(i.get("value") == transaction for i in e["resource"].get("identifier") or ())]
    assert len(lines) == 1, lines
    return lines[0]


# --- the lead's 08a9eec2: FT1-4 as a DR ----------------------------------------------------------------------------


def test_a_charge_lines_start_alone_restated_keeps_the_range_stated_before(http: TestClient) -> None:
    assert "MSA|AA" in send(http, _dft("RV42C-FT1", "RV42C-T1", "20261201080000^20261201090000"))
    assert _charge(http, "RV42C-T1").get("occurrencePeriod") == {"start": "2026-12-01T08:00:00+08:00",
                                                                 "end": "2026-12-01T09:00:00+08:00"}
    ack = send(http, _dft("RV42C-FT1", "RV42C-T1", "20261201080000"))
    assert "MSA|AA" in ack, ack
    charge = _charge(http, "RV42C-T1")
    assert charge.get("occurrencePeriod") == {"start": "2026-12-01T08:00:00+08:00",
                                              "end": "2026-12-01T09:00:00+08:00"}, charge
    assert "occurrenceDateTime" not in charge, charge  # (R4 ChargeItem.occurrence[x]: one of the two)


def test_a_v23_transaction_date_with_its_precision_keeps_its_date(http: TestClient) -> None:
    ack = send(http, _dft("RV42C-FT3", "RV42C-T3", "20261201080000^S", version="2.3"))
    assert "MSA|AA" in ack, ack
    charge = _charge(http, "RV42C-T3")
    assert charge.get("occurrenceDateTime") == "2026-12-01T08:00:00+08:00", (charge, ack)


# --- xofix42: the precision rule, the report's period ----------------------------------------------------------------


def test_a_date_alone_restating_a_reports_period_keeps_the_period(http: TestClient) -> None:
    run = "RV42C-PER"
    acc = _old_exam(http, run)
    period = f"{T24}|20240312083000+0800"  # (OBR-7 | OBR-8: _ct's obr7 is followed by OBR-8's separator)
    ack = send(http, _ct(f"{run}1", acc, sent="20240312090000+0800", obr7=period, status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    [report] = _reports(http, acc)
    stated = {"start": "2024-03-12T08:00:00+08:00", "end": "2024-03-12T08:30:00+08:00"}
    assert report.get("effectivePeriod") == stated, report
    ack = send(http, _ct(f"{run}1", acc, sent="20240313090000+0800", obr7="20240312", status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    [report] = _reports(http, acc)
    assert report.get("effectivePeriod") == stated, report


# --- http42 / periods: a report's month and day at the calendar's edges -------------------------------------------


@pytest.mark.parametrize(("path", "params"), [
    ("/reports/indicators", {"month": "0000-01"}),
    ("/reports/deductions", {"month": "0000-01", "institution": "FNXRMYY"}),
    ("/reports/referrals", {"from": "0000-01"}),
    ("/reports/remote-reading", {"to": "0000-01"}),
    ("/reports/indicators", {"month": "0001-01"}),
    ("/reports/indicators", {"month": "9999-12"}),
    ("/reports/split-admissions", {"from": "9999-12-31", "to": "9999-12-31"}),
    ("/reports/split-admissions", {"from": "0001-01-01", "to": "0001-01-01"}),
    ("/fhir/Measure/huren-duplicate-test-money/$evaluate-measure",
     {"periodStart": "9999-12-31", "periodEnd": "9999-12-31"}),
    ("/fhir/Measure/huren-per-admission-cost/$evaluate-measure",
     {"periodStart": "0001-01-01", "periodEnd": "0001-01-01"}),
], ids=["indicators-0000", "deductions-0000", "referrals-0000", "remote-0000", "indicators-0001", "indicators-9999",
        "split-9999", "split-0001", "measure-money-9999", "measure-cost-0001"])
def test_a_report_period_at_the_calendars_edge_is_a_400_naming_it(module_eng: Engine, path: str,
                                                                  params: dict[str, str]) -> None:
    from engine.api.app import create_app

    auditor = {"Authorization": "Bearer " + module_eng.auth.issue_system_token("auditor-rv42c", "system/*.rs",
                                                                               kind="auditor")}
    with TestClient(create_app(module_eng), raise_server_exceptions=False) as client:
        r = client.get(path, params=params, headers=auditor)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    named = set(params) - {"institution"}
    assert r.json()["issue"][0].get("expression", [None])[0] in named, r.text[:300]




# --- xofix42: an exam time restated at another precision below the day ------------------------------------------


def _exam_at_seconds(http: TestClient, run: str) -> str:
    """2024: the HIS orders head CT ``<run>1``; the RIS reports it under ``<run>-ACC`` with OBR-7 to the second
    (08:00:37): 未见异常."""
    acc = f"{run}-ACC"
    ordered = _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000")
    assert "MSA|AA" in send(http, ordered)
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7="20240312080037+0800", status="F",
                                      text="未见异常"))
    return acc


MINUTE = "202403120800+0800"  # the 2024 exam's time, as a RIS module writing minutes states it


def test_a_resend_stating_the_exam_time_in_minutes_is_not_the_unread_newer_exams_report(http: TestClient) -> None:
    run = "RV42C-MINN"
    acc = _exam_at_seconds(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent="20261101090000+0800", obr7=MINUTE, status="F", text="未见异常"))
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}, ack


def test_a_resend_stating_the_exam_time_in_minutes_is_a_resend(http: TestClient) -> None:
    run = "RV42C-MIN1"
    acc = _exam_at_seconds(http, run)
    ack = send(http, _ct("", acc, sent="20261101090000+0800", obr7=MINUTE, status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    assert [r.get("effectiveDateTime") for r in _reports(http, acc)] == ["2024-03-12T08:00:37+08:00"], ack
