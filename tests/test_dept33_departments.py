"""dept33: the auditor's recognition rate by department counts a ward, not a bed.

The department (科室) of an order is the ward or clinic of its visit (PV1-3 PL-1), found through the
bed's ``partOf`` chain (pages33 nested the Locations), named from the site's ward table
(``mappings/wards.yaml``) else said to be a code. It had been the visit's location text: every bed a
department of its own ("NEI 301房 02床"), and in a store written before pages33 one ward under two
labels ("NEI 301 02" and the new text). Real HL7 in (the demo month's feeds and messages of our own
through the ingest path), the real report out (GET /reports/duplicates, the MeasureReport, the page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.recognition.facts import department_key, department_parts

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "examples" / "feeds"
AUDITOR = "system/DetectedIssue.rus"


def _feed(engine: Any, *extra: bytes) -> None:
    for path in sorted(FEEDS.glob("*.hl7")):
        assert b"MSA|AA|" in engine.ingestor.handle(path.read_bytes(), channel="file", peer=f"file:{path.name}")
    for i, msg in enumerate(extra):
        ack = engine.ingestor.handle(msg, channel="file", peer=f"file:extra{i}")
        assert b"MSA|AA|" in ack, ack


def _rates(engine: Any) -> dict[str, Any]:
    token = engine.auth.issue_system_token("audit", AUDITOR, kind="auditor")
    res = TestClient(create_app(engine)).get("/reports/duplicates", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    return res.json()["recognition_rate_by"]["dept"]


def test_a_stored_department_reads_as_its_ward_old_and_new() -> None:
    assert department_parts(department_key("NEI", None)) == ("NEI", None)
    assert department_parts(department_key("NEI", "心内科病区")) == ("NEI", "心内科病区")
    assert department_parts("NEI 301 02") == ("NEI", None)  # a row from before pages33
    assert department_parts("NEI 301房 02床") == ("NEI", None)  # pages33's text
    assert department_parts("心内科病区 301房 02床") == (None, "心内科病区")  # PL-9's name
    assert department_parts("内科") == (None, "内科")  # a FHIR client's locationCode text
    assert department_parts(None) == (None, None) and department_key(None, "") is None


def test_the_demo_month_counts_its_wards_not_its_beds(engine: Any) -> None:
    _feed(engine)
    dept = _rates(engine)
    assert dept, dept
    for key in dept:
        assert "房" not in key and "床" not in key and "301" not in key, dept
    # the people's hospital's ward is named from the site's ward table (NEI: 心内科病区), the TCM
    # hospital's outpatient clinic MZNK, which no table names, is said to be a code
    people = [k for k in dept if "FNXRMYY" in k or "人民医院" in k]
    assert people and all(k.endswith("心内科病区") for k in people), dept
    assert any(k.endswith("MZNK（院内代码）") for k in dept), dept



def test_rows_stored_before_count_with_the_ward(engine: Any) -> None:
    """A store written before dept33 holds the bed's text (before pages33 "NEI 301 02", after it
    "NEI 301房 02床"): rows of one ward count in one row whatever text they were stored with."""
    _feed(engine)
    now = _rates(engine)
    checks = engine.recognition.checks
    rows = [c for c in checks.find({}) if c.get("dept")]
    olds = {"dept|NEI|": "NEI 301 02", "dept|MZNK|": "MZNK"}
    changed = 0
    for i, c in enumerate(sorted(rows, key=lambda c: c["_id"])):
        if c["dept"] in olds and i % 2 == 0:  # half of them as an older release stored them
            checks.replace({**c, "dept": olds[c["dept"]]})
            changed += 1
    assert changed >= 2
    engine.recognition.rebuild_tallies()
    assert _rates(engine) == now


def test_a_ward_named_in_pl9_and_its_beds_are_one_department(engine: Any) -> None:
    """Two orders from two beds of a ward PL-9 names, the ward no table lists: one row, by its name."""
    _feed(engine)
    before = sum(r["recognisable"] for r in _rates(engine).values())
    # the demo's Zhao (feeds 20-22) had a blood count at the TCM hospital: two more orders for her
    # at the people's hospital, as feed 21 sends one, from two beds of one ward
    zhao = next(FEEDS.glob("21_*.hl7")).read_bytes()
    msgs = [zhao.replace(b"SQ20250324011", f"SQD33{n}".encode())
                .replace(b"NEI^301^02^FNXRMYY", bed.encode())
                .replace(b"ZY2025000324-20250324", f"ZY2025000324-D33{n}".encode())
            for n, bed in enumerate(("XYK^501^01^FNXRMYY^^^^^血液科病区", "XYK^502^03^FNXRMYY"))]
    _feed_more(engine, *msgs)
    dept = _rates(engine)
    assert sum(r["recognisable"] for r in dept.values()) == before + 2, dept
    ward = {k: r for k, r in dept.items() if "血液科病区" in k or "XYK" in k}
    assert list(ward) == ["阜宁县人民医院 血液科病区"], dept
    assert ward["阜宁县人民医院 血液科病区"]["recognisable"] == 2


def _feed_more(engine: Any, *msgs: bytes) -> None:
    for i, msg in enumerate(msgs):
        ack = engine.ingestor.handle(msg, channel="file", peer=f"file:more{i}")
        assert b"MSA|AA|" in ack, ack
