"""One FT1 number in one shared namespace at two hospitals, two patients (a review of moneylast19).

FT1-2 ``1001^HIS`` converts to the system ``urn:huren:id:HIS`` at every hospital, so a charge line's
number scoped by its system alone named no one's sequence: another patient's line 1001 at HOSPC
"superseded" Wang's line at HOSPB (his flagged repeat fell from the billed ¥30 to the catalogue's
¥20), and the fund's settlement counted two hospitals' ¥100 lines once. The line's identity is scoped
by the performing institution and the patient too (``engine.insurance.charges.line_identity``).
Real HTTP through FastAPI and real HL7 over MLLP, the real store; the renumbering pass on each store.
"""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.insurance.tiers import stored_fen
from engine.recognition.index import RESULTS
from engine.settings import Settings
from tests import test_money19_charge_lines
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer
from tests.test_money19_charge_lines import flagged
from tests.test_moneymend19_charges import employee
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, not_payable, ts

engine = test_money19_charge_lines.engine

SHARED = "urn:huren:id:HIS"   # what FT1-2 "1001^HIS" converts to (datatypes.ei), at any hospital


def line(engine, http, cid, patient, service, amount, org):
    token = engine.auth.issue_system_token("his", "system/ChargeItem.cruds system/DiagnosticReport.rs")
    c = {"resourceType": "ChargeItem", "id": cid, "status": "billable",
         "identifier": [{"system": SHARED, "value": "1001"}],
         "code": {"coding": [{"system": "urn:huren:price-code", "code": "250101001"}]},
         "subject": {"reference": patient}, "quantity": {"value": 1},
         "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": org}},
         "priceOverride": {"value": amount, "currency": "CNY"}, "service": [{"reference": service}]}
    r = http.put(f"/fhir/ChargeItem/{cid}", json=c, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text


def test_another_patients_line_unprices_a_repeat(engine: Engine, mllp: int) -> None:
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    line(engine, http, "hospb-1001", flag["patient"], flag["result"], 30.0, "HOSPB")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (30.0, "charge"), flag
    # another person at HOSPC, a CBC of their own
    when = ts(0, 11)
    Sender(mllp).send(msh("HOSPC", "LIS", "ORU^R01^ORU_R01", when, "C-ORU-9")
        + "PID|1||110101199003077774^^^公安部^NNCHN~MRN-9^^^HOSPC^MR||李^四||19900307|M\n"
        + f"OBR|1|C9^HIS|FC9^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
        + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")
    other = next(d for d in engine.store.collection(RESULTS).find({}) if d["_id"] not in (flag["result"], flag["prior"])
                 and d["_id"].startswith("DiagnosticReport/"))
    rpt = engine.repository.read("DiagnosticReport", other["_id"].split("/")[1])
    line(engine, http, "hospc-1001", rpt["subject"]["reference"], other["_id"], 80.0, "HOSPC")
    [flag] = not_payable(engine)
    assert (stored_fen(flag["price"]), flag["price_source"]) == (30.0, "charge"), flag


def test_two_hospitals_lines_with_one_number_are_both_settled(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "insurance").mkdir(parents=True)
    (site / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        http = TestClient(create_app(eng))
        auth = {"Authorization": "Bearer " + eng.auth.issue_system_token("his-billing", "system/*.cruds"),
                "Content-Type": "application/fhir+json"}
        for cid, org, pat in (("x-rmyy", "FNXRMYY", "Patient/p1"), ("x-zyy", "FNZYY", "Patient/p2")):
            c = {**charge(cid, "2026-02-01T09:00:00+08:00", ident(org), "100.00", "70.00", "employee"),
                 "identifier": [{"system": SHARED, "value": "1001"}], "subject": {"reference": pat}}
            assert http.put(f"/fhir/ChargeItem/{cid}", content=body(c), headers=auth).status_code in (200, 201)
        report = http.get("/reports/settlement?year=2026", headers=insurer(eng)).json()
        emp = employee(report)
        assert (D(str(emp["spending"])), emp["lines"]) == (D("140.00"), 2), (emp, report["charges"])


@pytest.mark.parametrize("store", [{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def test_pass_renumbers_on_each_store(engine: Engine, mllp: int, store) -> None:
    from engine.recognition.billed_lines import LINES_NUMBERED, number_lines_once
    from engine.recognition.upgrade import LAYOUT
    flag = flagged(engine, mllp)
    http = TestClient(create_app(engine))
    line(engine, http, "l1", flag["patient"], flag["result"], 30.0, "HOSPB")
    line(engine, http, "l2", flag["patient"], flag["result"], 30.0, "HOSPB")
    with engine.store.transaction():
        for row in engine.recognition.charges.find({}):
            engine.recognition.charges.replace({k: v for k, v in row.items() if k not in ("ident", "at")})
        engine.store.collection(LAYOUT).delete(LINES_NUMBERED)
    assert number_lines_once(engine.recognition) == 2
    assert all(r.get("ident") for r in engine.recognition.charges.find({}))
