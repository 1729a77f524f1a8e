"""ACKs as HL7 v2.5.1 chapter 2 says, over a real MLLP socket into the real engine (twenty-fifth round,
probeh25: a conformance probe, tests only). Guards, found right on this round's base, and one FINDING
(fails): ERR-2's field repetition (ERL.4) is never filled, so an error in a later repetition points at the first.

- 2.9.2 / 2.14.9: the ACK's MSH-3/4 are the message's MSH-5/6 and MSH-5/6 its MSH-3/4; MSH-9 is
  ``ACK^<trigger>^ACK``; MSH-10 is the ACK's own, new id; MSH-11 (processing id) and MSH-12 and MSH-18 echo
  the message's; MSA-2 is the message's MSH-10;
- 2.9.2.2: a message type, event or version the receiver does not support is rejected ``AR`` with ERR-3
  from table 0357 (200 / 201 / 203) and ERR-2 naming MSH-9.1 / MSH-9.2 / MSH-12; each is kept, raw, for a
  replay (the brief's "loses nothing");
- the ACK is written in the sender's delimiters: a text in ERR-8 that holds ``^`` is escaped with *its*
  escape character (``!S!`` when MSH-2 is ``^~!&``);
- a resend of the same MSH-10 with the same bytes gets the recorded answer and adds no version; with other
  bytes ``AE`` 205, kept for the operator.
"""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_probeh25_mllp import send


def adt(control: str, *, msg_type: str = "ADT^A01^ADT_A01", version: str = "2.5.1", processing: str = "P",
        msh2: str = "^~\\&", tail: str = "", name: str = "张^三") -> bytes:
    return (f"MSH|{msh2}|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||{msg_type}|{control}|{processing}|{version}{tail}\r"
            "EVN|A01|20261201091500\r"
            f"PID|1||PH{control}^^^FNXRMYY^MR||{name}||19850412|M\rPV1|1|I\r").encode()


def seg(ack: bytes, name: str, sep: str = "|") -> list[str]:
    (found,) = [s for s in ack.decode().split("\r") if s.startswith(name + sep)]
    return found.split(sep)


def test_ack_header_swaps_the_parties_and_echoes_the_envelope(engine: Engine) -> None:
    acks = send(engine, adt("AH1", processing="P^T", tail="||||||UNICODE UTF-8"), adt("AH2", version="2.4"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    first, second = seg(acks[0], "MSH"), seg(acks[1], "MSH")
    assert first[2:6] == ["HUREN", "FNYGT", "HIS", "FNXRMYY"]
    assert first[8] == "ACK^A01^ACK"
    assert first[10] == "P^T" and first[11] == "2.5.1" and first[17] == "UNICODE UTF-8"
    assert second[11] == "2.4"
    assert first[9] and first[9] not in ("AH1", second[9])  # the ACK's own control id, a new one each
    assert seg(acks[0], "MSA")[1:3] == ["AA", "AH1"]


def test_unsupported_type_event_and_version_are_rejected_and_kept(engine: Engine) -> None:
    sent = [adt("AR1", msg_type="ZZZ^Z01^ZZZ"), adt("AR2", msg_type="ADT^A99^ADT_A01"), adt("AR3", version="2.9")]
    acks = send(engine, *sent)
    assert [ack_code_of(a) for a in acks] == ["AR"] * 3, acks
    assert [seg(a, "ERR")[2:4] for a in acks] == [
        ["MSH^1^9^^1", "200^Unsupported message type^HL70357"],
        ["MSH^1^9^^2", "201^Unsupported event code^HL70357"],
        ["MSH^1^12", "203^Unsupported version id^HL70357"]]
    assert all(seg(a, "ERR")[4] == "E" for a in acks)  # ERR-4 severity (table 0516)
    assert seg(acks[0], "MSH")[8] == "ACK^Z01^ACK"
    for control, raw in zip(("AR1", "AR2", "AR3"), sent, strict=True):
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
        assert doc is not None and doc["status"] == QUARANTINED and doc["ack_code"] == "AR"
        assert base64.b64decode(doc["raw"]) == raw  # the bytes as sent, for a replay


def test_err_text_is_escaped_with_the_senders_escape_character(engine: Engine) -> None:
    (ack,) = send(engine, adt("AE1", msg_type="ADT^A99^ADT_A01", msh2="^~!&"))
    assert seg(ack, "MSH")[1] == "^~!&"
    assert "ADT!S!A99" in seg(ack, "ERR")[8], ack


def test_a_resend_gets_the_recorded_answer_and_other_bytes_get_ae_205(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("DU1"), adt("DU1"), adt("DU1", name="李^四"))
    assert [seg(a, "MSA")[1:3] for a in acks] == [["AA", "DU1"], ["AA", "DU1"], ["AE", "DU1"]], acks
    assert seg(acks[2], "ERR")[2:4] == ["MSH^1^10", "205^Duplicate key identifier^HL70357"]
    (patient,) = written(engine, fhir, "DU1", "Patient")
    assert patient["meta"]["versionId"] == "1" and patient["name"][0]["family"] == "张"


def test_an_envelope_reject_is_kept_and_a_corrected_replay_lands_once(engine: Engine, http: TestClient) -> None:
    """"Bad input loses nothing": an ``AR`` (MSH-12 ``2.9``) over MLLP and an MLLP-framed body posted to
    ``/hl7v2`` (``AR``, a control character) are both kept raw; the operator's corrected replay of each is
    processed, once. (A sender's own corrected resend with the same MSH-10 is ``AE`` 205 instead: by design,
    MSH-10 names one message; noted, not asserted.)"""
    (ack,) = send(engine, adt("RP1", version="2.9"))
    feed = {"Authorization": "Bearer " + engine.auth.issue_system_token("feed", "system/MessageHeader.c"),
            "Content-Type": "x-application/hl7-v2+er7"}
    posted = http.post("/hl7v2", content=b"\x0b" + adt("RP2") + b"\x1c\r", headers=feed)
    assert ack_code_of(ack) == "AR" and posted.status_code == 200 and posted.headers["X-HL7-Ack-Code"] == "AR"
    assert "0x1C" in seg(posted.content, "ERR")[8]
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}
    for control, corrected in (("RP1", adt("RP1")), ("RP2", adt("RP2"))):
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
        assert doc is not None and doc["status"] == QUARANTINED
        r = http.post(f"/admin/quarantine/{doc['_id']}/replay", content=corrected, headers=operator)
        assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    again = http.post(f"/admin/quarantine/{doc['_id']}/replay", content=adt("RP2"), headers=operator)
    assert again.status_code == 200 and again.json()["ack_code"] == "AA"  # a second replay changes nothing
    reader = {"Authorization": "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")}
    found = http.get("/fhir/Patient", params={"identifier": "urn:huren:mrn:FNXRMYY|PHRP2"}, headers=reader).json()
    (entry,) = found["entry"]
    assert entry["resource"]["meta"]["versionId"] == "1"
    encounters = http.get("/fhir/Encounter", params={"subject": f"Patient/{entry['resource']['id']}"},
                          headers=reader).json()
    assert len(encounters.get("entry", [])) == 1


def test_err2_names_the_repetition_in_error(engine: Engine) -> None:
    """v2.5.1 2.15.5.2 ERR-2, data type ERL: segment ^ sequence ^ field ^ *field repetition* ^ component ^
    sub-component; the first repetition is 1, and an empty ERL.4 points at the first (or only) one.
    FINDING: an invalid national ID in PID-3's *second* repetition is answered ``PID^1^3^^1`` -- ERL.4
    is never filled (``adapters/hl7v2/ack.py`` writes "" there), so the ERR points at repetition 1, the
    medical record number, which is valid; only ERR-8's free text says "repetition 2"."""
    bad_second = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|RE2|P|2.5.1\r"
                  "EVN|A01|20261201091500\r"
                  "PID|1||MRNRE2^^^FNXRMYY^MR~320923197505120029^^^^NNCHN||王^芳||19750512|F\rPV1|1|I\r").encode()
    (ack,) = send(engine, bad_second)
    assert ack_code_of(ack) == "AE"
    erl = seg(ack, "ERR")[2].split("^")
    assert erl[:3] == ["PID", "1", "3"] and "repetition 2" in seg(ack, "ERR")[8]
    assert erl[3] == "2", f"ERR-2 {'^'.join(erl)} points at PID-3 repetition 1"


def test_a_value_too_long_for_fhir_is_located_and_not_called_an_internal_error(engine: Engine) -> None:
    """The brief's rule and 2.15.5 ERR: an AE names segment/field/reason; table 0357's ``207`` is
    "Application internal error" (the receiver's own fault). FINDING: an OBX-5 TX of 1.1 MiB (over R4's
    1 MiB string limit, so refusing it is right) is answered ``AE`` with ERR-2 *empty* and ERR-3 ``207``:
    nothing tells the sender it is OBX-5 of OBX 1 nor that the fault is the value's size."""
    value = "A" * (1024 * 1024 + 100 * 1024)
    raw = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|BIG1|P|2.5.1\r"
           "PID|1||ZY25B^^^FNXRMYY^MR||王^建国||19850412|M\r"
           "OBR|1|ORD-BIG1|LAB-BIG1|PANEL^检验^L|||20261201080000" + "|" * 17 + "F\r"
           f"OBX|1|TX|N1^备注^L||{value}||||||F\r").encode()
    (ack,) = send(engine, raw)
    assert ack_code_of(ack) == "AE"
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "BIG1"))
    assert doc is not None and doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == raw  # kept
    (err,) = [e for e in ack.decode().split("\r") if e.startswith("ERR|") and e.split("|")[4] == "E"]
    fields = err.split("|")
    assert fields[2].startswith("OBX^1^5"), f"ERR-2 {fields[2]!r}, ERR-3 {fields[3]!r}"
    assert not fields[3].startswith("207^")
