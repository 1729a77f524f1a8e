"""An HL7 v2 batch (FHS/BHS ... BTS/FTS) in one MLLP frame or one ``POST /hl7v2`` body
(twenty-first round, hl7probe21).

It was read as one message: the first message was quarantined ``AE`` ("segment 5 starts a second
message") with the rest of the batch inside its raw bytes, so the second message was never
processed nor acknowledged (and a resend of the batch met the same answer). Now each message is
ingested on its own and the answer is a batch of ACKs (chapter 2.10.3): FHS/BHS addressed back with
the incoming control id in FHS-12 / BHS-12, one ACK per message in order, BTS-1 the count.
"""

from __future__ import annotations

import asyncio
import base64

from fastapi.testclient import TestClient

from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.test_mllp import read_acks


def adt(control: str, bad: bool = False) -> bytes:
    """An admission; ``bad``: PID-3 without an identifier (``AE``)."""
    patient = "" if bad else f"P21{control}"
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
            "EVN|A01|20261201091500\r"
            f"PID|1||{patient}^^^FNXRMYY^MR||张^三||19850412|M\rPV1|1|I\r").encode()


def batch(*messages: bytes, file: bool = True) -> bytes:
    head = b"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||BATCH7\r"
    body = head + b"".join(messages) + b"BTS|%d\r" % len(messages)
    if file:
        body = b"FHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||FILE7\r" + body + b"FTS|1\r"
    return body


def segments(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s]


def test_a_batch_over_mllp_gets_a_batch_of_acks_and_every_message_lands(settings: Settings) -> None:
    sent = batch(adt("BA1"), adt("BA2", bad=True), adt("BA3"))

    async def run(engine: Engine) -> list[bytes]:
        server = MLLPServer(IngestHandler(engine.ingestor), port=0, idle_timeout=10)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(frame(sent) + frame(adt("BA4")))  # and a lone message after it
            acks = await read_acks(reader, 2)
            writer.close()
            return acks
        finally:
            await server.stop()

    with Engine(settings) as engine:
        answer, after = asyncio.run(asyncio.wait_for(run(engine), 60))
        segs = segments(answer)
        names = [s[0] for s in segs]
        assert names == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "ERR", "MSH", "MSA", "BTS", "FTS"], answer
        fhs, bhs = segs[0], segs[1]
        assert fhs[2:6] == ["HUREN", "FNYGT", "HIS", "FNXRMYY"] and fhs[11] == "FILE7" and fhs[10]
        assert bhs[2:6] == ["HUREN", "FNYGT", "HIS", "FNXRMYY"] and bhs[11] == "BATCH7"
        assert [s[1:3] for s in segs if s[0] == "MSA"] == [["AA", "BA1"], ["AE", "BA2"], ["AA", "BA3"]]
        assert segs[-2] == ["BTS", "3"] and segs[-1] == ["FTS", "1"]
        assert segments(after)[1][1:3] == ["AA", "BA4"]
        for control, status in (("BA1", PROCESSED), ("BA2", QUARANTINED), ("BA3", PROCESSED)):
            doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
            assert doc is not None and doc["status"] == status, control
        kept = engine.ingestor.messages.get(message_id("FNXRMYY", "BA2"))
        assert base64.b64decode(kept["raw"]) == adt("BA2", bad=True)  # its own bytes, for replay


def test_a_batch_posted_to_hl7v2_gets_a_batch_of_acks(engine: Engine, http: TestClient) -> None:
    token = engine.auth.issue_system_token("feed", "system/MessageHeader.c")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "x-application/hl7-v2+er7"}
    r = http.post("/hl7v2", content=batch(adt("BH1"), adt("BH2"), file=False), headers=headers)
    assert r.status_code == 200 and r.headers["X-HL7-Ack-Code"] == "AA"
    segs = segments(r.content)
    assert [s[0] for s in segs] == ["BHS", "MSH", "MSA", "MSH", "MSA", "BTS"]
    assert [s[1:3] for s in segs if s[0] == "MSA"] == [["AA", "BH1"], ["AA", "BH2"]]
    for control in ("BH1", "BH2"):
        assert engine.ingestor.messages.get(message_id("FNXRMYY", control))["status"] == PROCESSED

    r = http.post("/hl7v2", content=batch(adt("BH3", bad=True), file=False), headers=headers)
    assert r.status_code == 200 and r.headers["X-HL7-Ack-Code"] == "AE"
    r = http.post("/hl7v2", content=batch(file=False), headers=headers)  # an empty batch
    assert r.status_code == 200 and [s[0] for s in segments(r.content)] == ["BHS", "BTS"]
    assert segments(r.content)[-1] == ["BTS", "0"]
    r = http.post("/hl7v2", content=b"FHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||FILE8\rFTS|0\r",
                  headers=headers)  # an empty file
    assert r.status_code == 200 and [s[0] for s in segments(r.content)] == ["FHS", "FTS"]
    assert segments(r.content)[0][11] == "FILE8" and segments(r.content)[-1] == ["FTS", "0"]
