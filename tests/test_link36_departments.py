"""link36: the recognition rate by department files and looks up a row without institution under one key.

``engine.wards.department_namer`` filed a row's (institution, name) under ``str(inst)`` -- "None" for a row
without institution -- and looked it up under "": a ward such rows stored both as its code with its name
(``dept|NEI|心内科病区``) and as the name alone (``dept||心内科病区``) counted on two rows, "心内科病区" and
"NEI（院内代码）". No converter path writes a check row without an institution today (an order whose
institution is not known is not checked, ``FactReader.order``); the tallies are written straight into the
real store, as rows an earlier release or a repair might have left, and read over ``GET /reports/duplicates``
(its ``recognition_rate_by`` breakdown, which hands the namer the tallies' pairs as a list of their own), on
SQLite and mongomock."""

from __future__ import annotations

from typing import Any

from engine.engine import Engine
from tests.test_deptfix34_departments import _wards
from tests.test_rvlast34_probes import _rates


def test_a_ward_without_institution_is_one_department_under_its_code_and_its_name(backend_settings: Any) -> None:
    with Engine(backend_settings) as eng:
        rows = [("dept|NEI|心内科病区", None, "2025-03-24"), ("dept||心内科病区", None, "2025-03-25"),
                ("dept||心内科病区", "", "2025-03-26")]
        eng.recognition.check_days.insert_many([
            {"_id": f"l36-{i}", "dept": d, "inst": inst, "day": day, "item": "CBC", "outcome": "recognised", "count": 1}
            for i, (d, inst, day) in enumerate(rows)])
        got = _wards(_rates(eng), "心内科", "NEI")
        # one department, counted once (its label: the code said to be one -- the latest named tally is
        # looked up by the institution as stored, which such a row does not give)
        assert list(got.values()) == [3], got
