"""A store written before pay18's mends answers as a fresh one once opened by this code
(eighteenth round, payfix18: review of pay18). SQLite, the real Engine opened twice on one data
directory; the rows the earlier code wrote are written exactly as it wrote them (the code of
main 921909f: ``recognition_charges`` kept a row for a planned ChargeItem, and an order's check
row kept R06's own name as its text), then the store is opened again and asked over real HTTP.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.state import CHARGES, CHECKS
from engine.recognition.upgrade import LAYOUT
from engine.settings import Settings
from tests.test_insurance_deductions import deductions, upheld
from tests.test_recognition_world import ALICE, A, B, World, cbc, lft
from tests.test_reports_duplicates import bearer

UNBILLED_DROPPED = "unbilled-charge-rows-dropped"  # the pass's marker (engine.recognition.billed_lines)


def line(cid: str, status: str, result: str, amount: float, patient: str) -> dict[str, Any]:
    return {"resourceType": "ChargeItem", "id": cid, "status": status,
            "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
            "subject": {"reference": patient}, "quantity": {"value": 1},
            "priceOverride": {"value": amount, "currency": "CNY"}, "service": [{"reference": result}]}


def test_a_planned_line_kept_by_the_earlier_code_is_dropped_once(settings: Settings) -> None:
    """The CBC repeat's planned CNY 23 line, kept by the earlier code as the flag's money: the
    store opened again deducts the catalogue's CNY 20 and names no line; the LFT's billed CNY 65
    line stands."""
    with Engine(settings) as engine:
        w = World(engine)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
        w.report(A, alice_a, lft(A), "2026-03-01T09:00:00+08:00")
        o1 = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00")
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=o1)
        o2 = w.order(B, alice_b, lft(B), "2026-03-05T08:00:00+08:00")
        w.report(B, alice_b, lft(B), "2026-03-05T09:00:00+08:00", order=o2)
        http = TestClient(create_app(engine))
        rows = {r["price"]: r for r in upheld(engine, http)}
        cbc_result, lft_result = rows[20.0]["result"], rows[60.0]["result"]
        engine.repository.update(line("planned-1", "planned", cbc_result, 23.0, alice_b))
        engine.repository.update(line("billed-1", "billed", lft_result, 65.0, alice_b))
        # the earlier code's row for the planned line, and the flag it decided with it
        rec = engine.recognition
        with engine.store.transaction():
            engine.store.collection(CHARGES).replace({"_id": "ChargeItem/planned-1", "service": cbc_result,
                                                      "services": [cbc_result], "amount": 23.0})
            rec._in_group(lambda: rec._evaluate_flag(rec.index.get(cbc_result)))
            engine.store.collection(LAYOUT).delete(UNBILLED_DROPPED)  # a store of that release: no marker
        before = deductions(engine, http, _format="csv").content.decode("utf-8")
        assert "23.00" in before  # what the upgraded store answered
    with Engine(settings) as engine:
        http = TestClient(create_app(engine))
        text = deductions(engine, http, _format="csv").content.decode("utf-8")
        assert "20.00" in text and "23.00" not in text and "ChargeItem/planned-1" not in text
        assert "65.00" in text and "ChargeItem/billed-1" in text
        from engine.recognition.billed_lines import drop_unbilled_once
        assert engine.store.collection(CHARGES).get("ChargeItem/planned-1") is None
        assert engine.store.collection(LAYOUT).get(UNBILLED_DROPPED)["dropped"] == 1
        assert drop_unbilled_once(engine.recognition) is None  # once


def test_r06_named_only_in_an_old_check_row_is_not_text(settings: Settings) -> None:
    """An R06 order placed before the upgrade with only the code's name as its text (the earlier
    code kept "其他必要复查" in the check row, R06 payable), resulted after it: not payable."""
    with Engine(settings) as engine:
        w = World(engine)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
        order = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R06",), reason_text="其他必要复查")
        checks = engine.store.collection(CHECKS)
        ref = f"ServiceRequest/{order.resource['id']}"
        with engine.store.transaction():
            checks.replace({**checks.get(ref), "reason_text": "其他必要复查", "reason": "R06", "reason_effect": "payable"})
    with Engine(settings) as engine:
        w = World(engine)
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=order, key="RPT-after")
        http = TestClient(create_app(engine))
        [row] = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
        assert (row["status"], row["reason"]) == ("flagged", None)


def test_names_joined_in_an_old_check_row_are_not_text(settings: Settings) -> None:
    """The earlier code joined every concept's text with "; ": an order stating R07 and R06 by
    their names alone kept "患者或家属要求; 其他必要复查", which counted as R06's text (justified R06;
    a fresh store: self-pay R07). Each part is judged alone (review of payfix18)."""
    with Engine(settings) as engine:
        w = World(engine)
        alice_a, alice_b = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
        w.report(A, alice_a, cbc(A), "2026-03-01T09:00:00+08:00")
        order = w.order(B, alice_b, cbc(B), "2026-03-03T08:00:00+08:00", reasons=("R07", "R06"),
                        reason_text="患者或家属要求; 其他必要复查")
        checks = engine.store.collection(CHECKS)
        ref = f"ServiceRequest/{order.resource['id']}"
        with engine.store.transaction():
            checks.replace({**checks.get(ref), "reason_text": "患者或家属要求; 其他必要复查"})
    with Engine(settings) as engine:
        w = World(engine)
        w.report(B, alice_b, cbc(B), "2026-03-03T09:00:00+08:00", order=order, key="RPT-after")
        http = TestClient(create_app(engine))
        [row] = http.get("/reports/duplicates", headers=bearer(engine)).json()["rows"]
        assert (row["status"], row["reason"]) == ("self_pay", "R07")
