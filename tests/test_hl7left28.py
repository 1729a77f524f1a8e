"""The neighbours of hl7conf27's leftovers, probed as a real sender would (twenty-eighth round, hl7left28):
real HL7 v2 bytes over real HTTP (FastAPI's TestClient) and a real MLLP socket into one real engine.

* coded fields read against a table: a value the table lacks is left out and named in a W ERR (103) at
  segment^sequence^field, once per field even when two rules read it (AL1-2);
* what we send back: a value holding delimiters (``\\F\\``, ``\\S\\`` as sent) is escaped again in ERR-8;
* MSH: MSH-7 and MSH-9.3 empty (R from v2.5: warned, optional in v2.4: not), MSH-9.3 not the event's
  structure (warned), MSH-11 outside table 0103 (refused AR 202, the raw bytes kept: hl7mode29);
* POST /hl7v2's Content-Type charset: kept with the raw message (a replay reads the same text), the
  ACK in that set, MSH-18 still the message's own word, an unknown set refused 415;
* ``Accept: text/json`` on /fhir (R4 http.html 3.1.0.1.9 lists it among the generic types);
* MLLP framing (stray bytes before a start block, a frame never ended) and batch trailer counts.
"""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import frame
from engine.engine import Engine
from engine.messages import message_id
from tests import hl7_calls
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401  (the module's engine and client)


def adt(control: str, *, msh18: str = "", **fields: str) -> str:
    """An ADT^A04 of its own (record L28 + ``control``); ``msh18`` after MSH-12 as MSH-18."""
    return hl7_calls.adt(control, mrn="L28", msh_rest=f"||||||{msh18}" if msh18 else "", **fields)


def errs(ack: bytes, codec: str = "utf-8") -> list[list[str]]:
    return [s.split("|") for s in ack.decode(codec).split("\r") if s.startswith("ERR")]


# --- coded fields read against a table ------------------------------------------------------------

def test_each_coded_value_its_table_lacks_is_named_once_at_its_field(engine: Engine, http: TestClient) -> None:
    """PV1-2 (table 0004), AL1-2 (0127, read by two rules: category and type) and AL1-4 (0128): each
    value left out is one W ERR 103 at its field, ERR-8 naming the value and the table; the rest stored."""
    raw = adt("C1", tail="AL1|1|ZZ|^青霉素|XX\r").replace("PV1|1|O", "PV1|1|Q9").encode()
    ack = post(http, raw)
    assert ack_code_of(ack) == "AA", ack
    found = [(e[2], e[3].split("^")[0], e[4], e[8]) for e in errs(ack)]
    assert [f[:3] for f in found] == [("PV1^1^2", "103", "W"), ("AL1^1^2", "103", "W"), ("AL1^1^4", "103", "W")], ack
    assert "'Q9'" in found[0][3] and "0004" in found[0][3] and "'ZZ'" in found[1][3] and "0127" in found[1][3]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "C1"))
    assert any(r.startswith("AllergyIntolerance/") for r in doc["resources"]), doc["resources"]


def test_err8_escapes_the_delimiters_a_dropped_value_holds(http: TestClient) -> None:
    """PID-8 sent as ``X\\F\\Y\\S\\Z`` is the value ``X|Y^Z``: named in ERR-8, its ``|`` and ``^`` go back
    escaped, so the ERR keeps its nine fields and ERR-8 reads back as the value sent."""
    ack = post(http, adt("C2", sex="X\\F\\Y\\S\\Z").encode())
    assert ack_code_of(ack) == "AA", ack
    (err,) = errs(ack)
    assert len(err) == 9 and err[2] == "PID^1^8", err
    assert "'X\\F\\Y\\S\\Z'" in err[8], err


# --- MSH ------------------------------------------------------------------------------------------

def test_msh7_empty_is_warned_only_where_the_version_requires_it(http: TestClient) -> None:
    v251 = post(http, adt("M1", stamp="").encode())
    v24 = post(http, adt("M2", stamp="", version="2.4").encode())
    assert ack_code_of(v251) == ack_code_of(v24) == "AA"
    assert [e[2] for e in errs(v251)] == ["MSH^1^7"], v251
    assert b"ERR" not in v24, v24  # MSH-7 is optional up to v2.4 (the ERR-1 layout would name it too)


@pytest.mark.parametrize("control, msh9, code", [
    ("S1", "ADT^A04", "101"),  # MSG.3 required from v2.5
    ("S2", "ADT^A04^ORU_R01", "103"),  # not the structure table 0354 gives A04 (ADT_A01)
])
def test_msh9_structure_missing_or_wrong_is_warned_and_the_message_read_by_its_event(
        engine: Engine, http: TestClient, control: str, msh9: str, code: str) -> None:
    ack = post(http, adt(control, msh9=msh9).encode())
    assert ack_code_of(ack) == "AA", ack
    assert [(e[2], e[3].split("^")[0], e[4]) for e in errs(ack)] == [("MSH^1^9^^3", code, "W")], ack
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert any(r.startswith("Patient/") for r in doc["resources"])


def test_a_correct_structure_and_v23_without_one_are_not_warned(http: TestClient) -> None:
    right = post(http, adt("S3").encode())
    v23 = post(http, adt("S4", msh9="ADT^A04", version="2.3").encode())
    assert (ack_code_of(right), ack_code_of(v23)) == ("AA", "AA")
    assert b"ERR" not in right and b"ERR" not in v23, (right, v23)


def test_a_processing_id_outside_table_0103_is_refused(engine: Engine, http: TestClient) -> None:
    """hl7left28 warned W 202 and stored it; the lead's decision of the twenty-ninth round (hl7mode29) is
    chapter 2's: a processing id the node does not accept is AR 202 at MSH^1^11, kept for the operator."""
    ack = post(http, adt("P1", processing="X").encode())
    assert ack_code_of(ack) == "AR", ack
    assert [(e[2], e[3].split("^")[0], e[4]) for e in errs(ack)] == [("MSH^1^11", "202", "E")], ack
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "P1"))["status"] == "quarantined"
    production = post(http, adt("P2", processing="P^").encode())  # MSH-11.2 empty: current processing
    assert ack_code_of(production) == "AA" and b"ERR" not in production, production


# --- POST /hl7v2's charset ------------------------------------------------------------------------

def test_the_http_charset_is_kept_for_a_replay_and_the_ack_comes_back_in_it(engine: Engine,
                                                                            http: TestClient) -> None:
    """``钱伟`` in GB 18030 is also valid UTF-8: only HTTP's charset says which it is. The replay (no HTTP
    then) reads it the same way, from the peer string kept with the raw bytes."""
    raw = adt("H1", name="钱伟", tail="NTE|1||备注\r").encode("gb18030")
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7; charset=GB18030"})
    assert r.status_code == 200 and r.headers["content-type"].endswith("charset=GB18030"), r.headers
    assert ack_code_of(r.content) == "AA", r.content
    doc_id = message_id("FNXRMYY", "H1")
    doc = engine.ingestor.messages.get(doc_id)
    assert "http-charset=GB18030" in doc["peer"] and base64.b64decode(doc["raw"]) == raw
    (ref,) = [x for x in doc["resources"] if x.startswith("Patient/")]
    assert http.get(f"/fhir/{ref}").json()["name"][0]["text"] == "钱伟"
    again = engine.ingestor.replay(doc_id, actor="hl7left28-test")
    assert again is not None and again.code == "AA", again
    assert http.get(f"/fhir/{ref}").json()["name"][0]["text"] == "钱伟"


def test_msh18_stays_the_messages_own_word_over_the_http_charset(http: TestClient) -> None:
    raw = adt("H2", name="孙^丽", msh18="UNICODE UTF-8").encode("utf-8")
    ack = post(http, raw, "text/plain; charset=GB18030")
    assert ack_code_of(ack) == "AA", ack
    doc = http.get("/fhir/Patient", params={"identifier": "L28H2"}).json()
    names = [e["resource"]["name"][0]["text"] for e in doc.get("entry", [])]
    assert names == ["孙丽"], doc


def test_an_unknown_http_charset_is_refused_415(http: TestClient) -> None:
    r = http.post("/hl7v2", content=adt("H3").encode(), headers={"Content-Type": "text/plain; charset=x-klingon"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome", r.text


# --- FHIR generic JSON type -----------------------------------------------------------------------

def test_accept_text_json_is_answered_in_text_json(http: TestClient) -> None:
    meta = http.get("/fhir/metadata", headers={"Accept": "text/json"})
    assert meta.status_code == 200 and meta.headers["content-type"].split(";")[0] == "text/json", meta.headers
    assert meta.json()["resourceType"] == "CapabilityStatement"
    search = http.get("/fhir/Patient", params={"identifier": "L28H1"}, headers={"Accept": "text/json"})
    assert search.status_code == 200 and search.headers["content-type"].startswith("text/json")
    pid = search.json()["entry"][0]["resource"]["id"]
    read = http.get(f"/fhir/Patient/{pid}", headers={"Accept": "text/json"})  # the fast read
    assert read.status_code == 200 and read.headers["content-type"].startswith("text/json"), read.headers
    assert read.json()["id"] == pid
    plain = http.get("/fhir/metadata", headers={"Accept": "text/json;q=0.5, application/json"})
    assert plain.headers["content-type"].startswith("application/json")
    refused = http.get("/fhir/metadata", headers={"Accept": "text/json;q=0"})
    assert refused.status_code == 406


# --- MLLP framing ---------------------------------------------------------------------------------

def test_mllp_skips_stray_bytes_and_never_acks_a_frame_left_open(engine: Engine) -> None:
    """Noise before a start block is skipped; a frame cut off by the next start block was never whole:
    not acknowledged and not stored (the sender resends it), the next one answered."""
    cut = b"\x0b" + adt("F1").encode()  # no end block
    payload = b"\r\n garbage " + frame(adt("F0").encode()) + cut + frame(adt("F2").encode())
    first, second = hl7_calls.mllp_exchange(engine, payload, 2)
    assert [ack_code_of(a) for a in (first, second)] == ["AA", "AA"]
    assert b"MSA|AA|F0" in first and b"MSA|AA|F2" in second
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "F1")) is None


# --- batches --------------------------------------------------------------------------------------

def test_a_batch_whose_bts_count_does_not_match_is_reported(http: TestClient) -> None:
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r" + adt("B1") + adt("B2") + "BTS|5\rFTS|1\r").encode()
    ack = post(http, body)
    assert b"ERR" in ack or b"BTS|2|" in ack, ack


def test_a_gb18030_senders_ack_comes_back_in_its_set_over_mllp(engine: Engine) -> None:
    """MSH-18 ``GB 18030-2000``: the ACK echoes it and is encoded in it, ERR-8 naming the dropped Chinese
    value (PID-8 ``男``: GB/T 2261.1 sends ``1``, not the word) as the sender wrote it."""
    raw = adt("G1", sex="男", msh18="GB 18030-2000").encode("gb18030")
    (ack,) = hl7_calls.mllp(engine, raw)
    text = ack.decode("gb18030")
    assert ack_code_of(ack) == "AA" and text.split("\r")[0].split("|")[17] == "GB 18030-2000", text
    (err,) = errs(ack, "gb18030")
    assert err[2] == "PID^1^8" and "'男'" in err[8], err
