"""link37: the once-per-store upgrade dates an earlier release's after-midnight Observation by its report.

relink36 made a panel's Observations part of their report's test (dated by the report's day) when the
report is itself a recognition result of their item: a liver panel drawn at 20:00 whose ALT was
analysed after midnight is one test, one flag, the money once. Entries stored before that release
kept the ALT's own day, so such a panel still showed two flags until its results were sent again.
``engine.recognition.upgrade.report_days_once`` puts those results again through the one link rule,
once per store: counted, run again it writes nothing, and a run cut short goes on from its marker.

The old form is written as that release left it: the ALT's entry under its own day without the
reports kept on it, its test decided apart (two flags), no marker. The panel goes in over
``POST /hl7v2``, the flags are read over ``GET /reports/duplicates``; SQLite is closed and opened
again (the upgrade runs at the open), and the pass itself runs on SQLite and mongomock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.upgrade import LAYOUT, REPORT_DAYS, report_days_once
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior
from tests.test_evidence33_pairs import ALT, AST, LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_linkfix35_relink import live
from tests.test_probepay26_windows import order, result
from tests.test_relink36_link import report_of


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def flagged(engine: Engine, http: TestClient) -> list[tuple[str | None, str]]:  # noqa: F811
    return sorted(((r["order"], r["day"]) for r in live(engine, http) if r["status"] == "flagged"),
                  key=lambda t: (t[0] or "", t[1]))


def after_midnight_panel(engine: Engine, http: TestClient) -> tuple[str, str]:  # noqa: F811
    """The prior panel of 03-10; order B1 of 03-11 18:00; its panel drawn at 20:00, the ALT analysed at
    01:00 on 03-12: one test, one flag (this release). Returns B1 and the ALT's reference."""
    prior(http)
    send(http, order(B, "B1", LFT, "20260311180000+0800"))
    b1 = order_ref(http, "B1")
    send(http, result(B, "B1", LFT, "20260311200000+0800",
                      obx=obx((ALT, "88"), (AST, "35"), when="20260312010000+0800")))
    assert flagged(engine, http) == [(b1, "2026-03-11")]
    alt = report_of(http, "FB1")["result"][0]["reference"]
    assert engine.recognition.index.get(alt)["day"] == "2026-03-11"
    return b1, alt


def as_an_earlier_release_left_it(engine: Engine, alt: str) -> None:
    """The ALT's entry under its own day (03-12) without ``reports``, its test and the panel's decided
    apart as that release decided them (two flags; the ALT's names no order: the report of its own item
    carries it), and no marker of the pass."""
    rec = engine.recognition
    new = rec.index.coll.get(alt)
    old = {**{k: v for k, v in new.items() if k != "reports"}, "day": "2026-03-12"}
    with engine.store.transaction():
        rec.index.coll.replace(old)
        rec._in_group(lambda: (rec._evaluate_flag(old), rec._evaluate_flag(new)))
        engine.store.collection(LAYOUT).delete(REPORT_DAYS)


def test_the_upgrade_dates_an_old_after_midnight_result_by_its_report(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Two flags on the old form; the pass moves the ALT (1 counted): one flag, B1's, on 03-11, and the
    entry keeps its reports. Marked done; run with the marker gone it finds nothing (0)."""
    b1, alt = after_midnight_panel(engine, http)
    as_an_earlier_release_left_it(engine, alt)
    assert flagged(engine, http) == [(None, "2026-03-12"), (b1, "2026-03-11")]
    assert report_days_once(engine.recognition) == 1
    assert flagged(engine, http) == [(b1, "2026-03-11")]
    moved = engine.recognition.index.get(alt)
    assert moved["day"] == "2026-03-11" and moved["reports"] == [f"DiagnosticReport/{report_of(http, 'FB1')['id']}"]
    assert engine.store.collection(LAYOUT).get(REPORT_DAYS) == {"_id": REPORT_DAYS, "done": True, "written": 1}
    assert report_days_once(engine.recognition) is None
    with engine.store.transaction():
        engine.store.collection(LAYOUT).delete(REPORT_DAYS)
    assert report_days_once(engine.recognition) == 0
    assert flagged(engine, http) == [(b1, "2026-03-11")]


def test_a_pass_cut_short_goes_on_from_its_marker(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A marker left by a run stopped after the panel's report (``after`` past it, 3 counted so far):
    the pass goes on from there -- the report is not read again, the count goes on (3), done. A marker
    left before it: the panel is moved, counted on from 3 (4)."""
    b1, alt = after_midnight_panel(engine, http)
    as_an_earlier_release_left_it(engine, alt)
    report = f"DiagnosticReport/{report_of(http, 'FB1')['id']}"
    marks = engine.store.collection(LAYOUT)
    with engine.store.transaction():
        marks.replace({"_id": REPORT_DAYS, "after": report, "written": 3})
    assert report_days_once(engine.recognition) == 3
    assert flagged(engine, http) == [(None, "2026-03-12"), (b1, "2026-03-11")]
    with engine.store.transaction():
        marks.replace({"_id": REPORT_DAYS, "after": "DiagnosticReport/", "written": 3})
    assert report_days_once(engine.recognition) == 4
    assert flagged(engine, http) == [(b1, "2026-03-11")]


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_an_old_store_opened_again_is_upgraded(backend_settings: Settings) -> None:
    """The old form written, the store closed; opened again (the pass runs at the open): one flag."""
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
        b1, alt = after_midnight_panel(engine, client)
        as_an_earlier_release_left_it(engine, alt)
        assert len(flagged(engine, client)) == 2
    with Engine(backend_settings) as engine, TestClient(create_app(engine)) as client:
        assert engine.store.collection(LAYOUT).get(REPORT_DAYS) == {"_id": REPORT_DAYS, "done": True, "written": 1}
        assert flagged(engine, client) == [(b1, "2026-03-11")]
        assert engine.recognition.index.get(alt)["day"] == "2026-03-11"
