"""MLLP framing and HL7 batches against the real engine over a real socket (twenty-fifth round, probeh25: a
conformance probe, tests only). All guards: found right on this round's base.

MLLP (HL7 v2 Transport Specification, MLLP release 2): a block is ``<VT> data <FS><CR>``; bytes outside a
block are not data; a block cut off by a closed connection was never delivered, so nothing of it is stored
and it is not acknowledged (the sender resends it). Batches (chapter 2.10.3): the answer to a batch is a
batch (BHS ... BTS), BTS-1 its message count, even when it holds no message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.engine import Engine
from engine.messages import PROCESSED, message_id
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_mllp import read_acks


def adt(control: str) -> bytes:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
            "EVN|A01|20261201091500\r"
            f"PID|1||PM{control}^^^FNXRMYY^MR||张^三||19850412|M\rPV1|1|I\r").encode()


@contextlib.asynccontextmanager
async def listening(engine: Engine) -> AsyncIterator[MLLPServer]:
    """The listener as ``huren serve`` builds it: ``IngestHandler`` over the engine's ingestor."""
    server = MLLPServer(IngestHandler(engine.ingestor), host="127.0.0.1", port=0, idle_timeout=10)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def send(engine: Engine, *messages: bytes) -> list[bytes]:
    """Each message framed, all in one TCP write; the answers in order."""
    async def talk(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(frame(m) for m in messages))
        acks = await read_acks(reader, len(messages))
        writer.close()
        return acks
    return run(engine, talk)  # type: ignore[return-value]


def run(engine: Engine, talk) -> object:  # noqa: ANN001
    async def main() -> object:
        async with listening(engine) as server:
            return await talk(server.port)
    return asyncio.run(asyncio.wait_for(main(), 60))


def msa(ack: bytes) -> list[str]:
    return [s for s in ack.decode().split("\r") if s.startswith("MSA")][0].split("|")[1:3]


def test_noise_an_empty_block_and_a_byte_by_byte_block(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    async def talk(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\r\n  \x0b\x1c\x0d")  # noise before a start block, then a zero-length block
        writer.write(b"garbage" + frame(adt("MF1")))
        for byte in frame(adt("MF2")):
            writer.write(bytes([byte]))
            await writer.drain()
        acks = await read_acks(reader, 3)
        writer.close()
        return acks

    empty, first, second = run(engine, talk)
    assert ack_code_of(empty) == "AR" and msa(empty) == ["AR", ""]  # answered, addressed from nothing
    assert msa(first) == ["AA", "MF1"] and msa(second) == ["AA", "MF2"]
    for control in ("MF1", "MF2"):
        (patient,) = written(engine, fhir, control, "Patient")
        assert patient["identifier"][0]["value"] == "PM" + control


def test_a_connection_closed_mid_block_stores_nothing_of_it(engine: Engine) -> None:
    async def talk(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(adt("MC1")))
        acks = await read_acks(reader, 1)
        writer.write(b"\x0b" + adt("MC2")[:-9])  # cut inside PV1, before the end block
        await writer.drain()
        writer.close()
        await asyncio.sleep(1.0)
        return acks

    (ack,) = run(engine, talk)
    assert msa(ack) == ["AA", "MC1"]
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "MC1"))["status"] == PROCESSED
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "MC2")) is None


def test_concurrent_connections_each_answered_in_order(engine: Engine) -> None:
    async def one(port: int, n: int) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        controls = [f"CC{n}x{i}" for i in range(3)]
        writer.write(b"".join(frame(adt(c)) for c in controls))
        acks = await read_acks(reader, 3)
        writer.close()
        return [msa(a)[1] for a in acks if ack_code_of(a) == "AA"]

    async def talk(port: int) -> list[list[str]]:
        return await asyncio.gather(*(one(port, n) for n in range(5)))

    assert run(engine, talk) == [[f"CC{n}x{i}" for i in range(3)] for n in range(5)]


def test_an_empty_batch_and_a_batch_in_other_delimiters_are_answered_as_batches(engine: Engine) -> None:
    empty = b"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||BATCH25\rBTS|0\r"
    other = (b"FHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||FILE25\r"
             b"BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||||BATCH26\r" + adt("MB1") + b"BTS|1\rFTS|1\r")
    other = other.replace(b"|", b"#").replace(b"^~\\&", b"$%\\!").replace(b"^", b"$")

    async def talk(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(empty) + frame(other))
        acks = await read_acks(reader, 2)
        writer.close()
        return acks

    first, second = run(engine, talk)
    lines = [s for s in first.decode().split("\r") if s]
    assert lines[0].startswith("BHS|^~\\&|HUREN|FNYGT|HIS|FNXRMYY|") and lines[0].endswith("|BATCH25")
    assert lines[1:] == ["BTS|0"]
    lines = [s for s in second.decode().split("\r") if s]
    assert [s[:3] for s in lines] == ["FHS", "BHS", "MSH", "MSA", "BTS", "FTS"]
    assert lines[0].startswith("FHS#$%\\!#HUREN#FNYGT#HIS#FNXRMYY#") and lines[3] == "MSA#AA#MB1"
    assert lines[4:] == ["BTS#1", "FTS#1"]
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "MB1"))["status"] == PROCESSED
