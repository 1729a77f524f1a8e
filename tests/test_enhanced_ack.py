"""Enhanced-mode acknowledgements over a real MLLP socket into the real engine: a sender the site
opts in gets the accept ACK (CA / CR) once its message is stored and then the application ACK
(AA / AE) on the same connection, as MSH-15 / MSH-16 ask (AL, NE, ER, SU); a sender not opted in
keeps one original-mode ACK whatever those fields say.

Each scenario ends with a marker message whose answers are known, so "nothing was sent" is
checked by what arrives next (answers are written in message order), not by a timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.test_mllp import asynctest, read_acks
from tests.test_senders import site_with

GOOD_ID = "320923197505120025"
BAD_ID = "320923197505120029"  # wrong ISO 7064 check character: AE naming PID-3


def adt(control: str, accept: str, application: str, *, facility: str = "FNXRMYY", national_id: str = GOOD_ID,
        version: str = "2.5.1") -> bytes:
    return (
        f"MSH|^~\\&|HIS|{facility}|HUREN|FNYGT|20261101080000||ADT^A01^ADT_A01|{control}|P|{version}"
        f"|||{accept}|{application}\r"
        "EVN|A01|20261101080000\r"
        f"PID|1||{national_id}^^^^NNCHN~MRN{control}^^^{facility}^MR||王^芳||19750512|F\r"
        "PV1|1|I|内科^301^2\r"
    ).encode()


def fields(ack: bytes, segment: str) -> list[str]:
    (seg,) = [s for s in ack.decode().split("\r") if s.startswith(segment + "|")]
    return seg.split("|")


def answers(acks: list[bytes]) -> list[tuple[str, str]]:
    """(MSA-1, MSA-2) of each answer, in the order they arrived."""
    return [(ack_code_of(a), fields(a, "MSA")[2]) for a in acks]


@contextlib.asynccontextmanager
async def listening(settings: Settings, tmp_path: Path, enhanced: list[str]) -> AsyncIterator[tuple[Engine, int]]:
    site = site_with(tmp_path, {"enhanced_acknowledgement": enhanced})
    with Engine(settings.with_(site=site)) as engine:
        server = MLLPServer(IngestHandler(engine.ingestor), host="127.0.0.1", port=0, idle_timeout=10)
        await server.start()
        try:
            yield engine, server.port
        finally:
            await server.stop()


async def exchange(port: int, messages: list[bytes], expected: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(frame(m) for m in messages))
    acks = await read_acks(reader, expected)
    writer.close()
    return acks


@asynctest
async def test_opted_in_sender_gets_commit_then_application_ack(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (engine, port):
        acks = await exchange(port, [adt("E1", "AL", "AL"), adt("E2", "AL", "AL", national_id=BAD_ID)], 4)
        assert answers(acks) == [("CA", "E1"), ("AA", "E1"), ("CA", "E2"), ("AE", "E2")]
        commit, application = acks[2], acks[3]
        assert "ERR" not in commit.decode()  # the message was stored: nothing wrong to commit
        msh = fields(application, "MSH")
        assert msh[8] == "ACK^A01^ACK" and (msh[14], msh[15]) == ("NE", "NE")  # asks for nothing back
        assert fields(commit, "MSH")[9] != msh[9]  # two messages, two control ids
        err = fields(application, "ERR")
        assert err[2] == "PID^1^3^^1" and err[3].startswith("102^") and "check character" in err[8]
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "E1"))["status"] == PROCESSED
        bad = engine.ingestor.messages.get(message_id("FNXRMYY", "E2"))
        assert bad["status"] == QUARANTINED and bad["ack_code"] == "AE"  # kept, as in original mode


@asynctest
async def test_sender_not_opted_in_keeps_one_original_mode_ack(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNZYY"]) as (_, port):
        acks = await exchange(port, [adt("O1", "AL", "AL"), adt("O2", "AL", "AL", national_id=BAD_ID),
                                     adt("O3", "AL", "AL")], 3)
        assert answers(acks) == [("AA", "O1"), ("AE", "O2"), ("AA", "O3")]
        assert fields(acks[1], "ERR")[2] == "PID^1^3^^1"
        assert all(len(fields(a, "MSH")) <= 12 for a in acks)  # an original-mode ACK: no MSH-15/16


@asynctest
async def test_opted_in_sender_without_msh15_16_is_in_original_mode(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (_, port):
        acks = await exchange(port, [adt("P1", "", ""), adt("P2", "AL", "AL")], 3)
        assert answers(acks) == [("AA", "P1"), ("CA", "P2"), ("AA", "P2")]


@asynctest
async def test_ne_sends_nothing_for_its_stage(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (_, port):
        acks = await exchange(port, [adt("N1", "NE", "AL"), adt("N2", "AL", "NE"), adt("N3", "NE", "NE"),
                                     adt("N4", "AL", "AL")], 4)
        assert answers(acks) == [("AA", "N1"), ("CA", "N2"), ("CA", "N4"), ("AA", "N4")]


@asynctest
async def test_er_answers_only_errors_and_rejections(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (engine, port):
        acks = await exchange(port, [
            adt("R1", "ER", "ER"),  # stored and processed: nothing at all
            adt("R2", "ER", "ER", national_id=BAD_ID),  # stored (no CA), application error: AE
            adt("R3", "ER", "ER", version="2.9"),  # refused at the envelope: CR, no application ACK
            adt("R4", "AL", "AL"),
        ], 4)
        assert answers(acks) == [("AE", "R2"), ("CR", "R3"), ("CA", "R4"), ("AA", "R4")]
        reject = fields(acks[1], "ERR")
        assert reject[2] == "MSH^1^12" and reject[3].startswith("203^")
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "R1"))["status"] == PROCESSED


@asynctest
async def test_su_answers_only_successes(settings: Settings, tmp_path: Path) -> None:
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (_, port):
        acks = await exchange(port, [
            adt("S1", "SU", "SU"),  # CA and AA
            adt("S2", "SU", "SU", national_id=BAD_ID),  # committed (CA), failed: no AE
            adt("S3", "SU", "SU", version="2.9"),  # rejected: no CR, no application ACK
            adt("S4", "AL", "AL"),
        ], 4)
        assert answers(acks) == [("CA", "S1"), ("AA", "S1"), ("CA", "S2"), ("CA", "S4")]


@asynctest
async def test_an_ack_from_an_enhanced_sender_is_not_acknowledged(settings: Settings, tmp_path: Path) -> None:
    ack_in = (b"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ACK^A01^ACK|K1|P|2.5.1|||NE|NE\r"
              b"MSA|CA|A0001\r")
    async with listening(settings, tmp_path, ["FNXRMYY"]) as (_, port):
        acks = await exchange(port, [ack_in, adt("K2", "AL", "AL")], 2)
        assert answers(acks) == [("CA", "K2"), ("AA", "K2")]
