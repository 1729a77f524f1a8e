"""rv38c: probes of wardlink38 (outside wards keyed ``dept@~<Location id>|code|name``; a report PUT's listed
results without an entry read in one ``writers`` call; a stored result's ahead-note dropped).

Real HL7 through the ingest handler into the real store (orders), real FHIR over TestClient (reports and
results), SQLite and mongomock; read back through ``GET /reports/duplicates`` and the index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_dept37_departments import _ingest, _rows
from tests.test_deptfix34_departments import _wards
from tests.test_evidence33_pairs import http  # noqa: F401 (the fixture)
from tests.test_link37_links import copied_alt, entry
from tests.test_relink36_link import outcome
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order
from tests.test_wardlink38_links import _local, _notes, _put, _report


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def test_an_outside_ward_sent_by_code_first_is_named_by_its_later_name(engine: Engine) -> None:
    """WAIYUAN's QQW is first sent by code alone (its row holds no name), then with PL-9 外院急诊科: both orders
    are one department, named as the ward is named now -- not one "QQW（外部代码）" row beside it; WAIYUAN's XYQ
    (another code at the same facility) is another ward and another row; the county's own rows are untouched."""
    _feed(engine)
    before = {k: v["recognisable"] for k, v in _rates(engine).items()}
    _ingest(engine, _zhao_order(1, "QQW^7^1^WAIYUAN", "20250324"),
            _zhao_order(2, "QQW^8^1^WAIYUAN^^^^^外院急诊科", "20250325"),
            _zhao_order(3, "XYQ^9^1^WAIYUAN^^^^^外院血液科", "20250326"))
    rows = _rows(engine, "dept@~")
    assert len(rows) == 3 and len({r["dept"].partition("|")[0] for r in rows}) == 2, [r["dept"] for r in rows]
    rates = _rates(engine)
    assert _wards(rates, "外院", "QQW", "XYQ") == {"阜宁县人民医院 外院急诊科（外部）": 2, "阜宁县人民医院 外院血液科（外部）": 1}
    assert {k: v["recognisable"] for k, v in rates.items() if k in before} == before


def test_a_dropped_note_of_two_reports_loses_neither_link(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """R1 and R2 (both B1's) are stored ahead of result X: X's note names both. X's first version is locally
    coded (passed over); R1 is written again: the whole note goes (R2's part too). X is then corrected to the
    ALT: the search still finds both reports, and X is B1's."""
    b1, alt, about = copied_alt(engine, http)
    x = "Observation/rv38c-x"
    _put(http, _report("rv38c-r1", about, [x], b1), 201)
    _put(http, _report("rv38c-r2", about, [x], b1, text="肝功能二"), 201)
    assert _notes(engine) == {x: ["DiagnosticReport/rv38c-r1", "DiagnosticReport/rv38c-r2"]}
    _put(http, _local(alt, "rv38c-x", 60), 201)
    _put(http, _report("rv38c-r1", about, [x], b1, text="肝功能（复核）"), 200)
    assert _notes(engine) == {}
    _put(http, {**alt, "id": "rv38c-x"}, 200)
    assert entry(engine, x)["order"] == b1
    assert sorted(entry(engine, x)["reports"]) == ["DiagnosticReport/rv38c-r1", "DiagnosticReport/rv38c-r2"]
    assert outcome(engine, b1) == "duplicate"


def test_a_deleted_result_listed_again_is_noted_not_taken_as_stored(engine: Engine,
                                                                      http: TestClient) -> None:  # noqa: F811
    """X stored (local code), then deleted; R1 listing X is written: X is not stored (``writers`` leaves out a
    deletion, as ``read`` did), so R1 is noted for it -- never taken as stored and its note dropped."""
    b1, alt, about = copied_alt(engine, http)
    x = "Observation/rv38c-gone"
    _put(http, _local(alt, "rv38c-gone", 61), 201)
    assert http.delete(f"/fhir/{x}").status_code in (200, 204)
    _put(http, _report("rv38c-r1", about, [x], b1), 201)
    assert _notes(engine) == {x: ["DiagnosticReport/rv38c-r1"]}
