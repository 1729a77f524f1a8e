"""relink36: the link of a result to its order is what the stored reports say now.

rv36b found that the link a report made outlived the report (voided, deleted, its result list
dropped), that a void report or another patient's report made one, that the last report written won
over a stored one naming another order, and that a panel whose ALT was analysed after midnight was
two tests (two flags, the money twice). ``Repeats._linked`` now reads the reports that list a result
-- those of the write at hand and the stored ones -- and only those that stand and are of the
result's subject; a report of the result's own item makes it part of that report's test. These
tests go past the probes (tests/test_rv36b_probes.py): the results deleted, a report stored before
its results, a transaction voiding a report with its results, a note for another patient's report,
two reports naming one order, a panel's ALT sent again alone.

Real HL7 v2 over ``POST /hl7v2`` and FHIR over TestClient into the real store, SQLite and mongomock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_linkfix35_relink import FHIR, ORDER_AT, REPEAT_AT, live
from tests.test_probepay26_windows import order, result

OTHER = "320923198504120036"  # another resident of the county


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def report_of(http: TestClient, filler: str) -> dict[str, Any]:  # noqa: F811
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": filler}).json()["entry"]
    return {k: v for k, v in entry["resource"].items() if k != "meta"}


def read(http: TestClient, ref: str) -> dict[str, Any]:  # noqa: F811
    res = http.get(f"/fhir/{ref}")
    assert res.status_code == 200, res.text
    return {k: v for k, v in res.json().items() if k != "meta"}


def outcome(engine: Engine, ref: str) -> str:
    return engine.recognition.checks.get(ref)["outcome"]


def linked_b1(engine: Engine, http: TestClient) -> tuple[str, dict[str, Any]]:  # noqa: F811
    """The prior; FNZYY's order B1 and its result under the LIS's local code (numbers B1/FB1): linked, 0/1."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert {r["order"] for r in live(engine, http)} == {b1}
    assert outcome(engine, b1) == "duplicate"
    return b1, report_of(http, "FB1")


def test_relink36_deleted_results_stop_counting(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The repeat's Observations deleted (FHIR DELETE): nothing was performed for B1 any more -- the flag
    goes, B1 is pending again, the rate 1/1. A deleted result stood as a repeat before (no delete hook)."""
    b1, report = linked_b1(engine, http)
    for listed in report["result"]:
        res = http.delete(f"/fhir/{listed['reference']}")
        assert res.status_code in (200, 204), res.text
        assert engine.recognition.index.get(listed["reference"]) is None
    assert live(engine, http) == [], live(engine, http)
    assert outcome(engine, b1) == "pending"
    assert rate(engine, http) == (1, 1)


def test_relink36_a_deleted_prior_repeats_nothing(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The prior's Observations deleted: the repeat has no prior left, its flag goes, B1 is retested."""
    b1, _ = linked_b1(engine, http)
    for listed in report_of(http, "FA1")["result"]:
        assert http.delete(f"/fhir/{listed['reference']}").status_code in (200, 204)
    assert live(engine, http) == [], live(engine, http)
    assert outcome(engine, b1) == "retested"


def test_relink36_a_report_stored_before_its_results_links_them(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A FHIR client stores the report first (based on B1, listing an Observation not yet stored), then
    the Observation: linked to B1 by the stored report (no report in its own write), B1 repeated, 0/1.
    The results of the message under C9 it is copied from are deleted first, so they are no test."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "C9", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    fc9 = report_of(http, "FC9")
    copied = read(http, fc9["result"][0]["reference"])
    for ref in [*(r["reference"] for r in fc9["result"]), f"DiagnosticReport/{fc9['id']}"]:
        assert http.delete(f"/fhir/{ref}").status_code in (200, 204)
    assert live(engine, http) == []
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "肝功能"},
              "subject": fc9["subject"], "basedOn": [{"reference": b1}],
              "effectiveDateTime": fc9.get("effectiveDateTime"), "result": [{"reference": "Observation/rl36-alt"}]}
    assert http.post("/fhir/DiagnosticReport", json=report, headers=FHIR).status_code == 201
    assert outcome(engine, b1) == "pending"
    res = http.put("/fhir/Observation/rl36-alt", json={**copied, "id": "rl36-alt"}, headers=FHIR)
    assert res.status_code == 201, res.text
    assert engine.recognition.index.get("Observation/rl36-alt")["order"] == b1
    assert {r["order"] for r in live(engine, http)} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"
    assert rate(engine, http) == (0, 1)


def test_relink36_a_transaction_voiding_a_report_with_its_results_unlinks(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """One transaction PUTs the report entered-in-error together with its results (unchanged): the
    results are put in the report's own write, the void report links nothing, the order they left is
    pending again. Sent once more as final: linked again, B1 repeated."""
    b1, report = linked_b1(engine, http)
    results = [read(http, r["reference"]) for r in report["result"]]

    def transaction(status: str) -> None:
        entries = [{"resource": r, "request": {"method": "PUT", "url": f"Observation/{r['id']}"}} for r in results]
        entries.append({"resource": {**report, "status": status},
                        "request": {"method": "PUT", "url": f"DiagnosticReport/{report['id']}"}})
        res = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, headers=FHIR)
        assert res.status_code == 200, res.text

    transaction("entered-in-error")
    assert {r["order"] for r in live(engine, http)} == {None}, live(engine, http)
    assert outcome(engine, b1) == "pending"
    assert rate(engine, http) == (1, 1)
    transaction("final")
    assert {r["order"] for r in live(engine, http)} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"


def test_relink36_another_patients_report_is_named_in_a_note(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Another patient's report PUT listing WANG's results and based on WANG's order B1: it links
    nothing (WANG's flag keeps the link its own report makes), and the answer says why (Prefer:
    return=OperationOutcome), naming each result; the stored report is what was sent."""
    b1, report = linked_b1(engine, http)
    send(http, result(B, "X5", LOCAL_LFT, "20260311100000+0800", person=OTHER, mrn="MRN-O-B",
                      obx=obx((ALT, "20"), (AST, "21"), when="20260311100000+0800")))
    other = report_of(http, "FX5")
    sent = {**other, "basedOn": [{"reference": b1}], "result": report["result"]}
    res = http.put(f"/fhir/DiagnosticReport/{other['id']}", json=sent, headers={**FHIR, "Prefer": "return=OperationOutcome"})
    assert res.status_code == 200, res.text
    notes = [i for i in res.json()["issue"] if "another patient" in i.get("diagnostics", "")]
    assert all(n["severity"] == "warning" for n in notes), notes
    assert sorted(r["reference"] for r in report["result"]) == sorted(
        r["reference"] for r in report["result"] if any(r["reference"] in n["diagnostics"] for n in notes)), notes
    assert read(http, f"DiagnosticReport/{other['id']}")["result"] == report["result"]
    assert {r["order"] for r in live(engine, http) if r["order"]} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"


def test_relink36_two_reports_naming_one_order_keep_the_link(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A second report (a FHIR client's summary) listing the same results and based on the same order
    B1: two reports, one order -- the link stands (only two orders for one result link none)."""
    b1, report = linked_b1(engine, http)
    summary = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "肝功能汇总"},
               "subject": report["subject"], "basedOn": [{"reference": b1}], "result": report["result"]}
    assert http.post("/fhir/DiagnosticReport", json=summary, headers=FHIR).status_code == 201
    assert {r["order"] for r in live(engine, http)} == {b1}, live(engine, http)
    assert outcome(engine, b1) == "duplicate"


def test_relink36_a_panel_s_alt_sent_again_alone_stays_in_its_test(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The liver panel drawn at 20:00 whose ALT was analysed at 01:00 the next day (rv36b's HIGH): one
    test, one flag naming B1. The ALT then corrected alone (a FHIR PUT of the Observation, no report in
    its write): its stored report still lists it, so it stays in that report's test -- one flag, the
    ALT's money once (the panel's 10.00: ALT and AST)."""
    prior(http)
    send(http, order(B, "B1", LFT, "20260311180000+0800"))
    b1 = order_ref(http, "B1")
    send(http, result(B, "B1", LFT, "20260311200000+0800",
                      obx=obx((ALT, "88"), (AST, "35"), when="20260312010000+0800")))
    [flag] = [r for r in live(engine, http) if r["status"] == "flagged"]
    assert flag["order"] == b1, flag
    alt = read(http, report_of(http, "FB1")["result"][0]["reference"])
    assert alt["effectiveDateTime"].startswith("2026-03-12"), alt
    assert engine.recognition.index.get(f"Observation/{alt['id']}")["day"] == "2026-03-11"
    value = {**alt["valueQuantity"], "value": 90}
    assert http.put(f"/fhir/Observation/{alt['id']}", json={**alt, "valueQuantity": value}, headers=FHIR).status_code == 200
    got = [r for r in live(engine, http) if r["status"] == "flagged"]
    assert [(r["order"], r["day"]) for r in got] == [(b1, "2026-03-11")], got
    assert outcome(engine, b1) == "duplicate"
    assert rate(engine, http) == (0, 1)
