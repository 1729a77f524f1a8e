"""probepay26: the three order-time answers agree with each other and with the later flag, at the
window's edge, and a merged record's results count.

The CDS Hooks order-sign card (HTTP), ``$check-recognition`` (HTTP) and the ORM's ACK (HL7 over MLLP)
are asked about the same order instant; the ORU of the repeat then decides the flag. DOMAIN.md: the
doctor "sees recognisable results" at order time (CDS Hooks ``order-sign``); the window is "O's date
minus R's date" in local days. A merged patient's results (README, the MPI) are the survivor's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_probepay26_windows import (
    CBC,
    WANG,
    flags,
    make_site,
    msh,
    open_engine,
    order,
    reminded,
    result,
)
from tests.test_recognition_e2e import Sender

EHR = "system/ServiceRequest.crus system/Patient.rs system/DiagnosticReport.rs"
OP = "/fhir/ServiceRequest/$check-recognition"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path))


def _h(engine: Engine, scopes: str = "system/*.cruds") -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ehr-b", scopes)}


def _patient(http: TestClient, engine: Engine, mrn: str) -> str:
    got = http.get("/fhir/Patient", params={"identifier": mrn}, headers=_h(engine)).json()
    [entry] = [e for e in got.get("entry", []) if e["resource"]["resourceType"] == "Patient"]
    return "Patient/" + entry["resource"]["id"]


def _card(http: TestClient, engine: Engine, patient: str, authored: str) -> list[dict[str, Any]]:
    d = {"resourceType": "ServiceRequest", "id": "d1", "status": "draft", "intent": "order",
         "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
         "subject": {"reference": patient}, "authoredOn": authored}
    body = {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": "order-sign",
            "context": {"userId": "Practitioner/dr-zhang", "patientId": patient.split("/")[1],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d}]}}}
    r = http.post("/cds-services/huren-recognition-sign", json=body, headers=_h(engine, EHR))
    assert r.status_code == 200, r.text
    return r.json()["cards"]


def _check(http: TestClient, engine: Engine, patient: str, when: dict[str, str]) -> list[dict[str, Any]]:
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": patient}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "institution", "valueString": "HOSPB"}, {"name": "date", **when}]}
    r = http.post(OP, json=params, headers=_h(engine))
    assert r.status_code == 200, r.text
    return [p for p in r.json()["parameter"] if p["name"] == "recognisable"]


@pytest.mark.parametrize(("authored", "hl7", "expected"), [
    ("2026-03-08T23:59:59+08:00", "20260308235959+0800", True),
    ("2026-03-09T00:00:00+08:00", "20260309000000+0800", False),
    ("2026-03-08T15:59:59Z", "20260308155959+0000", True),
    ("2026-03-08T16:00:00Z", "20260308160000+0000", False),
])
def test_probepay26_cds_check_ack_and_flag_agree_at_the_edge(engine: Engine, mllp: int, authored: str, hl7: str,
                                                             expected: bool) -> None:
    """Prior 2026-03-01 23:59:59 Shanghai; CBC window 7. Every answer for the same order instant agrees."""
    s = Sender(mllp)
    s.send(result("HOSPA", "A1", CBC, "20260301235959+0800"))
    s.send(order("HOSPB", "B0", "1742-6^ALT^LN", "20260220080000+0800"))  # registers the patient at HOSPB
    http = TestClient(create_app(engine))
    patient = _patient(http, engine, "MRN-HOSPB")
    cards = _card(http, engine, patient, authored)
    checked = _check(http, engine, patient, {"valueDateTime": authored})
    ack = s.send(order("HOSPB", "B1", CBC, hl7))
    s.send(result("HOSPB", "B1", CBC, hl7))
    got = {"cds": bool(cards), "check": bool(checked), "ack": reminded(ack), "flag": bool(flags(engine, "flagged"))}
    assert got == dict.fromkeys(got, expected), (authored, got)


def _prior_unidentified(inst: str, mrn: str, when: str) -> str:
    """A result under a record that carries only the hospital's MRN (no national ID yet)."""
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when) + f"PID|1||{mrn}^^^{inst}^MR||王^建国||19850412|M\n"
            + f"OBR|1|X1^HIS|FX1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")


def _a40(inst: str, survivor: str, old: str, when: str) -> str:
    return (msh(inst, "HIS", "ADT^A40^ADT_A39", when) + f"EVN|A40|{when}\n"
            + f"PID|1||{WANG}^^^公安部^NNCHN~{survivor}^^^{inst}^MR||王^建国||19850412|M\n"
            + f"MRG|{old}^^^{inst}^MR\n")


def test_probepay26_merged_records_results_count(engine: Engine, mllp: int) -> None:
    """HOSPA's blood count was filed under a record with only an MRN; HOSPA's desk merges it into the
    resident's identified record (A40). A later HOSPB order for the resident sees it: results of both
    records count."""
    s = Sender(mllp)
    s.send(_prior_unidentified("HOSPA", "TMP-9", "20260310090000+0800"))
    s.send(order("HOSPA", "A0", "1742-6^ALT^LN", "20260301080000+0800", mrn="MRN-A"))  # the identified record
    ack = s.send(_a40("HOSPA", "MRN-A", "TMP-9", "20260311080000+0800"))
    assert "MSA|AA|" in ack, ack
    assert reminded(s.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))), flags(engine)
    s.send(result("HOSPB", "B1", CBC, "20260312100000+0800"))
    [f] = flags(engine, "flagged")
    assert f["prior_inst"] == "HOSPA", f
