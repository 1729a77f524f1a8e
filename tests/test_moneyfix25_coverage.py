"""moneyfix25: the Coverage in force on a charge line's day, beside the review's probes (test_moneyfix25_rv_coverage).

Real bytes through the real path: the account and its Coverages as BAR messages over POST /hl7v2, the
lines as a DFT, Coverages and the Account edited with PUT /fhir, the settlement read at GET
/reports/settlement.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.test_convert_families import PV1, message, msh
from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import settlement
from tests.test_money25_coverage_period import ACCOUNT
from tests.test_moneyfix25_rv_coverage import EMPLOYEE, RESIDENT, _coverages, _dft, _types, world

__all__ = ["world"]


def _bar(control: str, event: str, *in1: str) -> bytes:
    return message(msh(f"BAR^{event}^BAR_{event}", control), f"EVN|{event}|20260101", ACCOUNT, PV1, *in1)


def _put(http: Any, cov: dict[str, Any], **changes: Any) -> None:
    cov = {k: v for k, v in cov.items() if k != "meta"} | changes
    r = http.put(f"/fhir/Coverage/{cov['id']}", json=cov)
    assert r.status_code == 200, r.text


def test_a_start_at_an_instant_leaves_the_morning_before_it_to_the_earlier_cover(world: Any) -> None:
    """The switch happens at 08:00 on 07-01 (both sides written as that instant). A line at 07:30 is
    the resident fund's, one at 10:00 the employee fund's. Base: the days were compared, both lines
    were in both covers and the first listed (resident) took them."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20260630"),
                               EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    covs = _coverages(http)
    _put(http, covs["390"], period={"start": "2025-01-01", "end": "2026-07-01T08:00:00+08:00"})
    _put(http, covs["310"], period={"start": "2026-07-01T08:00:00+08:00", "end": "2027-12-31"})
    assert post_hl7(http, _dft("S3", "FT1|1|T-9601||20260701073000||CG|DRUG-7^头孢曲松^L||1|1||7.00&CNY",
                               "FT1|2|T-9602||20260701100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"resident": (1, D("7.00")), "employee": (1, D("40.00"))}


def test_an_end_instant_written_in_utc_is_read_as_that_instant(world: Any) -> None:
    """The resident cover ends 2026-06-30T16:00:00Z (00:00 on 07-01 in Funing); a line at 00:30 on
    07-01 in Funing is after it, the employee cover starting that day takes it."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20260630"),
                               EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    _put(http, _coverages(http)["390"], period={"start": "2025-01-01", "end": "2026-06-30T16:00:00Z"})
    assert post_hl7(http, _dft("S3", "FT1|1|T-9701||20260630233000||CG|DRUG-7^头孢曲松^L||1|1||7.00&CNY",
                               "FT1|2|T-9702||20260701003000||CG|DRUG-7^头孢曲松^L||1|1||5.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"resident": (1, D("7.00")), "employee": (1, D("5.00"))}


def test_a_draft_coverage_gives_no_type(world: Any) -> None:
    """R4: a draft Coverage is "not complete", not in force: the line takes the active one's type."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20271231"),
                               EMPLOYEE.format(n=2, start="20250101", end="20271231"))) == "AA"
    _put(http, _coverages(http)["390"], status="draft")
    assert post_hl7(http, _dft("S3", "FT1|1|T-9801||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("300.00"))}


def test_a_bar_resending_a_coverage_with_a_new_end_updates_it_in_place(world: Any) -> None:
    """Guard of the union: the resident cover first open to 2026-12-31, then a BAR^P05 re-sends it ending
    06-30 beside the employee cover: the account lists two Coverages, not three, the resident one
    ending 06-30, and September is the employee fund's."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20261231"))) == "AA"
    assert post_hl7(http, _bar("S2", "P05", RESIDENT.format(start="20250101", end="20260630"),
                               EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    (account,) = [e["resource"] for e in http.get("/fhir/Account").json()["entry"]]
    assert len(account["coverage"]) == 2
    assert _coverages(http)["390"]["period"]["end"].startswith("2026-06-30")
    assert post_hl7(http, _dft("S3", "FT1|1|T-9901||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")) == "AA"
    assert _types(settlement(engine, http, 2026)) == {"employee": (1, D("40.00"))}


def test_a_bar_without_in1_keeps_the_coverages(world: Any) -> None:
    """Guard: a BAR^P05 stating no IN1 (a thinner message) keeps both Coverages on the account."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20260630"),
                               EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    assert post_hl7(http, _bar("S2", "P05")) == "AA"
    assert set(_coverages(http)) == {"390", "310"}


def test_a_fhir_client_states_the_whole_coverage_list(world: Any) -> None:
    """Guard: the union is the feeds'. A FHIR client's PUT of the Account listing only the employee cover
    states the whole list: March, under the resident cover no longer listed, has no insurance type."""
    engine, http = world
    assert post_hl7(http, _bar("S1", "P01", RESIDENT.format(start="20250101", end="20260630"),
                               EMPLOYEE.format(n=2, start="20260701", end="20271231"))) == "AA"
    employee = _coverages(http)["310"]
    (account,) = [e["resource"] for e in http.get("/fhir/Account").json()["entry"]]
    account = {k: v for k, v in account.items() if k != "meta"}
    account["coverage"] = [{"coverage": {"reference": f"Coverage/{employee['id']}"}}]
    r = http.put(f"/fhir/Account/{account['id']}", json=account)
    assert r.status_code == 200, r.text
    assert post_hl7(http, _dft("S3", "FT1|1|T-9A01||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY",
                               "FT1|2|T-9A02||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY")) == "AA"
    report = settlement(engine, http, 2026)
    assert _types(report) == {"employee": (1, D("40.00"))}
    excluded = {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}
    assert excluded == {"no-insurance-type": (1, D("300.00"))}
