"""rvevid35: probes of evid35's order link for a result under an unmapped local panel code.

A flag costs a hospital money, so the link of a result to its order (``Repeats._linked``) must never
join the wrong order: another person's, another institution's, a cancelled one, or lose a re-test
reason the order stated. Real HL7 v2 over ``POST /hl7v2`` into the real store, both backends; read back
over HTTP and from the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate, rows
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, http, obx, send  # noqa: F401
from tests.test_probepay26_windows import order, result

ORDER_AT, REPEAT_AT = "20260312080000+0800", "20260312100000+0800"
OTHER = "320923198504120036"  # another resident of the county, born the same day
SYS = "urn:huren:recognition-reason"


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def live(engine: Engine, http: TestClient) -> list[dict[str, Any]]:  # noqa: F811
    return [r for r in rows(engine, http) if r["status"] not in ("cancelled", "overturned")]


def test_rvevid35_justified_repeat_stays_justified_once_linked(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The order states a valid re-test reason (R01 condition changed, ORC-16): the repeat under the
    local code, now linked to that order, must be a justified repeat, not a flag costing money."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT, reason="R01^病情变化^" + SYS))
    ordered = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    got = live(engine, http)
    assert all(r["order"] == ordered for r in got), got
    assert not [r for r in got if r["status"] == "flagged"], got
    check = engine.recognition.checks.get(ordered)
    assert check["outcome"] != "duplicate", check


def test_rvevid35_another_persons_order_with_the_same_placer_is_not_linked(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """WANG's order B1 at FNZYY; another person's result is sent at FNZYY under the same placer number
    B1 (a HIS reusing numbers, or a typo). WANG's order must not be marked repeated by it, and no flag
    of the other person may name WANG's order."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    wangs = order_ref(http, "B1")
    # the other person has a prior of their own so their result is a repeat
    send(http, result(A, "A7", LOCAL_LFT, "20260310090000+0800", person=OTHER, mrn="MRN-O-A",
                      obx=obx((ALT, "31"), (AST, "29"), when="20260310090000+0800")))
    ack = http.post("/hl7v2", content=result(B, "B1", LOCAL_LFT, REPEAT_AT, person=OTHER, mrn="MRN-O-B",
                                            obx=obx((ALT, "70"), (AST, "33"))).replace("\n", "\r").encode(),
                    headers={"Content-Type": "x-application/hl7-v2+er7"}).text
    assert "MSA|AE" in ack and "OBR^1^2" in ack, ack  # refused: the number names another patient's order
    assert all(r["order"] != wangs for r in rows(engine, http) if r.get("person") != "x")
    check = engine.recognition.checks.get(wangs)
    assert check["outcome"] == "pending", check
    assert rate(engine, http) == (1, 1)


def test_rvevid35_another_institutions_order_with_the_same_placer_is_not_linked(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """FNXRMYY's order B1 (its own HIS, namespace HIS) and FNZYY's result under its own B1: two
    institutions' numbers, two orders. FNXRMYY's order must not be marked repeated by FNZYY's result."""
    prior(http)
    send(http, order(A, "B1", LFT, ORDER_AT))
    ref_a = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    for r in rows(engine, http):
        assert r["order"] != ref_a or r["inst"] == A, r
    check = engine.recognition.checks.get(ref_a)
    assert check is None or check["outcome"] != "duplicate", check


def test_rvevid35_corrected_result_keeps_one_linked_flag(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The repeat's result corrected (OBR-25 C) under the same numbers: one flag, still its order's,
    the check still 'duplicate', the rate still 0/1."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    ordered = order_ref(http, "B1")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, status="C", obx=obx((ALT, "86"), (AST, "35"))))
    got = live(engine, http)
    assert len(got) == 1 and got[0]["order"] == ordered and got[0]["status"] == "flagged", got
    assert engine.recognition.checks.get(ordered)["outcome"] == "duplicate"
    assert rate(engine, http) == (0, 1)


def test_rvevid35_two_orders_same_test_link_only_the_named_one(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Two liver-panel orders of the same person the same day (B1, B3); the result names B3. Only B3 is
    linked and repeated; B1 stays pending."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    send(http, order(B, "B3", LFT, "20260312081000+0800"))
    b1, b3 = order_ref(http, "B1"), order_ref(http, "B3")
    send(http, result(B, "B3", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    got = live(engine, http)
    assert {r["order"] for r in got} == {b3}, got
    assert engine.recognition.checks.get(b3)["outcome"] == "duplicate"
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"


@pytest.mark.parametrize("code", [LFT, LOCAL_LFT], ids=["loinc", "local"])
def test_rvevid35_cancelled_order_then_result_as_under_a_mapped_code(engine: Engine, http: TestClient, code: str) -> None:  # noqa: F811
    """Order B1 reminded, then cancelled (ORC-1 CA: counted recognised), then a result under the same
    numbers anyway (the LIS ran it; the ORU completes the order). The link of a local-code result must
    reach exactly what a mapped code's report already reached: the order 'duplicate', one flag naming it."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    ordered = order_ref(http, "B1")
    send(http, order(B, "B1", LFT, "20260312083000+0800", control="CA"))
    assert engine.recognition.checks.get(ordered)["outcome"] == "recognised"
    send(http, result(B, "B1", code, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert engine.recognition.checks.get(ordered)["outcome"] == "duplicate"
    assert [(r["order"], r["status"]) for r in live(engine, http)] == [(ordered, "flagged")]
    assert rate(engine, http) == (0, 1)


def test_rvevid35_a_report_corrected_to_another_order_relinks_its_results(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Two liver-panel orders (B1, B3). The result came under B1's numbers and was linked to B1; the
    LIS (or a FHIR client) corrects the report: it was B3's (PUT of the DiagnosticReport, basedOn B3,
    the same results). The flag must now name B3, B3's check be the repeated one, B1's back to pending."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    send(http, order(B, "B3", LFT, "20260312081000+0800"))
    b1, b3 = order_ref(http, "B1"), order_ref(http, "B3")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert {r["order"] for r in live(engine, http)} == {b1}
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": "FB1"}).json()["entry"]
    dr = entry["resource"]
    dr["basedOn"] = [{"reference": b3}]
    dr.pop("meta", None)
    res = http.put(f"/fhir/DiagnosticReport/{dr['id']}", json=dr, headers={"Content-Type": "application/fhir+json"})
    assert res.status_code == 200, res.text
    assert http.get(f"/fhir/DiagnosticReport/{dr['id']}").json()["basedOn"] == [{"reference": b3}]
    assert {r["order"] for r in live(engine, http)} == {b3}
    assert engine.recognition.checks.get(b3)["outcome"] == "duplicate"
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"
