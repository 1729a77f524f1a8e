"""linkfix35: a report's write, or its order's check row written after its results, links the results it
lists by the one rule (``Repeats._linked`` through ``Repeats.relink_listed``).

evid35 linked a result that names no order to its report's order only when the result itself was put,
so a report corrected to another order (a FHIR PUT of its ``basedOn``), a report written apart from its
results, or a result that arrived before its order left the flag, its money and the order-time check on
the old order or on none. Real HL7 v2 over ``POST /hl7v2`` and FHIR over TestClient into the real store,
on SQLite and mongomock; read back over HTTP and from the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate, rows
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_probepay26_windows import order, result

ORDER_AT, REPEAT_AT = "20260312080000+0800", "20260312100000+0800"
FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def live(engine: Engine, http: TestClient) -> list[dict[str, Any]]:  # noqa: F811
    return [r for r in rows(engine, http) if r["status"] not in ("cancelled", "overturned")]


def report_of(http: TestClient, filler: str) -> dict[str, Any]:  # noqa: F811
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": filler}).json()["entry"]
    return entry["resource"]


def put_based_on(http: TestClient, report: dict[str, Any], ref: str) -> None:  # noqa: F811
    """The report corrected to say it was ``ref``'s: a FHIR PUT of it with the same results."""
    report = {k: v for k, v in report.items() if k != "meta"}
    report["basedOn"] = [{"reference": ref}]
    res = http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report, headers=FHIR)
    assert res.status_code == 200, res.text
    assert http.get(f"/fhir/DiagnosticReport/{report['id']}").json()["basedOn"] == [{"reference": ref}]


def test_a_result_before_its_order_is_linked_when_the_order_is_checked(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The LIS's result under its local code (numbers B1/FB1) arrives before the HIS's order B1: nothing
    was checked then, the flag names no order. The order arrives: its check row finds the report based
    on it, the results are linked, the flag names the order, its check is the repeated one (0/1)."""
    prior(http)
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert {r["order"] for r in live(engine, http)} == {None}
    send(http, order(B, "B1", LFT, ORDER_AT))
    ordered = order_ref(http, "B1")
    got = live(engine, http)
    assert len(got) == 1 and got[0]["order"] == ordered and got[0]["status"] == "flagged", got
    assert engine.recognition.checks.get(ordered)["outcome"] == "duplicate"
    obs = [engine.recognition.index.get(r["reference"]) for r in report_of(http, "FB1")["result"]]
    assert [d["order"] for d in obs] == [ordered, ordered], obs
    assert rate(engine, http) == (0, 1)


def test_a_report_written_apart_links_its_results_and_unlinks_on_correction(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The result comes under numbers no order message placed (C9): unlinked, order B1 pending, 1/1.
    The report is then corrected to B1 (a write of its own, apart from its results): linked, B1 the
    repeated order, 0/1. Corrected again to C9's order (no order-time check): the link is taken back,
    the flag names no order, B1 back to pending, 1/1 -- the old link does not outlive the report."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "C9", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    c9 = order_ref(http, "C9")
    assert {r["order"] for r in live(engine, http)} == {None}
    assert rate(engine, http) == (1, 1)
    report = report_of(http, "FC9")
    put_based_on(http, report, b1)
    got = live(engine, http)
    assert len(got) == 1 and got[0]["order"] == b1 and got[0]["status"] == "flagged", got
    assert engine.recognition.checks.get(b1)["outcome"] == "duplicate"
    assert rate(engine, http) == (0, 1)
    put_based_on(http, report_of(http, "FC9"), c9)
    assert {r["order"] for r in live(engine, http)} == {None}
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"
    assert rate(engine, http) == (1, 1)


def test_a_report_sent_again_unchanged_moves_nothing(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The report PUT again as it stands: its results stay linked to B1, one flag, B1 still repeated."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    before = live(engine, http)
    put_based_on(http, report_of(http, "FB1"), b1)
    assert live(engine, http) == before
    assert engine.recognition.checks.get(b1)["outcome"] == "duplicate"
