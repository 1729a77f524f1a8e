"""Review probes of the twenty-first round's HL7 v2 batches (FHS/BHS ... BTS/FTS) over ``POST
/hl7v2`` and a real MLLP socket (reviewer hl7, round 21). Real bytes, the real store."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi.testclient import TestClient

from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from tests.feed_calls import post_hl7v2 as post
from tests.test_mllp import read_acks

FHS = b"FHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||FILE9\r"


def adt(control: str, family: str = "张", *, msh18: str = "", extra: str = "", bad: bool = False) -> str:
    """An admission as text (encode it as the test needs); ``bad``: PID-3 without an identifier (AE)."""
    head = f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1"
    if msh18:
        head += f"|||||CHN|{msh18}"
    return (head + "\rEVN|A01|20261201091500\r"
            f"PID|1||{'' if bad else 'RV' + control}^^^FNXRMYY^MR||{family}^三||19850412|M\rPV1|1|I\r" + extra)


def bhs(name: str) -> bytes:
    return f"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||{name}\r".encode()


def batch(*messages: bytes, name: str = "B1") -> bytes:
    return bhs(name) + b"".join(messages) + b"BTS|%d\r" % len(messages)


def segs(ack: bytes, codec: str = "utf-8") -> list[list[str]]:
    return [s.split("|") for s in ack.decode(codec).split("\r") if s]


def read(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict[str, Any]]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    token = engine.auth.issue_system_token("reader", "system/*.rs")
    return [http.get(f"/fhir/{r}", headers={"Authorization": f"Bearer {token}"}).json()
            for r in doc["resources"] if r.startswith(rtype + "/")]


# --- FINDINGS (fail on afc8dbc) ------------------------------------------------------------------

def test_two_batches_in_one_file_are_answered_batch_by_batch(engine: Engine, http: TestClient) -> None:
    """A file of two batches (FHS, BHS m1 BTS, BHS m2 m3 BTS, FTS|2): the answer must be a file of
    two batches of ACKs. It is one BHS, one BTS counting all three ACKs, and FTS-1 = 2 -- the
    answer contradicts itself (FTS says two batches, one is there) and BHS-12 names only the first."""
    body = (FHS + batch(adt("TB1").encode(), name="BA") + batch(adt("TB2").encode(), adt("TB3").encode(), name="BB")
            + b"FTS|2\r")
    s = segs(post(engine, http, body).content)
    names = [x[0] for x in s]
    assert [x[1:3] for x in s if x[0] == "MSA"] == [["AA", "TB1"], ["AA", "TB2"], ["AA", "TB3"]]
    fts = [x for x in s if x[0] == "FTS"][0]
    assert names.count("BHS") == int(fts[1]) == 2, names  # FTS-1 counts the batches it holds
    assert [x[1] for x in s if x[0] == "BTS"] == ["1", "2"], s
    assert [x[11] for x in s if x[0] == "BHS"] == ["BA", "BB"], s


def test_a_control_byte_pair_in_one_message_does_not_drop_the_others(engine: Engine, http: TestClient) -> None:
    """A batch body whose second message carries a stray VT (0x0B) and FS (0x1C) byte in an NTE is
    split as if it were an MLLP capture (``files.split_messages``): the first, valid message is
    dropped silently -- never stored, never acknowledged -- and the batch ACK counts one ACK for
    two messages sent. Each message sent must be answered (or the batch refused as a whole)."""
    good = adt("VT1").encode()
    bad = adt("VT2", extra="NTE|1||see \x0battached\x1c note\r").encode()
    r = post(engine, http, batch(good, bad))
    s = segs(r.content)
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "VT1")) is not None, s
    assert len([x for x in s if x[0] == "MSA"]) == 2, s


def test_a_mixed_charset_batch_is_labelled_by_what_its_body_is(engine: Engine, http: TestClient) -> None:
    """One message in GB 18030 whose ACK carries Chinese text, one in UTF-8: each ACK is encoded in
    its own message's set, the body is labelled ``charset=UTF-8``. A client decoding by the header
    (as the round's own IANA change intends) gets mojibake or an error. The body must decode as it
    says."""
    gb = adt("MC1", msh18="GB 18030-2000").replace("ADT^A01^ADT_A01", "ADT^甲乙").encode("gb18030")
    utf = adt("MC2", msh18="UNICODE UTF-8").encode()
    r = post(engine, http, batch(gb, utf))
    charset = r.headers["content-type"].partition("charset=")[2]
    text = r.content.decode(charset)  # UnicodeDecodeError: the GB 18030 ACK inside a "UTF-8" body
    assert "甲乙" in text, text


# --- GUARDS (pass on afc8dbc) --------------------------------------------------------------------

def test_a_duplicate_control_id_with_other_content_inside_a_batch_lands_once(engine: Engine,
                                                                              http: TestClient) -> None:
    """Two messages with one MSH-10 in one batch, the second saying another name: the first lands,
    the second is answered AE 205 and kept for the operator, the first's data is not overwritten."""
    r = post(engine, http, batch(adt("DUP1", "张").encode(), adt("DUP1", "李").encode()))
    s = segs(r.content)
    assert [x[1:3] for x in s if x[0] == "MSA"] == [["AA", "DUP1"], ["AE", "DUP1"]], s
    assert any(x[0] == "ERR" and x[3].startswith("205^") for x in s), s
    assert r.headers["X-HL7-Ack-Code"] == "AE"
    (patient,) = read(engine, http, "DUP1", "Patient")
    assert patient["name"][0]["family"] == "张" and patient["meta"]["versionId"] == "1", patient


def test_an_identical_message_twice_in_a_batch_is_processed_once(engine: Engine, http: TestClient) -> None:
    one = adt("TWICE1").encode()
    r = post(engine, http, batch(one, one))
    assert [x[1:3] for x in segs(r.content) if x[0] == "MSA"] == [["AA", "TWICE1"], ["AA", "TWICE1"]]
    (patient,) = read(engine, http, "TWICE1", "Patient")
    assert patient["meta"]["versionId"] == "1", patient


def test_a_batch_resent_is_answered_from_the_record_and_changes_nothing(engine: Engine, http: TestClient) -> None:
    sent = FHS + batch(adt("RS1").encode(), adt("RS2", bad=True).encode()) + b"FTS|1\r"
    first = post(engine, http, sent)
    before = {c: engine.ingestor.messages.get(message_id("FNXRMYY", c)) for c in ("RS1", "RS2")}
    assert before["RS1"]["status"] == PROCESSED and before["RS2"]["status"] == QUARANTINED
    again = post(engine, http, sent)
    assert [x[1:3] for x in segs(again.content) if x[0] == "MSA"] == \
        [x[1:3] for x in segs(first.content) if x[0] == "MSA"] == [["AA", "RS1"], ["AE", "RS2"]]
    assert again.headers["X-HL7-Ack-Code"] == first.headers["X-HL7-Ack-Code"] == "AE"
    (patient,) = read(engine, http, "RS1", "Patient")
    assert patient["meta"]["versionId"] == "1"
    # a fresh control id for our answer each time, theirs echoed
    f1, f2 = segs(first.content)[0], segs(again.content)[0]
    assert f1[11] == f2[11] == "FILE9" and f1[10] != f2[10]


def test_every_message_of_a_batch_keeps_exactly_its_own_bytes(engine: Engine, http: TestClient) -> None:
    """The last message (followed by BTS/FTS) and the first (after FHS/BHS) keep no envelope bytes."""
    m1, m2 = adt("OWN1").encode(), adt("OWN2", bad=True).encode()
    post(engine, http, FHS + batch(m1, m2) + b"FTS|1\r")
    for control, raw, status in (("OWN1", m1, PROCESSED), ("OWN2", m2, QUARANTINED)):
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
        assert doc["status"] == status and base64.b64decode(doc["raw"]) == raw, control


def test_a_refused_message_inside_an_mllp_batch_is_kept_and_the_rest_land(engine: Engine) -> None:
    """AR (MSH-12 '2.9', a version outside 2.3-2.8) in the middle of a batch over a real socket: the
    others land, its raw kept."""
    refused = adt("MR2").replace("|MR2|P|2.5.1\r", "|MR2|P|2.9\r").encode()
    assert b"|2.9\r" in refused
    sent = batch(adt("MR1").encode(), refused, adt("MR3", "王").encode())

    async def run() -> list[bytes]:
        server = MLLPServer(IngestHandler(engine.ingestor), port=0, idle_timeout=10)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(frame(sent) + frame(sent))
            acks = await read_acks(reader, 2)
            writer.close()
            return acks
        finally:
            await server.stop()

    first, again = asyncio.run(asyncio.wait_for(run(), 60))
    for answer in (first, again):
        assert [x[1:3] for x in segs(answer) if x[0] == "MSA"] == [["AA", "MR1"], ["AR", "MR2"], ["AA", "MR3"]]
        assert segs(answer)[-1] == ["BTS", "3"]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "MR2"))
    assert doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == refused
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "MR3"))["status"] == PROCESSED


def test_an_enhanced_mode_message_in_a_batch_gets_one_answer(engine: Engine, http: TestClient) -> None:
    """MSH-15/16 AL/AL inside a batch: one original-mode ACK for it (documented), stored once."""
    enhanced = adt("EN1").replace("|EN1|P|2.5.1", "|EN1|P|2.5.1|||AL|AL").encode()
    r = post(engine, http, batch(enhanced))
    s = segs(r.content)
    assert [x[1:3] for x in s if x[0] == "MSA"] == [["AA", "EN1"]], s
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "EN1"))["status"] == PROCESSED


def test_messages_of_a_batch_apply_in_the_order_sent(engine: Engine, http: TestClient) -> None:
    """An admission then an update of the same patient in one batch: the update is the last word."""
    a01 = adt("ORD1", "张").encode()
    a08 = adt("ORD2", "李").replace("ADT^A01^ADT_A01", "ADT^A08^ADT_A01").replace("EVN|A01|", "EVN|A08|")
    a08 = a08.replace("RVORD2", "RVORD1").replace("20261201091500", "20261201101500").encode()
    r = post(engine, http, batch(a01, a08))
    assert [x[1:3] for x in segs(r.content) if x[0] == "MSA"] == [["AA", "ORD1"], ["AA", "ORD2"]], r.content
    (first,) = read(engine, http, "ORD1", "Patient")
    (second,) = read(engine, http, "ORD2", "Patient")
    assert first["id"] == second["id"] and second["name"][0]["family"] == "李", second


def test_a_gb18030_batch_with_bom_and_only_fhs_is_labelled_and_decodes(engine: Engine, http: TestClient) -> None:
    body = ("\ufeff\r\n".encode() + FHS
            + adt("GBB1", msh18="GB 18030-2000").replace("ADT^A01^ADT_A01", "ADT^甲乙").encode("gb18030")
            + adt("GBB2", msh18="GB 18030-2000").encode("gb18030") + b"FTS|0\r")
    r = post(engine, http, body)
    assert r.headers["content-type"].endswith("charset=GB18030"), r.headers
    s = segs(r.content, "gb18030")
    assert [x[0] for x in s if x[0] in ("FHS", "FTS", "BHS", "BTS")] == ["FHS", "FTS"], s
    assert [x[1:3] for x in s if x[0] == "MSA"] == [["AR", "GBB1"], ["AA", "GBB2"]], s
    assert "甲乙" in r.content.decode("gb18030")
    assert r.headers["X-HL7-Ack-Code"] == "AR"
