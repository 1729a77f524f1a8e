"""paymend26: a prior panel report counts for the analytes it has recognisable results for -- the
four answers (CDS order-sign card, ``$check-recognition``, the ORM's ACK, the later flag) alike.
Real HL7 over MLLP, real HTTP through FastAPI, the real store.

DOMAIN.md "Payment policy": "Items are defined down to the analyte; a panel is a set of analytes
... a partial overlap is reported with the overlapping analytes"; "The decision, precisely": R is
final and its institution passed QC. A liver panel report (24325-3) carrying ALT and AST results
repeats nothing of a TBIL; an AST result still preliminary is not recognisable, so the report
covers its ALT alone. A report whose results name no analyte (local codes mapped to none) is read
as the whole panel, as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from tests.test_probepay26_agree import EHR, OP, _h, _patient, engine  # noqa: F401  (the fixture)
from tests.test_probepay26_windows import LFT, flags, order, reminded, result
from tests.test_recognition_e2e import Sender

ALT_AST = ("OBX|1|NM|1742-6^ALT^LN||30|U/L|||||{s}|||20260310090000+0800\n"
           "OBX|2|NM|1920-8^AST^LN||28|U/L|||||{s}")


def _card(http: TestClient, engine: Engine, patient: str, loinc: str) -> list[dict[str, Any]]:  # noqa: F811
    draft = {"resourceType": "ServiceRequest", "id": "d1", "status": "draft", "intent": "order",
             "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
             "subject": {"reference": patient}, "authoredOn": "2026-03-12T08:00:00+08:00"}
    body = {"hookInstance": "6b0a1f4e-3c2d-4e5f-8a9b-0c1d2e3f4a5b", "hook": "order-sign",
            "context": {"userId": "Practitioner/dr-zhang", "patientId": patient.split("/")[1],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}}}
    r = http.post("/cds-services/huren-recognition-sign", json=body, headers=_h(engine, EHR))
    assert r.status_code == 200, r.text
    return list(r.json()["cards"])


def _check(http: TestClient, engine: Engine, patient: str, loinc: str) -> list[dict[str, Any]]:  # noqa: F811
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": patient}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": loinc}},
        {"name": "institution", "valueString": "HOSPB"}, {"name": "date", "valueDateTime": "2026-03-12T08:00:00+08:00"}]}
    r = http.post(OP, json=params, headers=_h(engine))
    assert r.status_code == 200, r.text
    return [p for p in r.json()["parameter"] if p["name"] == "recognisable"]


@pytest.mark.parametrize(("ordered", "expected"), [
    ("1975-2^TBIL^LN", False),  # never reported by the prior report
    ("1742-6^ALT^LN", True),  # reported: a repeat of the ALT
])
def test_paymend26_four_answers_agree_on_the_prior_panel_s_analytes(engine: Engine, mllp: int, ordered: str,  # noqa: F811
                                                                    expected: bool) -> None:
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx=ALT_AST))
    s.send(order("HOSPB", "B0", "58410-2^CBC^LN", "20260301080000+0800"))  # registers the patient at HOSPB
    http = TestClient(create_app(engine))
    patient = _patient(http, engine, "MRN-HOSPB")
    loinc = ordered.split("^", 1)[0]
    cards, checked = _card(http, engine, patient, loinc), _check(http, engine, patient, loinc)
    ack = s.send(order("HOSPB", "B1", ordered, "20260312080000+0800"))
    s.send(result("HOSPB", "B1", ordered, "20260312100000+0800", obx=f"OBX|1|NM|{ordered}||12|U/L|||||{{s}}"))
    got = {"cds": bool(cards), "check": bool(checked), "ack": reminded(ack), "flag": bool(flags(engine, "flagged"))}
    assert got == dict.fromkeys(got, expected), (ordered, got)
    if expected:
        [f] = flags(engine, "flagged")
        assert (f["analytes"], stored_fen(f["price"])) == (["ALT"], 5.0), f


def test_paymend26_prior_analyte_not_final_is_not_repeated(engine: Engine, mllp: int) -> None:  # noqa: F811
    """The prior report is final but its AST result preliminary: the whole-panel repeat repeats the
    ALT alone (partial, 5.00)."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800",
                  obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||F|||20260310090000+0800\n"
                      "OBX|2|NM|1920-8^AST^LN||28|U/L|||||P"))
    assert reminded(s.send(order("HOSPB", "B1", LFT, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx=ALT_AST))
    [f] = flags(engine, "flagged")
    assert (f["analytes"], f["partial"], stored_fen(f["price"])) == (["ALT"], True, 5.0), f


def test_paymend26_prior_report_naming_no_analyte_is_the_whole_panel(engine: Engine, mllp: int) -> None:  # noqa: F811
    """Guard: a prior liver panel report whose results are coded locally, in no analyte's LOINC, is
    read as the whole panel (its repeat costs the panel's 60.00), as before."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx="OBX|1|NM|GPT^谷丙转氨酶^L||30|U/L|||||{s}"))
    assert reminded(s.send(order("HOSPB", "B1", LFT, "20260312080000+0800")))
    s.send(result("HOSPB", "B1", LFT, "20260312100000+0800", obx="OBX|1|NM|GPT^谷丙转氨酶^L||31|U/L|||||{s}"))
    [f] = flags(engine, "flagged")
    assert (f["analytes"], f["partial"], stored_fen(f["price"])) == (["ALB", "ALP", "ALT", "AST", "GGT", "TBIL"], False, 60.0), f
