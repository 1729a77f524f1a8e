"""What huren refuses, repairs and keeps, over a real MLLP socket (mappings/hl7v2/README.md).

A lab's results are never refused over an element that does not identify the message or the
patient; what does identify them is refused precisely, and the raw message waits in the
quarantine for correction.
"""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.control_id import content_control_id
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from tests.conftest import NATIONAL_ID
from tests.test_ingest_durability import err_fields
from tests.test_ingest_e2e import lab_result, send


def msa(ack: bytes) -> list[str]:
    return next(s.split("|") for s in ack.decode().split("\r") if s.startswith("MSA"))


def test_no_message_control_id_is_filed_under_its_content(engine: Engine) -> None:
    """MSH-10 empty: the answers come in order on the same connection, so the sender can still
    match them; the message is known by a digest of its content. AA with a W at MSH-10 (101),
    MSA-2 echoing the empty MSH-10; an identical resend is recognised (nothing new stored), a
    message that differs is filed as another one."""
    raw = lab_result("")
    assert b"|ORU^R01^ORU_R01||P|" in raw  # MSH-10 empty
    other = lab_result("", glucose_code="GLU2")
    first, resend, second = send(engine, raw, raw, other)
    for ack in (first, resend, second):
        assert ack_code_of(ack) == "AA" and msa(ack)[2] == ""
        assert [(e[2], e[3][:3], e[4]) for e in err_fields(ack)] == [("MSH^1^10", "101", "W")]
    key = content_control_id(raw.decode())
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", key))
    assert doc is not None and doc["status"] == PROCESSED and base64.b64decode(doc["raw"]) == raw
    assert sum(r.startswith("Observation/") for r in doc["resources"]) == 2
    assert engine.ingestor.messages.count() == 2 and engine.ingestor.stats.duplicates == 1
    kept = engine.ingestor.messages.get(message_id("FNXRMYY", content_control_id(other.decode())))
    assert kept is not None and kept["status"] == PROCESSED


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


def with_pid(control: str, pid: str) -> bytes:
    """The lab result with its PID replaced (no national ID, so no demographic check)."""
    lines = lab_result(control).decode().split("\r")
    return "\r".join(pid if line.startswith("PID|") else line for line in lines).encode()


def patient_of(engine: Engine, control: str) -> str:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None and doc["status"] == PROCESSED, doc and doc.get("reason")
    return next(r for r in doc["resources"] if r.startswith("Patient/"))


def test_message_without_control_id_or_patient_is_corrected_and_replayed(engine: Engine, http: TestClient) -> None:
    """A message known by its content (no MSH-10) that waits in the quarantine (no PID-3) is
    replayed from a corrected copy, which keeps MSH-10 empty; one that names an MSH-10 is not it."""
    good = lab_result("")
    bad = good.replace(f"{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR".encode(), b"")
    (ack,) = send(engine, bad)
    assert ack_code_of(ack) == "AE" and msa(ack)[2] == ""
    (doc,) = engine.ingestor.messages.quarantined()
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}
    named = good.replace(b"|ORU^R01^ORU_R01||P|", b"|ORU^R01^ORU_R01|X9|P|")
    assert http.post(f"/admin/quarantine/{doc['_id']}/replay", content=named, headers=operator).status_code == 400
    r = http.post(f"/admin/quarantine/{doc['_id']}/replay", content=good, headers=operator)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA" and r.json()["status"] == PROCESSED


def test_other_patient_identifiers_stand_in_for_an_empty_pid3(engine: Engine, http: TestClient) -> None:
    """PID-3 empty (or without a value) but PID-2/PID-4 (the v2.3 external and alternate ids) or,
    last, PID-19/PID-20 identify the patient: the results are filed under that identifier, the
    same one for every message that sends it. Nothing identifying at all stays AE."""
    acks = send(engine,
                with_pid("I1", "PID|1||||李^四||19700101|F"),
                with_pid("I2", "PID|1|||ALT77^^^FNXRMYY^PI|李^四||19700101|F"),
                with_pid("I3", "PID|1||^^^FNXRMYY^MR|ALT77^^^FNXRMYY^PI|李^四||19700101|F"),
                with_pid("I4", "PID|1|EXT5|||王^五||19600101|M"),
                with_pid("I5", "PID|1||||赵^六||19500101|M|||||||||||123-45-6789"))
    assert [ack_code_of(a) for a in acks] == ["AE", "AA", "AA", "AA", "AA"]
    (err,) = [e for e in err_fields(acks[0]) if e[4] == "E"]
    assert err[2].startswith("PID^1^3") and err[3].startswith("101^")
    assert patient_of(engine, "I2") == patient_of(engine, "I3") != patient_of(engine, "I4")
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")}
    values = {ref: [i["value"] for i in http.get(f"/fhir/{ref}", headers=reader).json()["identifier"]]
              for ref in (patient_of(engine, c) for c in ("I2", "I4", "I5"))}
    assert [v for vs in values.values() for v in vs].count("ALT77") == 1
    assert any("EXT5" in vs for vs in values.values()) and any("123-45-6789" in vs for vs in values.values())


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


def test_undated_observations_of_an_admission(engine: Engine, http: TestClient) -> None:
    """An ADT's OBX (no OBR to date it) with OBX-14 empty takes EVN-2 with a W at OBX-14; with no
    date anywhere in the message, recognition could not place the result in time: AE at OBX-14."""
    def adt(control: str, stamp: str) -> bytes:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|{stamp}||ADT^A01|{control}|P|2.5\r"
                f"EVN|A01|{stamp}\r"
                "PID|1||M0042^^^FNXRMYY^MR||钱^七||19900101|F\r"
                "PV1|1|I|NEI^301^02\r"
                "OBX|1|NM|8302-2^Body height^LN||165|cm|||||F\r").encode()

    dated, undated = send(engine, adt("E1", "20261101080000"), adt("E2", ""))
    assert ack_code_of(dated) == "AA"
    assert ("OBX^1^14", "102", "W") in [(e[2], e[3][:3], e[4]) for e in err_fields(dated)]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "E1"))
    assert doc is not None and doc["status"] == PROCESSED
    (ref,) = [r for r in doc["resources"] if r.startswith("Observation/")]
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")}
    assert http.get(f"/fhir/{ref}", headers=reader).json()["effectiveDateTime"].startswith("2026-11-01T08:00:00")
    assert ack_code_of(undated) == "AE"
    (err,) = [e for e in err_fields(undated) if e[4] == "E"]
    assert err[2] == "OBX^1^14" and err[3].startswith("101^")
