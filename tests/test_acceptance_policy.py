"""What huren refuses, repairs and keeps, over a real MLLP socket (mappings/hl7v2/README.md).

A lab's results are never refused over an element that does not identify the message or the
patient; what does identify them is refused precisely, and the raw message waits in the
quarantine for correction.
"""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from tests.conftest import NATIONAL_ID
from tests.test_ingest_durability import err_fields
from tests.test_ingest_e2e import lab_result, send


def msa(ack: bytes) -> list[str]:
    return next(s.split("|") for s in ack.decode().split("\r") if s.startswith("MSA"))


def test_no_message_control_id_is_rejected_and_kept(engine: Engine) -> None:
    """MSA-2 must echo MSH-10: without it the sender cannot match the answer, and a resend could
    not be recognised. AR, ERR at MSH-10 (101), the bytes kept."""
    raw = lab_result("")
    assert b"|ORU^R01^ORU_R01||P|" in raw  # MSH-10 empty
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AR" and msa(ack)[2] == ""
    (err,) = err_fields(ack)
    assert err[2] == "MSH^1^10" and err[3].startswith("101^") and err[4] == "E"
    (kept,) = engine.ingestor.messages.quarantined()
    assert base64.b64decode(kept["raw"]) == raw


def test_result_without_patient_identifier_waits_for_correction(engine: Engine, http: TestClient) -> None:
    """No PID-3: nothing to file the results under safely. AE at PID-3 (101), quarantined; the
    corrected copy replayed by an operator is filed."""
    bad = lab_result("Q1").replace(f"{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR".encode(), b"")
    (ack,) = send(engine, bad)
    assert ack_code_of(ack) == "AE" and msa(ack)[2] == "Q1"
    (err,) = [e for e in err_fields(ack) if e[4] == "E"]
    assert err[2].startswith("PID^1^3") and err[3].startswith("101^")
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "Q1"))
    assert doc is not None and doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == bad
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}
    r = http.post(f"/admin/quarantine/{doc['_id']}/replay", content=lab_result("Q1"), headers=operator)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA" and r.json()["status"] == PROCESSED


def test_doubled_escape_in_msh2_is_read_and_warned(engine: Engine, http: TestClient) -> None:
    raw = lab_result("Q2").replace(b"MSH|^~\\&|", b"MSH|^~\\\\&|", 1)
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AA"
    assert [(e[2], e[3][:3], e[4]) for e in err_fields(ack)] == [("MSH^1^2", "102", "W")]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "Q2"))
    assert doc is not None and doc["status"] == PROCESSED
    assert sum(r.startswith("Observation/") for r in doc["resources"]) == 2


def test_invalid_birth_date_keeps_the_results(engine: Engine, http: TestClient) -> None:
    raw = lab_result("Q3").replace(b"||19800101|M", b"||19801340|M")
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AA"
    assert [(e[2], e[3][:3], e[4]) for e in err_fields(ack)] == [("PID^1^7", "102", "W")]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "Q3"))
    assert doc is not None and doc["status"] == PROCESSED
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")}
    patient = next(r for r in doc["resources"] if r.startswith("Patient/"))
    assert "birthDate" not in http.get(f"/fhir/{patient}", headers=reader).json()
    assert sum(r.startswith("Observation/") for r in doc["resources"]) == 2
