"""wfix38: a ward at a facility no member's code names is said to be another place's, and rows of two wards never
add up under one label in the recognition rate by department (rv38b LOW 1; wardlink38's "two outside wards of one
name still share a label").

The county hospital (FNXRMYY) orders for the demo's Zhao at wards of WAIYUAN and SHIYIYUAN (PV1-3 PL-4: no member's
code). Real HL7 through the ingest handler into the real store on SQLite and mongomock, read back through
``GET /reports/duplicates`` (the JSON the duplicates page shows as it is) and ``$evaluate-measure``'s department
stratum. (The CSV export holds the rate by institution only: no department row to check.) The row stored before
wardlink38 (``dept@|``) is written straight into the real store's tallies, as wardlink38's tests write it."""

from __future__ import annotations

from typing import Any

from adapters.convert.actors import ward_key
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_dept37_departments import COUNTY, _ingest, _measure_departments
from tests.test_deptfix34_departments import _wards
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order


def _ward_id(facility: str, code: str) -> str:
    """The id the converter gives the county hospital's record of ``facility``'s ward ``code``."""
    return deterministic_id("FNXRMYY", "Location", ward_key(facility, code))


def _outside(eng: Engine) -> dict[str, int]:
    return _wards(_rates(eng), "外院")


def test_an_outside_ward_named_like_the_countys_own_ward_is_its_own_row(backend_settings: Any) -> None:
    """WAIYUAN's ward named 心内科病区 (PL-9), the name of the county's own NEI: its own row, said to be another
    place's; the county's ward counts what it counted, in the JSON rate and the MeasureReport alike."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        before = _rates(eng)[COUNTY]["recognisable"]
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^心内科病区"), _zhao_order(2, "NEI^8^1^WAIYUAN", "20250325"))
        want = {COUNTY: before, "阜宁县人民医院 心内科病区（外部）": 2}
        assert _wards(_rates(eng), "心内科") == want
        assert {k: v for k, v in _measure_departments(eng).items() if "心内科" in k} == want


def test_two_hospitals_wards_of_one_name_are_two_rows(backend_settings: Any) -> None:
    """WAIYUAN's NEI and SHIYIYUAN's NEI both named 外院心内科: two rows, told apart by their ward Location's id (the
    code is the same); WAIYUAN's XYQ and SHIYIYUAN's QQW both named 外院内科: told apart by their codes. A period
    with one of them alone names it plainly."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(2, "NEI^8^1^WAIYUAN", "20250326"),
                _zhao_order(3, "NEI^9^1^SHIYIYUAN^^^^^外院心内科", "20250325"),
                _zhao_order(4, "XYQ^5^1^WAIYUAN^^^^^外院内科", "20250325"),
                _zhao_order(5, "QQW^6^1^SHIYIYUAN^^^^^外院内科", "20250325"))
        waiyuan, shiyiyuan = _ward_id("WAIYUAN", "NEI")[:8], _ward_id("SHIYIYUAN", "NEI")[:8]
        assert waiyuan != shiyiyuan
        want = {f"阜宁县人民医院 外院心内科（外部 NEI {waiyuan}）": 2, f"阜宁县人民医院 外院心内科（外部 NEI {shiyiyuan}）": 1,
                "阜宁县人民医院 外院内科（外部 XYQ）": 1, "阜宁县人民医院 外院内科（外部 QQW）": 1}
        assert _outside(eng) == want
        assert {k: v for k, v in _measure_departments(eng).items() if "外院" in k} == want
        assert _wards(_rates(eng, **{"from": "2025-03-26", "to": "2025-03-26"}), "外院") == {
            "阜宁县人民医院 外院心内科（外部）": 1}


def test_a_row_stored_before_is_not_added_to_a_ward_of_its_name(backend_settings: Any) -> None:
    """A tally wardlink38's predecessors wrote (``dept@|NEI|外院心内科``: which facility is not recorded) beside
    today's rows of WAIYUAN's NEI of that name: two rows -- the old one says its facility is not recorded."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科", "20250324"))
        eng.recognition.check_days.insert_many([
            {"_id": f"wf38-old-{i}", "dept": "dept@|NEI|外院心内科", "inst": "FNXRMYY", "day": day, "item": "CBC",
             "outcome": "recognised", "count": 1} for i, day in enumerate(("2025-03-24", "2025-03-25"))])
        rid = _ward_id("WAIYUAN", "NEI")[:8]
        assert _outside(eng) == {f"阜宁县人民医院 外院心内科（外部 NEI {rid}）": 1, "阜宁县人民医院 外院心内科（外部 NEI 院别未记）": 2}
