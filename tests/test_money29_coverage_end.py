"""money29: a cover that a later cover of another type ENDED does not come back unsaid (rvlast25a's xfail).

moneyfix25b's rule: a patient has one basic fund at a time, so a cover starting later ends an earlier open
one of another type at its start. When that later cover itself ends, nothing says the patient re-enrolled
under the earlier fund -- unless a message states the earlier cover (open) again after it. Real bytes: BAR/DFT
over POST /hl7v2, the settlement at GET /reports/settlement, on SQLite and mongomock alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert_families import post as post_hl7
from tests.test_money24_settlement import BILLING, amount_site, settlement
from tests.test_moneyfix25_rv_coverage import EMPLOYEE, RESIDENT, _dft, _types
from tests.test_moneyfix25b_rv_probes import _bar

SEPT = "FT1|1|T-C001||20260915100000||CG|DRUG-7^头孢曲松^L||1|1||40.00&CNY"
AUG = "FT1|2|T-C002||20260815100000||CG|DRUG-7^头孢曲松^L||1|1||30.10&CNY"
MARCH = "FT1|3|T-C003||20260310100000||CG|SURG-01^阑尾切除术^L||1|1||300.00&CNY"
OPEN_RESIDENT = RESIDENT.format(start="20250101", end="")
SUMMER_EMPLOYEE = EMPLOYEE.format(n=1, start="20260701", end="20260831")


@pytest.fixture
def world(backend_settings: Settings, tmp_path: Any) -> Iterator[tuple[Engine, TestClient]]:
    folder = amount_site(tmp_path)
    with Engine(backend_settings.with_(site=folder)) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("his-feed", BILLING)
        yield engine, http


def _excluded(report: dict[str, Any]) -> dict[str, tuple[int, D]]:
    return {e["reason"]: (e["lines"], D(str(e["amount"]))) for e in report["charges"]["excluded"]}


def _bill(engine: Engine, http: TestClient, *lines: str) -> dict[str, Any]:
    assert post_hl7(http, _dft("B1", *lines)) == "AA"
    return settlement(engine, http, 2026)


def test_september_after_the_switch_back_is_no_funds(world: Any) -> None:
    """Resident open, then employee 07-01..08-31: September is listed no-insurance-type (its 40.00 exact),
    March stays resident, August employee -- each month its own answer."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    report = _bill(engine, http, MARCH, AUG, SEPT)
    assert _types(report) == {"resident": (1, D("300.00")), "employee": (1, D("30.10"))}
    assert _excluded(report) == {"no-insurance-type": (1, D("40.00"))}


def test_a_later_bar_re_stating_the_resident_cover_open_gives_september_back(world: Any) -> None:
    """The same, then a BAR^P05 naming the resident cover open again (unchanged: no new version, only its
    message's Provenance says so): the HIS's last word is that it is open -- September is resident;
    August stays employee (the later start takes the days both claim)."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    assert post_hl7(http, _bar("N4", "P05", OPEN_RESIDENT)) == "AA"
    report = _bill(engine, http, AUG, SEPT)
    assert _types(report) == {"resident": (1, D("40.00")), "employee": (1, D("30.10"))}
    assert _excluded(report) == {}


def test_the_employee_cover_re_stated_last_ends_the_resident_one_again(world: Any) -> None:
    """Resident, employee, resident again, then the employee cover once more: the last word is the
    employee cover's, which ended the resident one at 07-01 -- September is no fund's."""
    engine, http = world
    for control, in1 in (("N1", OPEN_RESIDENT), ("N2", SUMMER_EMPLOYEE), ("N4", OPEN_RESIDENT),
                         ("N5", SUMMER_EMPLOYEE)):
        assert post_hl7(http, _bar(control, "P05", in1)) == "AA"
    assert _excluded(_bill(engine, http, SEPT)) == {"no-insurance-type": (1, D("40.00"))}


def test_a_re_enrolment_with_its_new_start_is_resident(world: Any) -> None:
    """The resident cover re-sent from 09-01 (IN1-12 20260901, the same plan and set id: the same
    Coverage): it started after the employee one, so September is resident."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    assert post_hl7(http, _bar("N4", "P05", RESIDENT.format(start="20260901", end=""))) == "AA"
    assert _types(_bill(engine, http, SEPT)) == {"resident": (1, D("40.00"))}


def test_guard_an_employee_cover_with_no_end_keeps_september(world: Any) -> None:
    """No change: the employee cover open from 07-01 -- September is the employee fund's."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", EMPLOYEE.format(n=1, start="20260701", end=""))) == "AA"
    assert _types(_bill(engine, http, SEPT)) == {"employee": (1, D("40.00"))}


def test_sent_out_of_order_the_resident_stated_last_stands(world: Any) -> None:
    """The employee cover (07-01..08-31) first, then the resident cover open from an earlier start:
    the resident cover was stated after the employee one, so after 08-31 it is the HIS's last word
    (September resident); August is still the later start's, the employee fund's."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", SUMMER_EMPLOYEE)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", OPEN_RESIDENT)) == "AA"
    assert _types(_bill(engine, http, AUG, SEPT)) == {"resident": (1, D("40.00")), "employee": (1, D("30.10"))}


def test_guard_an_employee_cover_over_before_the_resident_one_began_ends_nothing(world: Any) -> None:
    """Employee 2024, resident from 2025 open (sent in that order, then the employee again): the
    employee cover ended before the resident began -- September is resident."""
    engine, http = world
    employee_2024 = EMPLOYEE.format(n=1, start="20240101", end="20241231")
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT)) == "AA"
    assert post_hl7(http, _bar("N2", "P05", employee_2024)) == "AA"
    assert _types(_bill(engine, http, SEPT)) == {"resident": (1, D("40.00"))}


def test_one_bar_naming_both_is_no_later_word_for_either(world: Any) -> None:
    """One BAR listing the resident cover open and the employee cover 07-01..08-31: neither was stated
    after the other, so the employee start's end of the resident cover stands -- September no fund's."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", OPEN_RESIDENT, EMPLOYEE.format(n=2, start="20260701",
                                                                          end="20260831"))) == "AA"
    report = _bill(engine, http, SEPT, MARCH)
    assert _types(report) == {"resident": (1, D("300.00"))}
    assert _excluded(report) == {"no-insurance-type": (1, D("40.00"))}


def test_a_resident_cover_with_no_start_after_an_ended_employee_cover_is_ambiguous(world: Any) -> None:
    """The resident cover states no start (IN1-12 empty), the employee cover 07-01..08-31 stated after it:
    whether the employee cover started later (and ended it) is not known -- listed ambiguous."""
    engine, http = world
    assert post_hl7(http, _bar("N1", "P01", RESIDENT.format(start="", end=""))) == "AA"
    assert post_hl7(http, _bar("N2", "P05", SUMMER_EMPLOYEE)) == "AA"
    assert _excluded(_bill(engine, http, SEPT)) == {"ambiguous-insurance-type": (1, D("40.00"))}
