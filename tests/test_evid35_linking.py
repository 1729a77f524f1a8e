"""evid35: a result sent under a local panel code is linked to its order by the order numbers.

An ORU whose OBR-4 is a local code no map knows (GAN^肝功能^L) makes a DiagnosticReport that is no
recognition item: its results, the Observations of ALT and AST, carry no ``basedOn`` of their own, so
the repeat's flag named no order, the order's check row never saw its result (outcome "pending") and
the recognition rate counted the repeated order as recognised. The report is based on the
ServiceRequest the converter keyed by the message's order numbers (ORC-2/OBR-2/OBR-3), whatever OBR-4
says; its results now take that order (``Repeats._linked``) when the order's own order-time check was
of the same person and item -- never by guessing from a code. A result whose numbers name no checked
order, or an order of another test, stays unlinked.

Real HL7 v2 (ORM^O01 or OML^O21 order, then ORU^R01) over ``POST /hl7v2`` into the real store, on SQLite
and mongomock; everything read back over HTTP (the duplicates report, FHIR reads, ``$evaluate-measure``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_probepay26_windows import order, result
from tests.test_reports_duplicates import bearer

CBC = "58410-2^CBC panel - Blood by Automated count^LN"
PRIOR_AT, ORDER_AT, REPEAT_AT = "20260310090000+0800", "20260312080000+0800", "20260312100000+0800"


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    """The demo site (FNXRMYY and FNZYY pass QC for every item) on each storage backend."""
    with Engine(backend_settings) as eng:
        yield eng


def oml(inst: str, placer: str, item: str, when: str) -> str:
    """The same new order as ``order`` (ORM^O01), sent as a laboratory order, OML^O21 (v2.5)."""
    return order(inst, placer, item, when).replace("ORM^O01^ORM_O01", "OML^O21^OML_O21")


def prior(http: TestClient) -> None:  # noqa: F811
    """FNXRMYY's liver panel of 2026-03-10 under its local code: ALT 30, AST 28."""
    send(http, result(A, "A1", LOCAL_LFT, PRIOR_AT, obx=obx((ALT, "30"), (AST, "28"), when=PRIOR_AT)))


def order_ref(http: TestClient, placer: str) -> str:  # noqa: F811
    """The ServiceRequest stored under FNZYY's placer number, found by its identifier over FHIR."""
    bundle = http.get("/fhir/ServiceRequest", params={"identifier": placer}).json()
    refs = {f"ServiceRequest/{e['resource']['id']}" for e in bundle.get("entry") or ()}
    assert len(refs) == 1, bundle
    return refs.pop()


def rows(engine: Engine, http: TestClient) -> list[dict[str, Any]]:  # noqa: F811
    return [r for r in http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
            if r["status"] != "void"]


def rate(engine: Engine, http: TestClient) -> tuple[int, int]:  # noqa: F811
    """FNZYY's recognition rate for March 2026 over ``$evaluate-measure``: (recognised, recognisable)."""
    res = http.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure",
                   params={"periodStart": "2026-03-01", "periodEnd": "2026-03-31", "reporter": B},
                   headers=bearer(engine, "system/MeasureReport.rs system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in res.json()["group"][0]["population"]}
    return counts["numerator"], counts["denominator"]


@pytest.mark.parametrize("send_order", [order, oml], ids=["ORM", "OML"])
def test_a_result_under_a_local_panel_code_is_its_orders_by_the_order_numbers(
        engine: Engine, http: TestClient, send_order: Any) -> None:  # noqa: F811
    """FNZYY orders a liver panel in LOINC (placer B1); its LIS sends the result under its own local
    code with the same numbers (ORC-2/OBR-2 B1, OBR-3 FB1). The flag names the order, the order is
    counted repeated, not recognised, and the report and its Observations all name that one order."""
    prior(http)
    ack = send(http, send_order(B, "B1", LFT, ORDER_AT))
    assert "Recognisable prior result" in ack  # the order-time check saw the prior
    ordered = order_ref(http, "B1")
    assert rate(engine, http) == (1, 1)  # placed, not yet resulted: recognised so far
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))

    [flag] = rows(engine, http)
    assert flag["item"] == "LFT" and flag["status"] == "flagged"
    assert flag["order"] == ordered, "the repeat's flag names no order"
    # the report the numbers made is based on that order; its results are now that order's too
    report = http.get(f"/fhir/{flag['result'].split('/')[0]}/{flag['result'].split('/')[1]}").json()
    assert report["resourceType"] == "Observation"
    [dr] = http.get("/fhir/DiagnosticReport", params={"identifier": "FB1"}).json()["entry"]
    assert dr["resource"]["basedOn"] == [{"reference": ordered}]
    listed = {r["reference"] for r in dr["resource"]["result"]}
    assert flag["result"] in listed
    assert {d["order"] for d in engine.recognition.index.coll.find({"inst": B})} == {ordered}
    # the order's check saw its result: repeated, so no longer counted as recognised
    assert rate(engine, http) == (0, 1)
    check = engine.recognition.checks.get(ordered)
    assert check["outcome"] == "duplicate" and check["resulted"] is True


def test_numbers_that_name_no_checked_order_of_the_test_link_nothing(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Never a guess: a result under numbers no order message placed (C9: the ORU made its order) stays
    unlinked; so does a liver panel's ALT sent under the number of a blood count's order (B2): that
    count's check is not the ALT's test, and it is not marked repeated by it."""
    prior(http)
    send(http, result(B, "C9", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    [flag] = rows(engine, http)
    assert flag["order"] is None
    assert engine.recognition.checks.get(order_ref(http, "C9")) is None

    send(http, send_order_count(http))
    count = order_ref(http, "B2")
    send(http, result(B, "B2", LOCAL_LFT, "20260313100000+0800", obx=obx((ALT, "90"), when="20260313100000+0800")))
    later = [r for r in rows(engine, http) if r["day"] == "2026-03-13"]
    assert len(later) == 1 and later[0]["item"] == "LFT" and later[0]["order"] is None
    check = engine.recognition.checks.get(count)
    assert check is not None and check["item"] == "CBC" and check["outcome"] == "pending"


def send_order_count(http: TestClient) -> str:  # noqa: F811
    """FNZYY's blood count order B2 of 2026-03-13 (no prior blood count: nothing recognisable)."""
    return order(B, "B2", CBC, "20260313080000+0800")


def test_a_later_version_sent_without_its_report_keeps_the_link(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A later or thinner message never erases what an earlier one stated: the repeat's ALT corrected
    by a FHIR client's PUT of the Observation alone (no report beside it) keeps the order its report named."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    ordered = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    [flag] = rows(engine, http)
    ref = flag["result"]
    obs = http.get(f"/fhir/{ref}").json()
    obs["valueQuantity"]["value"] = 86
    obs.pop("meta", None)
    res = http.put(f"/fhir/{ref}", json=obs, headers={"Content-Type": "application/fhir+json"})
    assert res.status_code == 200, res.text
    assert engine.recognition.index.get(ref)["order"] == ordered
    [again] = rows(engine, http)
    assert again["order"] == ordered and again["status"] == "flagged"
