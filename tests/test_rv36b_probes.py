"""rv36b: probes of the thirty-fifth round's unreviewed merges (linkfix35's relink, the lead's
``_reports_the_item`` and repeated-header fixes, uifix35's evidence page, the last-read mends).

A flag costs a hospital money, so the link of a result to its order must follow what the stored
records say, and never be decided by a record that is void or of another person. Real HL7 v2 over
``POST /hl7v2``, FHIR over TestClient, the real store, both backends.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_evid35_linking import order_ref, prior, rate, rows
from tests.test_evidence33_page import SIZES, _shot_of, _shots
from tests.test_evidence33_pairs import ALT, AST, LFT, LOCAL_LFT, A, B, evidence, http, obx, send  # noqa: F401 (``http``: the fixture)
from tests.test_evpage34_evidence import flag_of
from tests.test_evpfix34_page import _open
from tests.test_insurance_ui import sign_in
from tests.test_linkfix35_relink import FHIR, ORDER_AT, REPEAT_AT, live
from tests.test_probepay26_windows import order, result
from tests.test_reports_ui import CHROMIUM, Browser, browser, server  # noqa: F401 - fixtures
from tests.test_uifix35_evidence_page import LOCAL_HBV, _terms

OTHER = "320923198504120036"  # another resident of the county


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def report_of(http: TestClient, filler: str) -> dict[str, Any]:  # noqa: F811
    [entry] = http.get("/fhir/DiagnosticReport", params={"identifier": filler}).json()["entry"]
    return {k: v for k, v in entry["resource"].items() if k != "meta"}


def put(http: TestClient, report: dict[str, Any]) -> Any:  # noqa: F811
    return http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report, headers=FHIR)


def unlinked_c9(engine: Engine, http: TestClient) -> tuple[str, dict[str, Any]]:  # noqa: F811
    """Order B1 (liver panel); the result came under numbers no order placed (C9): unlinked, 1/1."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    b1 = order_ref(http, "B1")
    send(http, result(B, "C9", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert {r["order"] for r in live(engine, http)} == {None}
    assert rate(engine, http) == (1, 1)
    return b1, report_of(http, "FC9")


# --- linkfix35: what a report at hand may decide ------------------------------------------------

@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_rv36b_a_void_report_links_nothing(engine: Engine, http: TestClient, status: str) -> None:  # noqa: F811
    """A report PUT as void (entered in error, cancelled) and based on B1 is no statement that its
    results are B1's: B1 must stay pending, the flag name no order, the rate stay 1/1."""
    b1, report = unlinked_c9(engine, http)
    res = put(http, {**report, "status": status, "basedOn": [{"reference": b1}]})
    assert res.status_code == 200, res.text
    assert {r["order"] for r in live(engine, http)} == {None}, live(engine, http)
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"
    assert rate(engine, http) == (1, 1)


def test_rv36b_a_report_voided_after_linking_takes_its_link_back(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Linked by a report PUT based on B1; the same report then marked entered-in-error (still listing
    its results, still based on B1): the link it made must go with it."""
    b1, report = unlinked_c9(engine, http)
    linked = {**report, "basedOn": [{"reference": b1}]}
    assert put(http, linked).status_code == 200
    assert {r["order"] for r in live(engine, http)} == {b1}
    assert put(http, {**linked, "status": "entered-in-error"}).status_code == 200
    assert {r["order"] for r in live(engine, http)} == {None}, live(engine, http)
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"
    assert rate(engine, http) == (1, 1)


def test_rv36b_a_deleted_report_takes_its_link_back(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Linked by a report PUT based on B1; the report is then deleted (FHIR DELETE): nothing says any
    more that the results are B1's, so the link must not outlive it."""
    b1, report = unlinked_c9(engine, http)
    assert put(http, {**report, "basedOn": [{"reference": b1}]}).status_code == 200
    assert {r["order"] for r in live(engine, http)} == {b1}
    res = http.delete(f"/fhir/DiagnosticReport/{report['id']}")
    assert res.status_code in (200, 204), res.text
    assert {r["order"] for r in live(engine, http)} == {None}, live(engine, http)
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"


def test_rv36b_a_report_dropping_its_results_takes_their_link_back(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Linked by a report PUT based on B1; the report corrected to list none of those results (they
    were not this report's): results no report lists must not stay on B1."""
    b1, report = unlinked_c9(engine, http)
    assert put(http, {**report, "basedOn": [{"reference": b1}]}).status_code == 200
    assert {r["order"] for r in live(engine, http)} == {b1}
    res = put(http, {k: v for k, v in {**report, "basedOn": [{"reference": b1}]}.items() if k != "result"})
    assert res.status_code == 200, res.text
    assert {r["order"] for r in live(engine, http)} == {None}, live(engine, http)
    assert engine.recognition.checks.get(b1)["outcome"] == "pending"


def test_rv36b_another_patients_report_cannot_link_a_result(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A report of another patient (its subject not the Observations') listing this person's results
    and based on this person's order B1: a report about someone else says nothing of whose order these
    results are. Either the write is refused, or nothing moves."""
    b1, report = unlinked_c9(engine, http)
    send(http, result(B, "X5", LOCAL_LFT, "20260311100000+0800", person=OTHER, mrn="MRN-O-B",
                      obx=obx((ALT, "20"), (AST, "21"), when="20260311100000+0800")))
    other = report_of(http, "FX5")
    assert other["subject"] != report["subject"]
    res = put(http, {**other, "basedOn": [{"reference": b1}], "result": report["result"]})
    if res.status_code == 200:
        assert {r["order"] for r in live(engine, http) if r.get("order")} == set(), live(engine, http)
        assert engine.recognition.checks.get(b1)["outcome"] == "pending"
    else:
        assert res.status_code in (400, 409, 422), res.text


# --- 82775c00: one Authorization field ---------------------------------------------------------

def _basic(cid: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()


@pytest.fixture
def bare(engine: Engine) -> Iterator[TestClient]:
    """The app with no default header (each request says its own Authorization fields)."""
    with TestClient(create_app(engine)) as client:
        yield client


def test_rv36b_two_bearer_fields_are_refused_on_fhir(engine: Engine, bare: TestClient) -> None:
    """Two Authorization fields on /fhir (even the same token twice): 401 with an OperationOutcome and
    a Bearer challenge -- and one field still opens the API (the refusal is the second field's)."""
    token = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
    one = bare.get("/fhir/Patient", headers=[("Authorization", token)])
    assert one.status_code == 200, one.text
    two = bare.get("/fhir/Patient", headers=[("Authorization", token), ("Authorization", token)])
    assert two.status_code == 401, two.text
    assert two.json()["resourceType"] == "OperationOutcome"
    assert two.headers["www-authenticate"].lower().startswith("bearer")


def test_rv36b_two_basic_fields_at_the_token_endpoint_are_refused(engine: Engine, bare: TestClient) -> None:
    """Two clients' Basic credentials in two Authorization fields (a proxy adding its own): RFC 9110
    makes Authorization one field, RFC 6749 2.3 one method -- refused (400 invalid_request or 401
    invalid_client), never a token for the first."""
    his = engine.auth.registry.add("his-a", scopes=["system/*.cruds"], kind="system")
    lis = engine.auth.registry.add("lis-b", scopes=["system/Observation.rs"], kind="system")
    res = bare.post("/auth/token", data={"grant_type": "client_credentials"},
                    headers=[("Authorization", _basic("his-a", his)), ("Authorization", _basic("lis-b", lis))])
    assert res.status_code in (400, 401), res.text
    assert "access_token" not in res.text


def test_rv36b_if_none_match_over_two_fields_answers_304(engine: Engine, bare: TestClient) -> None:
    """If-None-Match is a list: its current version named in a second field is a match (304), a
    version named in neither is not (200)."""
    token = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
    engine.repository.update({"resourceType": "Basic", "id": "rv36b", "code": {"text": "x"}})
    got = bare.get("/fhir/Basic/rv36b", headers=[("Authorization", token)])
    etag = got.headers["etag"]
    hit = bare.get("/fhir/Basic/rv36b", headers=[("Authorization", token), ("If-None-Match", 'W/"999"'),
                                                  ("If-None-Match", etag)])
    assert hit.status_code == 304, hit.text
    miss = bare.get("/fhir/Basic/rv36b", headers=[("Authorization", token), ("If-None-Match", 'W/"999"'),
                                                   ("If-None-Match", 'W/"998"')])
    assert miss.status_code == 200, miss.text


# --- 8f7d9347: a report that is itself the test's entry ------------------------------------------

def test_rv36b_a_panel_analysed_after_midnight_is_one_test(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """A liver panel ordered in the evening (B1), drawn at 20:00 (OBR-7 the 11th), its ALT analysed at
    01:00 (OBX-14 the 12th), the report under the panel's LOINC: one performed test. The lead's fix
    stops its ALT being linked through the report (a second flag naming B1); one live flag must
    remain, naming B1, B1 the repeated order, 0/1 -- not a second one for the ALT's own day."""
    prior(http)
    send(http, order(B, "B1", LFT, "20260311180000+0800"))
    b1 = order_ref(http, "B1")
    send(http, result(B, "B1", LFT, "20260311200000+0800",
                      obx=obx((ALT, "88"), (AST, "35"), when="20260312010000+0800")))
    got = [r for r in live(engine, http) if r["status"] == "flagged"]
    assert [r["order"] for r in got] == [b1], [(r["day"], r["order"], r.get("price"), r.get("analytes")) for r in got]
    assert engine.recognition.checks.get(b1)["outcome"] == "duplicate"
    assert rate(engine, http) == (0, 1)


def test_rv36b_a_second_report_does_not_take_the_link_by_arriving_last(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """The LIS's report FB1 (based on B1) lists ALT and AST, linked to B1. Another report -- a FHIR
    client's summary, created apart -- lists the same results and is based on B3 (the same person's
    second liver-panel order). Two stored reports now name two orders for one result: by evid35's own
    rule ("two such orders for one result link none") the result is not moved to B3 because the second
    report was written last, and B3 is not made the repeated order while FB1 still says B1."""
    prior(http)
    send(http, order(B, "B1", LFT, ORDER_AT))
    send(http, order(B, "B3", LFT, "20260312081000+0800"))
    b1, b3 = order_ref(http, "B1"), order_ref(http, "B3")
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    assert {r["order"] for r in live(engine, http)} == {b1}
    fb1 = report_of(http, "FB1")
    summary = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "肝功能汇总"},
               "subject": fb1["subject"], "basedOn": [{"reference": b3}], "result": fb1["result"]}
    res = http.post("/fhir/DiagnosticReport", json=summary, headers=FHIR)
    assert res.status_code == 201, res.text
    assert engine.recognition.checks.get(b3)["outcome"] == "pending", engine.recognition.checks.get(b3)
    assert {r["order"] for r in live(engine, http)} in ({b1}, {None}), live(engine, http)


# --- uifix35: the evidence page's values -------------------------------------------------------

@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_rv36b_a_titer_is_shown_on_the_evidence_page(engine: Engine, http: TestClient, server: str,  # noqa: F811
                                                     browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    """The prior HBsAg a coded 阴性, the repeat reported as a titer (SN ``^1^:^320``, a valueRatio): the
    auditor's 结果 Value of the repeat says 1:320 -- a result with no value is no evidence."""
    send(http, result(A, "A1", LOCAL_HBV, "20260310090000+0800", obx="OBX|1|CWE|5196-1^HBsAg^LN||NEG^阴性^HL70078||||||{s}"))
    send(http, order(B, "B1", "5196-1^HBsAg^LN", "20260312080000+0800"))
    send(http, result(B, "B1", LOCAL_HBV, "20260312100000+0800", obx="OBX|1|SN|5196-1^HBsAg^LN||^1^:^320||||||{s}"))
    row = flag_of(engine, http, "HBV")
    ev = evidence(engine, http, row["id"])
    assert ev["resultResource"]["valueRatio"]["numerator"]["value"] == 1, ev["resultResource"]
    width, height, mobile = SIZES["desktop"]
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    sign_in(browser, server, engine, "/ui/duplicates", "rv36b.titer", "auditor")
    _open(browser, row["id"])
    repeat = _terms(browser, "#ev-repeat-words")
    _shot_of(browser, "#evidence", _shots(tmp_path) / "rv36b-titer-evidence.png")
    assert repeat.get("结果 Value") in ("1:320", "1/320"), repeat


def test_rv36b_an_order_checked_after_its_result_is_not_recognisable_by_it(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Guard (linkfix35's first moment): the result under B1's numbers came before the order message.
    When B1 is checked, what was recognisable is the prior (FNXRMYY's panel of the 10th) alone -- never
    B1's own result, stored earlier but performed after the order was placed; and the flag's prior is
    that panel's, not B1's own result."""
    prior(http)
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, obx=obx((ALT, "88"), (AST, "35"))))
    own = {r["reference"] for r in report_of(http, "FB1")["result"]}
    send(http, order(B, "B1", LFT, ORDER_AT))
    check = engine.recognition.checks.get(order_ref(http, "B1"))
    assert check["recognisable"] and not own & set(check["recognisable"]), (own, check["recognisable"])
    [flag] = live(engine, http)
    assert (flag["prior_institution"], flag["prior_day"]) == ("FNXRMYY", "2026-03-10"), flag


def test_rv36b_an_order_checked_later_never_takes_another_persons_result(engine: Engine, http: TestClient) -> None:  # noqa: F811
    """Guard (linkfix35's order-time search): another person's result came first under numbers B1 (a
    HIS reusing numbers); then WANG's order B1. Whether the order is taken or refused, WANG's order is
    never made repeated by the other person's result, and no flag of the other person names it."""
    send(http, result(B, "A7", LOCAL_LFT, "20260310090000+0800", person=OTHER, mrn="MRN-O-B",
                      obx=obx((ALT, "31"), (AST, "29"), when="20260310090000+0800")))
    send(http, result(B, "B1", LOCAL_LFT, REPEAT_AT, person=OTHER, mrn="MRN-O-B", obx=obx((ALT, "70"), (AST, "33"))))
    prior(http)
    ack = http.post("/hl7v2", content=order(B, "B1", LFT, ORDER_AT).replace("\n", "\r").encode(),
                    headers={"Content-Type": "x-application/hl7-v2+er7"}).text
    wangs = [c for c in engine.recognition.checks.find({}) if c.get("source") == "order" and c.get("person") != OTHER]
    assert wangs or "MSA|AE" in ack or "MSA|AR" in ack, ack  # the order taken (checked), or refused
    for check in wangs:
        assert check["outcome"] != "duplicate", (ack, check)
        assert all(r["order"] != check["_id"] for r in rows(engine, http)), (ack, rows(engine, http))
