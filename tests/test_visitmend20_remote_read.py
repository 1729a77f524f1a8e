"""A remote reading centre's report for a township patient who has no national ID number (a
newborn, an elderly resident never given one) -- twentieth round, visitmend20, from the review of
visit20: the centre's RIS echoes the township's PID; the report is linked to the township's order
and study (create-only, moved to the township's ids by ``referral.link_report``). visit20 asked the
moved order whether it was another patient's, and the centre's record of a patient without an ID
number is not one person with the township's to the patient index: AE at OBR-2. The move is the
referral's decision, not the centre's claim on the number; a message that keys the order by the
number itself (the township's own report) naming another person is still refused. Real HL7 over
POST /hl7v2, both backends."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_referral_e2e import COUNTY, HL7, LI, TOWN, WANG, bearer, engine
from tests.test_remote_reading import centre_ct_report, township_ct_order

__all__ = ["engine"]

NO_ID_TOWN = f"PID|1||YL100^^^{TOWN}^MR||王^建国||19850412|M"


def _with_pid(message: bytes, pid: str) -> bytes:
    lines = message.decode("utf-8").split("\r")
    return "\r".join(pid if line.startswith("PID|") else line for line in lines).encode("utf-8")


def test_centre_report_for_a_patient_without_id_number(engine: Engine, http: TestClient) -> None:
    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    order = http.post("/hl7v2", content=_with_pid(township_ct_order(), NO_ID_TOWN), headers=post)
    assert order.headers["x-hl7-ack-code"] == "AA", order.text
    report = http.post("/hl7v2", content=_with_pid(centre_ct_report(), NO_ID_TOWN), headers=post)
    assert report.status_code == 200
    assert report.headers["x-hl7-ack-code"] == "AA", report.text
    reader = bearer(engine, "reader", "system/*.read")
    (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest", headers=reader).json()["entry"]]
    (dr,) = [e["resource"] for e in http.get("/fhir/DiagnosticReport", headers=reader).json()["entry"]]
    assert dr["basedOn"] == [{"reference": f"ServiceRequest/{sr['id']}"}]  # linked to the township's order


def test_centre_report_with_id_number_still_passes(engine: Engine, http: TestClient) -> None:
    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    assert WANG in township_ct_order().decode()
    for message in (township_ct_order(), centre_ct_report()):
        got = http.post("/hl7v2", content=message, headers=post)
        assert got.headers["x-hl7-ack-code"] == "AA", got.text


def test_township_report_of_another_person_under_its_order_number_is_refused(engine: Engine, http: TestClient) -> None:
    """The township's own PACS reports under its order number RR-1 (keyed by the number it names,
    not moved) for 李秀英, another person by ID number: refused at OBR-2, nothing written."""
    post = HL7 | bearer(engine, "gateway", "system/MessageHeader.c")
    order = http.post("/hl7v2", content=_with_pid(township_ct_order(), NO_ID_TOWN), headers=post)
    assert order.headers["x-hl7-ack-code"] == "AA", order.text
    own = centre_ct_report("YL-ORU-9").decode("utf-8").replace(
        f"|RIS|{COUNTY}|PACS|{TOWN}|", f"|PACS|{TOWN}|RIS|{COUNTY}|").encode("utf-8")
    got = http.post("/hl7v2", content=_with_pid(own, f"PID|1||{LI}^^^公安部^NNCHN||李^秀英||19880903|F"), headers=post)
    assert got.status_code == 200
    assert got.headers["x-hl7-ack-code"] == "AE", got.text
    assert "OBR^1^2" in got.text and "another patient" in got.text, got.text
    reader = bearer(engine, "reader", "system/*.read")
    assert not http.get("/fhir/DiagnosticReport", headers=reader).json().get("entry")
