"""The HL7 conformance tests' shared set-up (hl7conf27, hl7left28, hl7fix28 and their reviews): one
engine a test module over a real store, its HTTP client holding a hospital system's token, ``POST
/hl7v2`` as a sender makes it, and the ADT^A04 / ORU^R01 message builders those files copied from
each other (each names its own record-number prefix, so its patients stay apart). One copy of that
set-up (tidy29). A module imports the fixtures ``module_engine`` and ``module_http`` (pytest knows them as
``engine`` and ``http``); a module needing another engine (a site folder) defines its own ``engine``,
which ``http`` then uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.listeners.ingest_handler import IngestHandler
from adapters.listeners.mllp import MLLPServer, frame
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings

ER7 = "x-application/hl7-v2+er7"


@pytest.fixture(scope="module", name="engine")
def module_engine(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The module's engine, a store of its own, no listeners."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as eng:
        yield eng


@pytest.fixture(scope="module", name="http")
def module_http(engine: Engine) -> Iterator[TestClient]:
    """The module's HTTP client, a hospital system's token (``system/*.cruds``) on it."""
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("hl7-tests", "system/*.cruds")
        yield client


def post(http: TestClient, body: bytes | str, content_type: str = ER7, codec: str = "utf-8") -> bytes:
    """``POST /hl7v2`` with ``body`` (text: encoded in ``codec``); the HTTP answer is 200, the ACK its body."""
    raw = body.encode(codec) if isinstance(body, str) else body
    r = http.post("/hl7v2", content=raw, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    return r.content


def mllp_exchange(engine: Engine, data: bytes, answers: int) -> list[bytes]:
    """``data`` written as is (framed or not, stray bytes and all) in one write over a real socket to an
    MLLP listener on ``engine``'s ingest handler (as ``huren serve`` wires it, port 0), and the first
    ``answers`` frames it sends back, unframed, in order. One copy of the MLLP client hl7mode29,
    hl7probe21_ack, hl7left28 and hl7struct30 each wrote (suitedup31)."""
    async def run() -> list[bytes]:
        server = MLLPServer(IngestHandler(engine.ingestor), port=0, idle_timeout=10)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(data)
            await writer.drain()
            got = []
            for _ in range(answers):
                block = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 20)
                assert block[:1] == b"\x0b", block  # the listener sends whole frames, nothing between them
                got.append(block[1:-2])
            writer.close()
            return got
        finally:
            await server.stop()

    return asyncio.run(run())


def mllp(engine: Engine, *payloads: bytes) -> list[bytes]:
    """Each payload framed, all in one write (``mllp_exchange``); one answer a payload, in order."""
    return mllp_exchange(engine, b"".join(frame(p) for p in payloads), len(payloads))


def err_lines(ack: bytes) -> list[str]:
    """The ACK's ERR segments, as text."""
    return [s for s in ack.decode("utf-8").split("\r") if s.startswith("ERR")]


def written(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict]:
    """The ``rtype`` resources FNXRMYY's message ``control`` wrote, read over HTTP."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return [http.get(f"/fhir/{r}").json() for r in doc.get("resources") or [] if r.startswith(rtype + "/")]


def adt(control: str, *, mrn: str, name: str = "张^三", sex: str = "M", stamp: str = "20261201091500",
        version: str = "2.5.1", msh9: str = "ADT^A04^ADT_A01", processing: str = "P", application: str = "HIS",
        msh_rest: str = "", evn: str = "20261201091500", pv1_2: str = "O", tail: str = "") -> str:
    """FNXRMYY's ADT (an A04 registration as given): record number ``mrn`` + ``control``; ``msh_rest``
    follows MSH-12 as written (``|||||CHN|UNICODE UTF-8``), ``tail`` the PV1."""
    return (f"MSH|^~\\&|{application}|FNXRMYY|HUREN|FNYGT|{stamp}||{msh9}|{control}|{processing}|{version}{msh_rest}\r"
            f"EVN|A04|{evn}\rPID|1||{mrn}{control}^^^FNXRMYY^MR||{name}||19850412|{sex}\rPV1|1|{pv1_2}\r{tail}")


def oru(control: str, value: str, *, mrn: str, kind: str = "TX", unit: str = "") -> str:
    """FNXRMYY's glucose result ``value`` (OBX-2 ``kind``, OBX-6 ``unit``) of 王五, record ``mrn`` + ``control``."""
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{mrn}{control}^^^FNXRMYY^MR||王^五||19850412|M\r"
            f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            f"OBX|1|{kind}|GLU^血糖^L||{value}|{unit}|||||F|||20261201090000\r")
