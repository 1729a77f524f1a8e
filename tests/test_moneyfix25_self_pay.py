"""moneyfix25: the deduction list's summary of the flags a reader is not shown deducts as its lines do.

An auditor not shown records labelled R reads the county hospital's March deduction list (CSV). Six
residents repeated a CBC at B two days after A's, each ordered with R07 (the patient asked: allowed,
self-pay), each line billed 20.00 of which the fund paid 12.00 (``fund-share``), each flag upheld. Five
of the prior results at A are labelled R: those five flags are not listed to the auditor, the list says
how many were left out and their amount. A listed self-pay line deducts the fund's 12.00 (money25); the
summary said 100.00 for the five (recognition's money at stake, the whole billed lines) where they
deduct 60.00 -- the two figures of one list disagreed (review of money25). Real HTTP through the app:
results and orders PUT by the hospitals' system, the flags by the real recognition hook, the review
POSTed, the list read at GET /reports/deductions.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal as D
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_labels19_flag_label import HttpWorld
from tests.test_labels20_report_flags import _auditor
from tests.test_money25_self_pay_fund_share import _line
from tests.test_recognition_world import A, B, cbc, national_id


def _county(engine: Any, http: TestClient, labelled: int, unlabelled: int) -> dict[str, str]:
    system = {"Authorization": f"Bearer {engine.auth.issue_system_token('his', 'system/*.cruds')}"}
    w = HttpWorld(engine, http, system)
    for i in range(labelled + unlabelled):
        person = national_id(f"32092319700101{101 + i:03d}")
        at_a, at_b = w.patient(A, person, mrn=f"A-{i}"), w.patient(B, person, mrn=f"B-{i}")
        w.label = "R" if i < labelled else None  # A's result restricted: the flag citing it is withheld
        w.report(A, at_a, cbc(A), "2026-03-01T09:00:00+08:00")
        w.label = None
        order = w.order(B, at_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R07",))
        res = w.report(B, at_b, cbc(B), "2026-03-03T09:00:00+08:00", order=order).resource
        line = _line(f"ci-{i}", at_b, f"DiagnosticReport/{res['id']}", "20.00", "12.00")
        put = http.put(f"/fhir/ChargeItem/ci-{i}", json=line, headers=system)
        assert put.status_code in (200, 201), put.text
    rows = http.get("/reports/duplicates", headers=system).json()["rows"]
    assert sorted((r["status"], r["price"], r["price_source"]) for r in rows) == \
        [("self_pay", 20.0, "charge")] * (labelled + unlabelled)
    for r in rows:
        res = http.post(f"/reports/duplicates/{r['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                        headers=system)
        assert res.status_code == 200, res.text
    return system


def _csv(http: TestClient, headers: dict[str, str]) -> list[list[str]]:
    got = http.get("/reports/deductions", params={"institution": B, "month": "2026-03", "_format": "csv"},
                   headers=headers)
    assert got.status_code == 200, got.text
    return list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))


def test_the_summary_of_withheld_self_pay_flags_is_at_the_funds_share(engine: Any) -> None:
    with TestClient(create_app(engine)) as http:
        system = _county(engine, http, labelled=5, unlabelled=1)
        table = _csv(http, _auditor(engine))
        (listed,) = [r for r in table[1:] if r and r[0].startswith("ded-")]
        assert D(listed[9]) == D("12.00")
        total, left = table[-2], table[-1]
        assert (total[4], D(total[5])) == ("1", D("12.00"))
        assert left[0].startswith("另有 5 条") and (left[4], D(left[5])) == ("5", D("60.00")), left
        assert "60.00" in left[0] and "100.00" not in left[0], left[0]
        # the same six as the system reads them, all listed: 6 x 12.00, nothing left out
        whole = _csv(http, system)
        assert [(r[4], D(r[5])) for r in whole if r and r[0] == whole[-1][0]] == [("6", D("72.00"))]
        assert len([r for r in whole if r and r[0].startswith("ded-")]) == 6


def test_fewer_withheld_flags_than_shown_still_show_no_amount(engine: Any) -> None:
    """Guard: one withheld flag: its amount is not shown (fewer than ``amount_shown_from``)."""
    with TestClient(create_app(engine)) as http:
        _county(engine, http, labelled=1, unlabelled=1)
        left = _csv(http, _auditor(engine))[-1]
        assert left[0].startswith("另有 1 条") and left[4:6] == ["1", ""], left
