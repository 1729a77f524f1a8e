"""link36: a result message that makes its own order's check row links an earlier report's results at once.

linkfix35 re-linked the results a report lists at two moments -- the report's write, and an order's check
row written after it -- but skipped the second whenever the write group carried a report based on the
order (a result message checking its own copy of the order). So when the order was first *checked* by a
later result message (the LIS's preliminary report under the placer number and a local panel code no map
knows, no recognition item: nothing checked; then its final report under the filler number, coded), the
earlier report's results stayed nobody's: their index entries named no order, and where they were a test
of their own the flag named none. The one rule (``Repeats.relink_listed`` / ``_linked``) now runs at that
third moment too; the search is skipped only for an order no earlier write stored (nothing earlier could be
based on it: every lab message of the bench).

The preliminary names the test by text alone (OBR-4 ``^肝功能``): the final report's coding then fills the
order's code (``MergeRules._concept_union``: nothing coded there to be another test of). Under a local code
no map knows (``GAN^肝功能^L``) the final's LOINC is not evidence of the same test and is not added (mixfix36,
rv36a LOW): the order never becomes a recognition item, no check row is made and nothing is linked to it --
pinned by the last test here, never a guess from the report's code (linkjoin36).

Real HL7 v2 over ``POST /hl7v2`` into the real store, on SQLite and mongomock; read back over HTTP (the
duplicates report, the signed deduction list, ``$evaluate-measure``, FHIR reads) and the index.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine import fhirjson
from engine.engine import Engine
from engine.insurance.deductions import verify_bundle
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate, rows
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, B, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_probepay26_windows import msh, pid
from tests.test_reports_duplicates import bearer

TEXT_LFT = "^肝功能"  # the LIS's preliminary OBR-4: the test by text alone, no coding (a result's coding fills it)
ORDER_AT, FIRST_AT = "20260312080000+0800", "20260312100000+0800"


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def oru(placer: str, filler: str, item: str, when: str, results: str, placed: str = "") -> str:
    """FNZYY's LIS result of order ``placer`` (ORC-2/OBR-2), numbered ``filler`` by the lab (OBR-3; "" for a
    report sent before the lab numbered it), OBR-4 ``item``, observed ``when``; ORC-9 ``placed`` when the
    LIS copies the order's time."""
    fill = f"{filler}^LIS" if filler else ""
    return (msh(B, "LIS", "ORU^R01^ORU_R01", when) + pid(B)
            + f"ORC|RE|{placer}^HIS|{fill}||CM||||{placed}\n"
            + f"OBR|1|{placer}^HIS|{fill}|{item}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + results.format(s="F") + f"|||{when}\n")


def listed_orders(engine: Engine, http: TestClient, report: dict[str, Any]) -> list[str | None]:  # noqa: F811
    """The order each result ``report`` lists is linked to, as the index holds it."""
    return [engine.recognition.index.get(r["reference"])["order"] for r in report["result"]]


def preliminary(http: TestClient) -> dict[str, Any]:  # noqa: F811
    """The LIS's first report of order B1, before the lab numbered it, naming the panel by text alone: the
    report keyed by the placer number, based on B1's ServiceRequest (stored uncoded: no item, nothing checked)."""
    send(http, oru("B1", "", TEXT_LFT, FIRST_AT, obx((ALT, "88"), (AST, "35"), when=FIRST_AT)))
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": "B1"}).json()["entry"]
    return entry["resource"]


def test_an_earlier_report_of_the_order_is_linked_when_a_later_result_message_checks_it(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """B1's preliminary report (text alone, placer number only) names no checked order: its ALT and AST are
    nobody's. The final report comes under the filler number FB1, coded (LOINC liver panel), with the order's
    time: its copy of B1 makes B1's check row -- and B1's earlier report's results are linked to B1 at once,
    not when they are next written. One test (the same day): the flag names B1, B1 is the repeated order, 0/1."""
    prior(http)
    first = preliminary(http)
    b1 = order_ref(http, "B1")
    assert first["basedOn"] == [{"reference": b1}]
    assert engine.recognition.checks.get(b1) is None
    assert listed_orders(engine, http, first) == [None, None]
    send(http, oru("B1", "FB1", LFT, "20260312110000+0800", obx((ALT, "90"), (AST, "36"),
                                                                  when="20260312110000+0800"), placed=ORDER_AT))
    assert engine.recognition.checks.get(b1)["item"] == "LFT"
    assert listed_orders(engine, http, first) == [b1, b1], "the earlier report's results stayed nobody's"
    [flag] = rows(engine, http)
    assert flag["order"] == b1 and flag["status"] == "flagged", flag
    assert engine.recognition.checks.get(b1)["outcome"] == "duplicate"
    assert rate(engine, http) == (0, 1)


def deductions(engine: Engine, http: TestClient) -> tuple[bytes, list[list[str]]]:  # noqa: F811
    """FNZYY's signed deduction list for March 2026: its bytes and its CSV's rows."""
    res = http.get("/reports/deductions", params={"institution": B, "month": "2026-03"},
                   headers=bearer(engine, "system/DetectedIssue.rs"))
    assert res.status_code == 200, res.text
    bundle = fhirjson.loads(res.content)
    text = base64.b64decode(bundle["entry"][-1]["resource"]["data"]).decode("utf-8")
    return res.content, [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if r]


def test_the_earlier_tests_flag_and_its_deduction_move_with_the_link_a_signed_list_stays(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The preliminary report's test (03-12) is a flag of its own, naming no order; an auditor upholds it and
    the month's deduction list is signed with its 医嘱 blank. B1's next report is of a specimen taken the next
    day (another test), and its copy of B1 makes B1's check row: the 03-12 flag now names B1 at once, and a
    list requested now says B1 in that row's 医嘱 (same amount). The list signed before is not rewritten: it
    still verifies; the later one, with the same identifier and a later timestamp, carries the flag's
    DetectedIssue as a later version -- which rows changed since a signed copy is told by that version."""
    prior(http)
    preliminary(http)
    b1 = order_ref(http, "B1")
    [flag] = rows(engine, http)
    assert flag["order"] is None and flag["day"] == "2026-03-12"
    reviewed = http.post(f"/reports/duplicates/{flag['id']}/review", json={"decision": "upheld", "reason": "复核属实"},
                         headers=bearer(engine))
    assert reviewed.status_code == 200, reviewed.text
    signed, before = deductions(engine, http)
    column = before[0].index("医嘱")
    assert [r[column] for r in before[1:-1]] == [""]

    send(http, oru("B1", "FB1", LFT, "20260313090000+0800", obx((ALT, "90"), (AST, "36"),
                                                                  when="20260313090000+0800"), placed=ORDER_AT))
    by_day = {r["day"]: r for r in rows(engine, http)}
    assert by_day["2026-03-12"]["order"] == b1, by_day["2026-03-12"]
    assert by_day["2026-03-12"]["status"] == "upheld"  # its prior and reason stand: the review stands
    again, after = deductions(engine, http)
    assert [r[column] for r in after[1:-1]] == [b1]
    amount = before[0].index(next(h for h in before[0] if "金额" in h))
    assert [r[amount] for r in after[1:-1]] == [r[amount] for r in before[1:-1]]

    keys = engine.audit.keys
    assert verify_bundle(signed, keys) and verify_bundle(again, keys)
    old, new = fhirjson.loads(signed), fhirjson.loads(again)
    assert old["identifier"] == new["identifier"] and new["timestamp"] >= old["timestamp"]

    def issue(bundle: dict[str, Any]) -> dict[str, Any]:
        [res] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
        return res

    # the version, not the time (the Bundle's timestamp is to the second): a later version of the flag
    assert int(issue(new)["meta"]["versionId"]) > int(issue(old)["meta"]["versionId"])


def test_a_result_message_making_a_new_order_links_its_own_results(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The skip kept: a result message whose order no earlier write stored (the LIS's coded report under new
    numbers C1/FC1) links what it lists as it puts it; the flag names C1 and C1 is checked and repeated."""
    prior(http)
    send(http, oru("C1", "FC1", LOCAL_LFT, FIRST_AT, obx((ALT, "88"), (AST, "35"), when=FIRST_AT), placed=ORDER_AT)
         .replace(f"|{LOCAL_LFT}|", f"|{LFT}|"))
    c1 = order_ref(http, "C1")
    [flag] = rows(engine, http)
    assert flag["order"] == c1 and flag["status"] == "flagged"
    assert engine.recognition.checks.get(c1)["outcome"] == "duplicate"


def test_both_reports_in_one_batch_link_the_same(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The preliminary and the final report in one HL7 batch (FHS/BHS: one transaction, the hook's rows kept
    for the batch): the final report's copy of B1 makes its check row, and the preliminary's results, stored
    earlier in the same batch, are linked as at once as across two requests."""
    prior(http)
    first = oru("B1", "", TEXT_LFT, FIRST_AT, obx((ALT, "88"), (AST, "35"), when=FIRST_AT))
    final = oru("B1", "FB1", LFT, "20260312110000+0800", obx((ALT, "90"), (AST, "36"), when="20260312110000+0800"),
                placed=ORDER_AT)
    body = (f"FHS|^~\\&|LIS|{B}\nBHS|^~\\&|LIS|{B}\n" + first + final + "BTS|2\nFTS|1\n").replace("\n", "\r")
    res = http.post("/hl7v2", content=body.encode(), headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert res.status_code == 200 and res.text.count("MSA|AA") == 2, res.text
    b1 = order_ref(http, "B1")
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": "B1"}).json()["entry"]
    assert listed_orders(engine, http, entry["resource"]) == [b1, b1]
    [flag] = rows(engine, http)
    assert flag["order"] == b1 and engine.recognition.checks.get(b1)["outcome"] == "duplicate"
    assert rate(engine, http) == (0, 1)


def test_an_orders_own_earlier_result_is_no_recognisable_prior_of_it(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """No prior anywhere: B1's preliminary report (03-12, text alone), then its next report (03-13, coded) whose
    copy of B1 carries no ORC-9, so B1 is dated by that specimen, after its own earlier result. B1's check is made
    before that result is linked to it: it listed the result as a recognisable prior -- a reminder in the ACK, the
    order counted recognisable, then re-tested by its own results (0/1). Once linked, its own result is no prior:
    nothing recognisable, no reminder, no flag, the rate 0 of 0."""
    first = preliminary(http)
    ack = send(http, oru("B1", "FB1", LFT, "20260313090000+0800", obx((ALT, "90"), (AST, "36"),
                                                                        when="20260313090000+0800")))
    b1 = order_ref(http, "B1")
    assert listed_orders(engine, http, first) == [b1, b1]
    assert "Recognisable prior result" not in ack, ack
    check = engine.recognition.checks.get(b1)
    assert check["recognisable"] == [] and check["issue"] is None, check
    assert rows(engine, http) == []
    assert rate(engine, http) == (0, 0)


def test_an_order_under_a_code_no_map_knows_is_not_made_a_test_by_its_reports_code(
        engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The preliminary under the LIS's local code GAN, which no code map knows, then the final report coded
    (LOINC liver panel): the final's coding is not evidence that GAN is that test, so it is not added to B1's
    code (mixfix36) and B1 is never an LFT order -- no check row, and the earlier
    report's results are linked to no order, not to one guessed from the later report's code."""
    prior(http)
    send(http, oru("B1", "", LOCAL_LFT, FIRST_AT, obx((ALT, "88"), (AST, "35"), when=FIRST_AT)))
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": "B1"}).json()["entry"]
    send(http, oru("B1", "FB1", LFT, "20260312110000+0800", obx((ALT, "90"), (AST, "36"),
                                                                  when="20260312110000+0800"), placed=ORDER_AT))
    b1 = order_ref(http, "B1")
    assert [c.get("code") for c in http.get(f"/fhir/{b1}").json()["code"]["coding"]] == ["GAN"]
    assert engine.recognition.checks.get(b1) is None
    assert listed_orders(engine, http, entry["resource"]) == [None, None]
