"""Batches mended (twenty-first round, hl7mend21): a stray VT/FS inside a message drops nothing, a
mixed-charset batch is answered in one set (UTF-8) that its label and every ACK's MSH-18 say, and a
file of several batches is answered batch by batch -- real bytes over POST /hl7v2 and a real socket."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from adapters.listeners.files import split_messages
from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.engine import Engine
from tests.test_mllp import read_acks
from tests.test_rvhl7_batch import FHS, adt, batch, post, segs


def mllp_answer(engine: Engine, sent: bytes) -> bytes:
    async def run() -> bytes:
        server = MLLPServer(IngestHandler(engine.ingestor), port=0, idle_timeout=10)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(frame(sent))
            (ack,) = await read_acks(reader, 1)
            writer.close()
            return ack
        finally:
            await server.stop()

    return asyncio.run(asyncio.wait_for(run(), 60))


def test_a_file_with_a_stray_vt_fs_pair_keeps_every_message() -> None:
    one, two = adt("SF1").encode(), adt("SF2", extra="NTE|1||a \x0bb\x1c c\r").encode()
    assert split_messages(one + two) == [one, two]
    # a real MLLP capture is still read frame by frame; text after a frame's FS is kept, not dropped
    three = adt("SF3").encode()
    assert split_messages(b"\x0b" + one + b"\x1c\r\x0b" + three + b"\x1c\r") == [one, three]
    assert split_messages(b"\x0b" + one + b"\x1c\rPID|stray\r") == [one, b"PID|stray\r"]


def mixed() -> tuple[bytes, bytes]:
    gb = adt("MX1", msh18="GB 18030-2000").replace("ADT^A01^ADT_A01", "ADT^甲乙").encode("gb18030")
    return gb, adt("MX2", "李", msh18="UNICODE UTF-8").replace("ADT^A01^ADT_A01", "ADT^丙丁").encode()


def check_mixed(answer: bytes) -> None:
    text = answer.decode("utf-8")  # one set for the whole answer
    msh = [x for x in segs(answer) if x[0] == "MSH"]
    assert [x[17] for x in msh] == ["UNICODE UTF-8", "UNICODE UTF-8"], msh  # each ACK says what it is
    assert "甲乙" in text and "丙丁" in text
    assert [x[1:3] for x in segs(answer) if x[0] == "MSA"] == [["AR", "MX1"], ["AR", "MX2"]]


def test_a_mixed_charset_batch_over_http_is_one_utf8_body(engine: Engine, http: TestClient) -> None:
    r = post(engine, http, batch(*mixed()))
    assert r.headers["content-type"].endswith("charset=UTF-8"), r.headers
    check_mixed(r.content)


def test_a_mixed_charset_batch_over_mllp_is_one_utf8_frame(engine: Engine) -> None:
    check_mixed(mllp_answer(engine, batch(*mixed())))


def test_a_gb_only_batch_stays_in_gb18030(engine: Engine, http: TestClient) -> None:
    gb, _ = mixed()
    other = adt("MX3", msh18="GB 18030-2000").encode("gb18030")
    r = post(engine, http, batch(gb, other))
    assert r.headers["content-type"].endswith("charset=GB18030"), r.headers
    assert [x[17] for x in segs(r.content, "gb18030") if x[0] == "MSH"] == ["GB 18030-2000"] * 2


def two_batches() -> bytes:
    return (FHS + batch(adt("TW1").encode(), name="BA") + b"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||"
            b"ADT^A01^ADT_A01|TW2|P|2.5.1\rEVN|A01\rPID|1||RVTW2^^^FNXRMYY^MR||W^X\r"
            + batch(adt("TW3").encode(), adt("TW4").encode(), name="BB") + b"FTS|2\r")


def check_two(answer: bytes) -> None:
    s = segs(answer)
    heads = [x[0] if x[0] != "MSA" else "MSA-" + x[2] for x in s if x[0] in ("FHS", "BHS", "BTS", "FTS", "MSA")]
    # the message between the batches (outside any BHS) is answered where it was sent, not dropped
    assert heads == ["FHS", "BHS", "MSA-TW1", "BTS", "MSA-TW2", "BHS", "MSA-TW3", "MSA-TW4", "BTS", "FTS"], heads
    assert [x[1] for x in s if x[0] in ("BTS", "FTS")] == ["1", "2", "2"], s
    assert [x[11] for x in s if x[0] == "BHS"] == ["BA", "BB"]


def test_two_batches_over_http_and_mllp_are_answered_batch_by_batch(engine: Engine, http: TestClient) -> None:
    check_two(post(engine, http, two_batches()).content)
    check_two(mllp_answer(engine, two_batches()))
