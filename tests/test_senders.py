"""Who sent a message when MSH-4 does not name a registered institution: the site's sender table
(MSH-4 aliases, MSH-3 application, the listener's port or TLS client certificate) binds it to one.
Real messages over a real MLLP socket and POST /hl7v2; a replay resolves the same way."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import yaml

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.test_ingest_durability import exchange
from tests.test_mllp import asynctest

NATIONAL_ID = "110101198001010010"


def adt(control: str, app: str = "HIS", facility: str = "") -> bytes:
    return (
        f"MSH|^~\\&|{app}|{facility}|HUREN|FNYGT|20261101091500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|A04|20261101091500\r"
        f"PID|1||{NATIONAL_ID}^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M\r"
    ).encode()


def site_with(tmp_path: Path, senders: dict) -> Path:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    (site / "institutions.yaml").write_text((DEFAULTS_DIR / "institutions.yaml").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    (site / "hl7v2" / "senders.yaml").write_text(yaml.safe_dump(senders, allow_unicode=True), encoding="utf-8")
    return site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynctest
async def test_a_bound_listener_names_the_sender_of_an_empty_msh4(settings: Settings, tmp_path: Path) -> None:
    from adapters.listeners.mllp import MLLPServer

    port = free_port()
    site = site_with(tmp_path, {"listeners": {f"mllp:{port}": "FNZYY"}})
    with Engine(settings.with_(site=site)) as engine:
        server = MLLPServer(engine.ingestor.handle_async, host="127.0.0.1", port=port, idle_timeout=10)
        await server.start()
        try:
            (ack,) = await exchange(port, adt("L1"))
        finally:
            await server.stop()
        assert ack_code_of(ack) == "AA"
        doc = engine.ingestor.messages.get(message_id("FNZYY", "L1"))
        assert doc is not None and doc["status"] == PROCESSED and doc["facility"] == "FNZYY"
        assert any(r.startswith("Patient/") for r in doc["resources"])
        # the binding is stored with the message: a replay resolves the same sender
        replayed = await asyncio.to_thread(engine.ingestor.replay, doc["_id"], actor="ops")
        assert replayed is not None and replayed.code == "AA"


def test_msh3_and_msh4_variants_map_to_an_institution(settings: Settings, tmp_path: Path) -> None:
    site = site_with(tmp_path, {"facility_aliases": {"阜宁县人民医院": "FNXRMYY"},
                                "applications": {"FNZYY-HIS": "FNZYY"}})
    with Engine(settings.with_(site=site)) as engine:
        by_alias, by_app, unknown = engine.ingestor.process([
            (adt("A1", facility="阜宁县人民医院"), "http", "test"),
            (adt("A2", app="FNZYY-HIS"), "http", "test"),
            (adt("A3", app="SOMEONE"), "http", "test"),
        ])
        assert (by_alias.code, by_app.code, unknown.code) == ("AA", "AA", "AR")
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "A1"))["status"] == PROCESSED
        assert engine.ingestor.messages.get(message_id("FNZYY", "A2"))["status"] == PROCESSED
        refused = engine.ingestor.messages.get(unknown.message_id)
        assert refused["status"] == QUARANTINED
        assert refused["errors"][0]["field"] == 4  # MSH-4 empty and nothing binds the sender


def test_a_sender_named_only_by_its_universal_id(settings: Settings, tmp_path: Path) -> None:
    """MSH-4 = ``^FNZYY^L`` (no namespace id, the code in HD-2): the sender is that institution,
    through an alias too, as it would be by MSH-4.1."""
    site = site_with(tmp_path, {"facility_aliases": {"1.2.156.112604": "FNXRMYY"}})
    with Engine(settings.with_(site=site)) as engine:
        by_code, by_alias = engine.ingestor.process([
            (adt("U1", facility="^FNZYY^L"), "http", "test"),
            (adt("U2", facility="^1.2.156.112604^ISO"), "http", "test"),
        ])
        assert (by_code.code, by_alias.code) == ("AA", "AA")
        assert engine.ingestor.messages.get(message_id("FNZYY", "U1"))["status"] == PROCESSED
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "U2"))["status"] == PROCESSED
