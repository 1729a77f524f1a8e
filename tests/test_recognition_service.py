"""The write hook on the real repository and SQLite store: order-time reminders, duplicate flags,
reasons, corrections, cancellations, reviews — hospital A's result, hospital B's order."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.detectedissue import DetectedIssue

from engine.errors import BadRequest, Unprocessable
from engine.insurance.tiers import stored_fen
from engine.recognition.detected_issues import issue_id
from tests.test_recognition_world import ALICE, BOB, A, B, C, World, cbc, lft


@pytest.fixture
def world(engine: Any) -> World:
    return World(engine)


def issues_of(engine: Any) -> list[dict[str, Any]]:
    return engine.repository.search("DetectedIssue", [("_count", "100")]).resources


def flags(engine: Any) -> list[dict[str, Any]]:
    return engine.recognition.flags.find({})


def test_order_inside_window_gets_reminder_and_result_is_flagged(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    order_a = world.order(A, pa, cbc(A), "2026-03-10T08:00:00+08:00")
    assert order_a.issues == []  # nothing to recognise yet
    first = world.report(A, pa, cbc(A), "2026-03-10T09:30:00+08:00", order=order_a)
    assert first.issues == []

    order_b = world.order(B, pb, cbc(B), "2026-03-14T10:00:00+08:00")
    [warning] = order_b.issues
    assert warning["severity"] == "warning"
    reminder_id = issue_id("rec", f"ServiceRequest/{order_b.resource['id']}")
    assert f"DetectedIssue/{reminder_id}" in warning["diagnostics"]
    assert f"DiagnosticReport/{first.resource['id']}" in warning["diagnostics"]
    reminder = engine.repository.read("DetectedIssue", reminder_id)
    assert reminder["code"]["coding"][0]["code"] == "recognisable-prior-result"
    assert [i["reference"] for i in reminder["implicated"]] == [
        f"ServiceRequest/{order_b.resource['id']}", f"DiagnosticReport/{first.resource['id']}"]
    DetectedIssue.model_validate(reminder)

    repeat = world.report(B, pb, cbc(B), "2026-03-14T11:00:00+08:00", order=order_b)
    [flag_warning] = repeat.issues
    assert "not payable" in flag_warning["diagnostics"]
    [row] = flags(engine)
    assert row["status"] == "flagged"
    assert (row["inst"], row["prior_inst"], row["day"], row["prior_day"]) == (B, A, "2026-03-14", "2026-03-10")
    assert (row["item"], row["window"], stored_fen(row["price"]), row["currency"]) == ("CBC", 7, 20.0, "CNY")
    flag = engine.repository.read("DetectedIssue", row["_id"])
    DetectedIssue.model_validate(flag)
    assert (flag["status"], flag["severity"]) == ("preliminary", "high")
    assert flag["code"]["coding"][0]["code"] == "duplicate-test"
    evidence = {e["url"]: e for e in flag["extension"][0]["extension"]}
    assert evidence["priorResult"]["valueReference"]["reference"] == f"DiagnosticReport/{first.resource['id']}"
    assert evidence["repeatResult"]["valueReference"]["reference"] == f"DiagnosticReport/{repeat.resource['id']}"
    assert evidence["priorInstitution"]["valueIdentifier"]["value"] == A
    assert evidence["repeatInstitution"]["valueIdentifier"]["value"] == B
    assert evidence["windowDays"]["valueInteger"] == 7
    assert evidence["price"]["valueMoney"] == {"value": 20.0, "currency": "CNY"}
    assert engine.recognition.checks.get(f"ServiceRequest/{order_b.resource['id']}")["outcome"] == "duplicate"
    dup = engine.recognition.flag(row["_id"])
    assert dup is not None and (dup.status, dup.institution, dup.prior_institution, dup.window_days, dup.price) == (
        "flagged", B, A, 7, 20.0)
    assert dup.as_doc() == row


def test_order_outside_window_is_neither_reminded_nor_flagged(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:30:00+08:00")
    late = world.order(B, pb, cbc(B), "2026-03-18T08:00:00+08:00")  # 8 days > 7
    assert late.issues == []
    assert world.report(B, pb, cbc(B), "2026-03-18T09:00:00+08:00", order=late).issues == []
    assert flags(engine) == [] and issues_of(engine) == []


def test_window_is_counted_in_the_institutions_local_days(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    # 2026-03-10 23:30 in Shanghai is 15:30Z; written in UTC it must still be the 10th locally.
    world.report(A, pa, cbc(A), "2026-03-10T15:30:00Z")
    assert world.order(B, pb, cbc(B), "2026-03-17T07:00:00+08:00").issues != []  # 7 days: inside
    assert world.order(B, pb, cbc(B), "2026-03-18T07:00:00+08:00").issues == []  # 8 days


def test_without_qc_nothing_is_recognisable(engine: Any, world: World) -> None:
    pc, pb = world.patient(C, ALICE, mrn="C-1"), world.patient(B, ALICE, mrn="B-0001")
    world.report(C, pc, World.code(C, "GGN", "肝功能", "24325-3"), "2026-03-10T09:00:00+08:00")  # C has no LFT QC
    order = world.order(B, pb, lft(B), "2026-03-12T08:00:00+08:00")
    assert order.issues == []
    assert world.report(B, pb, lft(B), "2026-03-12T09:00:00+08:00", order=order).issues == []
    assert flags(engine) == []
    # ...while C's CBC (QC passed) is recognised
    world.report(C, pc, cbc(C), "2026-03-10T09:00:00+08:00")
    assert world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00").issues != []


def test_other_person_and_no_national_id_never_match(engine: Any, world: World) -> None:
    pa = world.patient(A, ALICE)
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    bob = world.patient(B, BOB, mrn="B-0002")
    nobody = world.patient(B, None, mrn="B-0003")
    assert world.order(B, bob, cbc(B), "2026-03-11T08:00:00+08:00").issues == []
    assert world.order(B, nobody, cbc(B), "2026-03-11T08:00:00+08:00").issues == []
    # the same MRN at another institution is another patient record, not the same person
    same_mrn = world.patient(B, None, mrn=f"MRN-{ALICE}")
    assert world.order(B, same_mrn, cbc(B), "2026-03-11T08:00:00+08:00").issues == []


def test_preliminary_prior_is_not_recognisable_until_final(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00", key="R1", status="preliminary")
    assert world.order(B, pb, cbc(B), "2026-03-11T08:00:00+08:00", placer="O1").issues == []
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00", key="R1", status="final")
    assert world.order(B, pb, cbc(B), "2026-03-11T08:00:00+08:00", placer="O2").issues != []


@pytest.mark.parametrize(("reasons", "text", "status", "money", "code"), [
    (("R01",), None, "justified", 0.0, "justified-retest"),
    (("R06",), "家属要求复查", "justified", 0.0, "justified-retest"),
    (("R06",), None, "flagged", 60.0, "duplicate-test"),  # R06 without text does not justify
    (("R07",), None, "self_pay", 0.0, "self-pay-retest"),  # allowed, not payable by the fund
    (("R09",), None, "flagged", 60.0, "reason-contradicted"),  # A had passed QC on the result's date
    (("R98",), None, "flagged", 60.0, "reason-contradicted"),  # huren held A's result before the order
    (("R99",), None, "justified", 0.0, "justified-retest"),
])
def test_reason_on_the_order(engine: Any, world: World, reasons: tuple[str, ...], text: str | None,
                             status: str | None, money: float | None, code: str) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, lft(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, lft(B), "2026-03-12T08:00:00+08:00", reasons=reasons, reason_text=text)
    assert order.issues != []  # the prior result is still shown to the doctor
    world.report(B, pb, lft(B), "2026-03-12T09:00:00+08:00", order=order)
    rows = flags(engine)
    if status is None:
        assert rows == []
        return
    [row] = rows
    assert row["status"] == status
    assert row["reason"] == (None if code == "duplicate-test" else reasons[0])
    assert (row["contradicted"] or "").startswith("reason contradicted by records") == (code == "reason-contradicted")
    issue = engine.repository.read("DetectedIssue", row["_id"])
    DetectedIssue.model_validate(issue)
    assert issue["code"]["coding"][0]["code"] == code
    if status == "justified":
        assert issue["code"]["coding"][0]["code"] == "justified-retest"
        assert issue["mitigation"][0]["action"]["coding"][0]["code"] == reasons[0]
    from engine.recognition.reports import ReportFilter, duplicates_report

    assert duplicates_report(engine.recognition, ReportFilter())["totals"]["money_at_stake"] == money


def test_reason_added_after_the_result_stays_on_the_same_flag_as_a_late_reason(engine: Any, world: World) -> None:
    """DOMAIN.md: the reason recorded at order time stands. A reason first sent after the result
    does not clear the flag; it is kept on it, for the auditor (it used to clear it)."""
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00", placer="P1")
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order)
    [before] = flags(engine)
    assert before["status"] == "flagged"
    world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00", placer="P1", reasons=("R04",))
    [after] = flags(engine)
    assert after["_id"] == before["_id"] and after["status"] == "flagged"
    assert (after["reason"], after["late_reasons"]) == (None, ["R04"])
    assert len(issues_of(engine)) == 2  # the reminder and the one flag


def test_corrected_result_updates_the_flag_and_cancelled_voids_it(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00")
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order, key="RB")
    [row] = flags(engine)
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order, key="RB", status="corrected")
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order, key="RB", status="corrected")  # re-sent
    assert [f["_id"] for f in flags(engine)] == [row["_id"]]
    history = engine.repository.history("DetectedIssue", row["_id"])
    assert len(history) == 1  # the evidence did not change: no new version
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order, key="RB", status="entered-in-error")
    [voided] = flags(engine)
    assert voided["status"] == "void"
    assert engine.repository.read("DetectedIssue", row["_id"])["status"] == "cancelled"


def test_result_without_an_order_is_checked_the_same_way(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    out = world.report(B, pb, cbc(B), "2026-03-13T09:00:00+08:00")
    assert "not payable" in out.issues[0]["diagnostics"]
    [row] = flags(engine)
    assert row["order"] is None and row["inst"] == B


def test_imaging_by_modality_and_body_site(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.imaging(A, pa, "CT", ("51185008", "Chest"), "2026-03-01T10:00:00+08:00")
    head = world.order(B, pb, World.code(B, "3002", "头颅CT平扫"), "2026-03-20T08:00:00+08:00")
    assert head.issues == []  # other body site, other item
    chest = world.order(B, pb, World.code(B, "3001", "胸部CT平扫"), "2026-03-20T08:00:00+08:00")
    assert "ImagingStudy/" in chest.issues[0]["diagnostics"]
    world.imaging(B, pb, "CT", ("51185008", "Chest"), "2026-03-20T09:00:00+08:00")
    [row] = flags(engine)
    assert (row["item"], stored_fen(row["price"])) == ("CT-CHEST", 220.0)


def test_review_upheld_and_overturned(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00")
    [row] = flags(engine)
    with pytest.raises(BadRequest):
        engine.recognition.review(row["_id"], "maybe", "x", by="auditor:z")
    with pytest.raises(BadRequest):
        engine.recognition.review(row["_id"], "upheld", " ", by="auditor:z")
    engine.recognition.review(row["_id"], "upheld", "no reason recorded", by="auditor:zhang")
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert issue["status"] == "final"
    assert issue["mitigation"][-1]["author"] == {"display": "auditor:zhang"}
    engine.recognition.review(row["_id"], "overturned", "emergency noted on paper chart", by="auditor:li")
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert issue["status"] == "cancelled"
    assert [m["action"]["coding"][0]["code"] for m in issue["mitigation"]] == ["upheld", "overturned"]
    DetectedIssue.model_validate(issue)
    # a re-sent result keeps the auditor's decision
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", key="RPT2")
    assert flags(engine)[0]["status"] == "overturned"


def test_review_of_justified_flag_is_refused(engine: Any, world: World) -> None:
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00", reasons=("R02",))
    world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order)
    [row] = flags(engine)
    with pytest.raises(Unprocessable):
        engine.recognition.review(row["_id"], "upheld", "x", by="auditor:z")


def test_patient_stored_after_its_results_is_linked(engine: Any, world: World) -> None:
    # the result arrives before the Patient carries the national ID (e.g. ADT later)
    pa = world.patient(A, None, mrn="A-77")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    world.patient(A, ALICE, mrn="A-77")  # same record, now with the national ID
    pb = world.patient(B, ALICE, mrn="B-0001")
    assert world.order(B, pb, cbc(B), "2026-03-11T08:00:00+08:00").issues != []


def test_reminder_flag_and_review_on_every_storage_backend(backend_settings: Any) -> None:
    """The same path on SQLite and MongoDB (mongomock; a real server when HUREN_MONGODB_URI is set)."""
    from engine.engine import Engine

    with Engine(backend_settings) as engine:
        world = World(engine)
        pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
        world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
        order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00")
        assert "DetectedIssue/rec-" in order.issues[0]["diagnostics"]
        assert "not payable" in world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order).issues[0]["diagnostics"]
        [row] = flags(engine)
        engine.recognition.review(row["_id"], "upheld", "no reason", by="auditor:z")
        assert engine.repository.read("DetectedIssue", row["_id"])["status"] == "final"
        from engine.recognition.reports import ReportFilter, duplicates_report

        totals = duplicates_report(engine.recognition, ReportFilter())["totals"]
        assert (totals["count"], totals["money_at_stake"], totals["by_status"]["upheld"]) == (1, 20.0, 1)


def test_a_report_and_its_observations_are_one_test(engine: Any, world: World) -> None:
    """Observations carry no order reference; they must neither flag their own report nor add a
    second flag when the whole test is a repeat."""
    from engine.repository.ids import deterministic_id

    def alt(inst: str, patient: str, when: str, key: str) -> Any:
        return engine.repository.update({
            "resourceType": "Observation", "id": deterministic_id(inst, "Observation", key), "status": "final",
            "code": World.code(inst, "ALT", "丙氨酸氨基转移酶", "1742-6"), "subject": {"reference": patient},
            "effectiveDateTime": when, "valueQuantity": {"value": 40, "unit": "U/L"},
            "performer": [{"reference": world.organization(inst)}]})

    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    order_a = world.order(A, pa, lft(A), "2026-03-10T08:00:00+08:00")
    alt(A, pa, "2026-03-10T10:00:00+08:00", "A-ALT")
    world.report(A, pa, lft(A), "2026-03-10T09:00:00+08:00", order=order_a)
    assert flags(engine) == []
    order_b = world.order(B, pb, lft(B), "2026-03-12T08:00:00+08:00")
    assert len(order_b.issues) == 1 and order_b.issues[0]["diagnostics"].count("DiagnosticReport/") == 1
    alt(B, pb, "2026-03-12T10:00:00+08:00", "B-ALT")
    world.report(B, pb, lft(B), "2026-03-12T09:00:00+08:00", order=order_b)
    [row] = flags(engine)
    assert row["result"].startswith("DiagnosticReport/") and row["prior"].startswith("DiagnosticReport/")
    assert row["order"] == f"ServiceRequest/{order_b.resource['id']}"


def test_billed_charge_line_is_the_money_at_stake(engine: Any, world: World) -> None:
    """Where the repeat was billed (a ChargeItem for the result), its amount is at stake, not the catalogue's."""
    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00")
    repeat = world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order)
    [row] = flags(engine)
    assert (stored_fen(row["price"]), row["price_source"]) == (20.0, "catalogue")
    charge = {"resourceType": "ChargeItem", "id": "charge-1", "status": "billable",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": pb}, "quantity": {"value": 1},
              "priceOverride": {"value": 18.5, "currency": "CNY"},
              "service": [{"reference": f"DiagnosticReport/{repeat.resource['id']}"}]}
    engine.repository.update(charge)
    [row] = flags(engine)
    assert (stored_fen(row["price"]), row["price_source"]) == (18.5, "charge")
    issue = engine.repository.read("DetectedIssue", row["_id"])
    assert "CNY 18.50 at stake" in issue["detail"]
    engine.repository.update({**charge, "status": "entered-in-error"})  # the charge line withdrawn
    assert stored_fen(flags(engine)[0]["price"]) == 20.0


def test_charge_line_amount_is_the_whole_line_as_the_settlement_reads_it(engine: Any, world: World) -> None:
    """R4 ``priceOverride`` is the line's total (FT1-12): two units billed 40.00 put 40.00 at stake, not
    80.00, and the settlement counts the same 40.00 for that line."""
    from engine.insurance.charges import read_line

    pa, pb = world.patient(A, ALICE), world.patient(B, ALICE, mrn="B-0001")
    world.report(A, pa, cbc(A), "2026-03-10T09:00:00+08:00")
    order = world.order(B, pb, cbc(B), "2026-03-12T08:00:00+08:00")
    repeat = world.report(B, pb, cbc(B), "2026-03-12T09:00:00+08:00", order=order)
    charge = {"resourceType": "ChargeItem", "id": "charge-2", "status": "billable",
              "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
              "subject": {"reference": pb}, "quantity": {"value": 2},
              "priceOverride": {"value": 40.0, "currency": "CNY"},
              "service": [{"reference": f"DiagnosticReport/{repeat.resource['id']}"}]}
    engine.repository.update(charge)
    [row] = flags(engine)
    assert (stored_fen(row["price"]), row["price_source"]) == (40.0, "charge")
    assert str(read_line(charge, lambda ref: None).amount) == "40.0"
