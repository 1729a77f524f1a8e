"""The reports' first and last years (the lead, from review rv42c MED 6): a day or month inside 1900-9998 is
answered, never a 500 -- the bound ``engine.periods`` sets keeps a zone's offset and a baseline's year inside
Python's calendar; outside it the 400 names the parameter (rv42c's probes)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng

__all__ = ["module_eng"]


_EDGES = [("1900-01", "1900-01-01", "1900-01-01"), ("9998-12", "9998-12-01", "9998-12-31")]


@pytest.mark.parametrize(("path", "params"), [
    *(("/reports/indicators", {"month": m}) for m, _, _ in _EDGES),
    *(("/reports/deductions", {"month": m, "institution": "FNXRMYY"}) for m, _, _ in _EDGES),
    *(("/reports/referrals", {"from": m, "to": m}) for m, _, _ in _EDGES),
    *(("/reports/remote-reading", {"from": m, "to": m}) for m, _, _ in _EDGES),
    *(("/reports/split-admissions", {"from": a, "to": b}) for _, a, b in _EDGES),
    *(("/fhir/Measure/huren-duplicate-test-money/$evaluate-measure", {"periodStart": a, "periodEnd": b})
      for _, a, b in _EDGES),
    *(("/fhir/Measure/huren-per-admission-cost/$evaluate-measure", {"periodStart": a, "periodEnd": b})
      for _, a, b in _EDGES),
])
def test_the_first_and_last_years_a_report_covers_are_answered(module_eng: Engine, path: str,
                                                               params: dict[str, str]) -> None:
    from engine.api.app import create_app

    auditor = {"Authorization": "Bearer " + module_eng.auth.issue_system_token("auditor-lead42", "system/*.rs",
                                                                               kind="auditor")}
    with TestClient(create_app(module_eng), raise_server_exceptions=False) as client:
        r = client.get(path, params=params, headers=auditor)
    assert r.status_code == 200, (r.status_code, r.text[:300])
