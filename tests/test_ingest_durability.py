"""Durability and acknowledgement rules of the ingest pipeline, over a real MLLP socket into SQLite.

Each scenario sends real bytes to the real listener wired to the real engine (store, parser,
site), then looks at what the message store holds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import MLLPServer, frame
from bench.ingest import adt_a01
from engine.audit.record import event_of
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, RECEIVED, message_id
from engine.settings import Settings
from tests.test_mllp import asynctest, read_acks


def adt(control: str, facility: str = "FNXRMYY", name: str = "王^芳", version: str = "2.5.1") -> bytes:
    return (
        f"MSH|^~\\&|HIS|{facility}|HUREN|FNYGT|20261101080000||ADT^A01^ADT_A01|{control}|P|{version}\r"
        "EVN|A01|20261101080000\r"
        f"PID|1||320923197505120029^^^^NNCHN~MRN0001^^^{facility}^MR||{name}||19750512|F\r"
        "PV1|1|I|内科^301^2\r"
    ).encode()


@contextlib.asynccontextmanager
async def listening(engine: Engine, **options: Any) -> AsyncIterator[MLLPServer]:
    server = MLLPServer(engine.ingestor.handle_async, port=0, idle_timeout=10, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def exchange(port: int, *messages: bytes) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(frame(m) for m in messages))
    acks = await read_acks(reader, len(messages))
    writer.close()
    return acks


def err_fields(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s.startswith("ERR")]


@asynctest
async def test_raw_bytes_are_stored_before_the_ack(settings: Settings) -> None:
    with Engine(settings) as engine:
        async with listening(engine) as server:
            raw = adt("ADT0001")
            (ack,) = await exchange(server.port, raw)
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "ADT0001"))
        assert doc is not None and base64.b64decode(doc["raw"]) == raw
        assert doc["channel"] == "mllp" and doc["peer"].startswith("127.0.0.1:")
        assert doc["status"] != RECEIVED  # processed or quarantined, never left half-done
        assert ack_code_of(ack) == doc["ack_code"]
    # and it survives a restart of the engine: it is in the database file
    with Engine(settings) as engine:
        assert engine.ingestor.messages.get(message_id("FNXRMYY", "ADT0001")) is not None


@asynctest
async def test_unknown_sender_is_rejected_and_kept_for_the_operator(settings: Settings) -> None:
    with Engine(settings) as engine:
        async with listening(engine) as server:
            (ack,) = await exchange(server.port, adt("X1", facility="NOSUCHHOSP"))
        assert ack_code_of(ack) == "AR"
        (err,) = err_fields(ack)
        assert err[2] == "MSH^1^4^^1" and err[3].startswith("103^") and "NOSUCHHOSP" in err[8]
        (doc,) = engine.ingestor.messages.quarantined()
        assert doc["facility"] == "NOSUCHHOSP" and doc["ack_code"] == "AR"
        assert "not a registered institution" in doc["reason"]


@asynctest
async def test_same_control_id_with_other_bytes_is_ae_and_kept(settings: Settings) -> None:
    with Engine(settings) as engine:
        async with listening(engine) as server:
            first, again = await exchange(server.port, adt("DUP1"), adt("DUP1"))
            (other,) = await exchange(server.port, adt("DUP1", name="李^四"))
            (other_again,) = await exchange(server.port, adt("DUP1", name="李^四"))
        assert ack_code_of(first) == ack_code_of(again)  # identical resend: the same answer
        assert ack_code_of(other) == "AE" and ack_code_of(other_again) == "AE"
        (err,) = err_fields(other)
        assert err[2] == "MSH^1^10" and err[3].startswith("205^")  # duplicate key identifier
        original = engine.ingestor.messages.get(message_id("FNXRMYY", "DUP1"))
        assert original is not None and b"\xe7\x8e\x8b" in base64.b64decode(original["raw"])  # 王 kept
        conflicts = [d for d in engine.ingestor.messages.quarantined() if d.get("conflict_of")]
        assert len(conflicts) == 1 and conflicts[0]["conflict_of"] == original["_id"]
        assert "李" in base64.b64decode(conflicts[0]["raw"]).decode()
        assert engine.ingestor.messages.count() == 2  # resends stored nothing new


@asynctest
async def test_malformed_input_never_crashes_and_is_answered(settings: Settings) -> None:
    with Engine(settings) as engine:
        async with listening(engine, max_message_bytes=10_000) as server:
            acks = await exchange(
                server.port,
                b"\x00\x01\x02\xff binary",  # garbage
                b"MSH|^~|HIS|FNXRMYY|||2026||ADT^A01|BAD2|P|2.5\r",  # wrong encoding characters
                b"MSH|^~\\&|HIS|NOSUCHORG|||2026||ADT^A01|U1|P|2.5\r",  # unregistered sender
                b"MSH|^~\\&|HIS|FNXRMYY|||2026||ADT^A01|V21|P|2.1\r",  # unsupported version
                adt("BIG1") + b"NTE|1||" + b"x" * 20_000 + b"\r",  # oversized
                adt("OK1"),
            )
            codes = [ack_code_of(a) for a in acks]
            assert codes[:5] == ["AR", "AR", "AR", "AR", "AR"] and codes[5] in ("AA", "AE")
            assert err_fields(acks[1])[0][2] == "MSH^1^2" and err_fields(acks[3])[0][1].startswith("MSH^1^12^203&")  # v2.1: ERR-1
            # the listener still serves
            (ack,) = await exchange(server.port, adt("OK2"))
            assert ack_code_of(ack) in ("AA", "AE")
        # the refused-but-readable ones are in the quarantine with their reasons; oversized is not stored
        reasons = {d.get("control_id") or d["_id"][:2]: d["reason"] for d in engine.ingestor.messages.quarantined()}
        assert "V21" in reasons and "u-" in reasons and "BIG1" not in reasons


@asynctest
async def test_concurrent_senders_are_group_committed(settings: Settings) -> None:
    with Engine(settings) as engine:
        async with listening(engine) as server:
            batches: list[list[bytes]] = [[adt(f"C{k}-{i}") for i in range(20)] for k in range(5)]
            results = await asyncio.gather(*(exchange(server.port, *b) for b in batches))
        for batch, acks in zip(batches, results, strict=True):
            sent = [m.split(b"|")[9].decode() for m in batch]
            got = [a.decode().split("\rMSA|")[1].split("|")[1].split("\r")[0] for a in acks]
            assert got == sent  # every ACK in order, for its own message
        assert engine.ingestor.messages.count() == 100
        assert engine.ingestor.stats.largest_batch > 1


def test_recovery_finishes_messages_stored_but_not_processed(settings: Settings, tmp_path: Path) -> None:
    """A crash between storing the raw message and processing it (the two-commit way, which a
    batch falls back to when its single commit fails): the next start finishes it."""
    with Engine(settings) as engine:

        def crash(message: Any, site: Any, **_: Any) -> Any:
            raise KeyboardInterrupt("power cut")  # not an Exception: nothing in the pipeline catches it

        engine.ingestor.one_commit = False
        real = engine.ingestor.convert
        engine.ingestor.convert = crash
        with pytest.raises(KeyboardInterrupt):
            engine.ingestor.process([(adt("REC1"), "mllp", "peer")])
        engine.ingestor.convert = real
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "REC1"))
        assert doc is not None and doc["status"] == RECEIVED  # durable, not processed
    with Engine(settings) as engine:
        assert engine.ingestor.recover() == 1
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "REC1"))
        assert doc is not None and doc["status"] != RECEIVED and doc["attempts"] == 1


def test_a_crash_before_the_single_commit_leaves_nothing_and_the_resend_is_processed_once(
        settings: Settings) -> None:
    """A batch is one commit: a crash before it stores nothing of the batch (none of it was
    ACKed), and the sender's resend is processed as new, once."""
    with Engine(settings) as engine:
        ing = engine.ingestor
        ing.process([(adt_a01(800), "mllp", "peer")])  # a message stored earlier

        def crash(message: Any, site: Any, **_: Any) -> Any:
            raise KeyboardInterrupt("power cut")

        batch = [(adt_a01(801), "mllp", "peer"), (adt_a01(802), "mllp", "peer")]
        real, ing.convert = ing.convert, crash
        with pytest.raises(KeyboardInterrupt):
            ing.process(batch)
        ing.convert = real
        ids = [message_id("FNXRMYY", f"ADT{n:09d}") for n in (801, 802)]
        assert [ing.messages.get(i) for i in ids] == [None, None]
        assert ing.recover() == 0
        outcomes = ing.process(batch)
        assert [(o.code, o.duplicate) for o in outcomes] == [("AA", False), ("AA", False)]
        for doc_id in ids:
            doc = ing.messages.get(doc_id)
            assert doc is not None and doc["status"] == PROCESSED and doc["attempts"] == 1
        assert [(o.code, o.duplicate) for o in ing.process(batch)] == [("AA", True), ("AA", True)]
        encounters = engine.repository.search("Encounter", [("_summary", "count")]).total
        assert encounters == 3  # one per message, none doubled


def test_a_batch_is_one_commit_and_each_message_document_one_insert(settings: Settings) -> None:
    """The raw messages, their resources, statuses and audit go in one transaction; a message
    document is written once, with its final status (not inserted, then replaced)."""
    with Engine(settings) as engine:
        ing = engine.ingestor
        ing.process([(adt_a01(810), "mllp", "peer")])  # warm: site, validators, audit tree
        statements: list[str] = []
        engine.store.conn.set_trace_callback(statements.append)
        try:
            outcomes = ing.process([(adt_a01(n), "mllp", "peer") for n in (811, 812, 813)]
                                   + [(adt("TX9", facility="NOSUCHHOSP"), "mllp", "peer")])
        finally:
            engine.store.conn.set_trace_callback(None)
        assert [o.code for o in outcomes] == ["AA", "AA", "AA", "AR"]
        writes = [s.split()[0].upper() for s in statements
                  if s.split(None, 1)[0].upper() in ("BEGIN", "COMMIT", "SAVEPOINT", "ROLLBACK")]
        assert writes == ["BEGIN", "COMMIT"], writes
        touching = [s for s in statements if "hl7_messages" in s and not s.lstrip().upper().startswith("SELECT")]
        assert len(touching) == 4 and all(t.lstrip().upper().startswith("INSERT") for t in touching), touching
        assert [ing.messages.get(o.message_id)["status"] for o in outcomes] == [PROCESSED] * 3 + [QUARANTINED]


def test_quarantined_message_replay_records_who_and_why(settings: Settings) -> None:
    with Engine(settings) as engine:
        (out,) = engine.ingestor.process([(adt("Q1", facility="NEWHOSP"), "mllp", "peer")])
        assert out.code == "AR" and out.status == QUARANTINED
        again = engine.ingestor.replay(out.message_id, actor="operator-1")
        assert again is not None and again.code == "AR"  # still unknown: same answer
        doc = engine.ingestor.messages.get(out.message_id)
        assert doc is not None and doc["replays"][0]["by"] == "operator-1"
        assert engine.ingestor.replay("m-doesnotexist", actor="x") is None


def test_every_message_is_audited_with_its_sender(settings: Settings) -> None:
    with Engine(settings) as engine:
        before = engine.audit.size
        engine.ingestor.process([(adt("AU1", facility="NEWHOSP"), "mllp", "10.1.2.3:4000"),
                                 (adt("AU2"), "mllp", "10.1.2.3:4000")])
        leaves = [engine.audit.get(seq) for seq in range(before, engine.audit.size)]
        # each signed record holds the import's facts (compact form); its AuditEvent is derived on read
        assert all(json.loads(leaf["data"])["f"] == 2 for leaf in leaves if leaf is not None)
        events = [event_of(leaf["data"]) for leaf in leaves if leaf is not None]
        assert len(events) == 2
        for event, control in zip(events, ("AU1", "AU2"), strict=True):
            assert event is not None and event["type"]["code"] == "110107"  # DICOM Import
            sender = event["agent"][0]
            assert sender["requestor"] and sender["network"]["address"] == "10.1.2.3"
            assert sender["type"]["coding"][0]["code"] == "110153"  # Source Role ID
            assert sender["who"]["identifier"]["system"] == "urn:huren:institution"
            details = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail", [])}
            assert details["control-id"] == control
        assert events[0]["outcome"] == "4"


def test_message_store_rules_on_every_backend(backend_settings: Settings) -> None:
    """The same rules on SQLite and MongoDB (mongomock): store, resend, conflict, quarantine listing."""
    with Engine(backend_settings) as engine:
        ing = engine.ingestor
        first, resend, other, stranger = ing.process([
            (adt("B1"), "mllp", "p"), (adt("B1"), "mllp", "p"), (adt("B1", name="李^四"), "mllp", "p"),
            (adt("B2", facility="NOSUCH"), "mllp", "p"),
        ])
        assert resend.duplicate and resend.code == first.code
        assert other.code == "AE" and stranger.code == "AR"
        assert ing.messages.count() == 3
        assert {d["control_id"] for d in ing.messages.quarantined()} >= {"B1", "B2"}
        assert ing.messages.quarantined(facility="NOSUCH")[0]["control_id"] == "B2"
        again = ing.process([(adt("B1"), "mllp", "p")])[0]
        assert again.duplicate and ing.messages.count() == 3


@asynctest
async def test_mutated_messages_are_all_answered_and_every_aa_is_stored(settings: Settings) -> None:
    """Deterministic fuzzing: flipped bytes, cut segments, doubled delimiters, foreign encodings."""
    import random

    rng = random.Random(20261123)
    base = adt("FZ")
    mutated: list[bytes] = []
    for n in range(120):
        m = bytearray(base.replace(b"|FZ|", f"|FZ{n}|".encode()))
        for _ in range(rng.randint(1, 4)):
            kind = rng.randrange(5)
            pos = rng.randrange(len(m))
            if kind == 0:
                m[pos] = rng.randrange(256)  # random byte (also 0x0B / 0x1C now and then)
            elif kind == 1:
                del m[pos : pos + rng.randint(1, 30)]
            elif kind == 2:
                m[pos:pos] = rng.choice([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\xff\xfe"])
            elif kind == 3:
                m = m[:pos]
            else:
                m[pos:pos] = "患者".encode("gb18030")
        mutated.append(bytes(m).replace(b"\x0b", b"").replace(b"\x1c", b""))  # keep the framing intact
    with Engine(settings) as engine:
        async with listening(engine) as server:
            acks = await exchange(server.port, *mutated)
            assert len(acks) == len(mutated) and all(ack_code_of(a) in ("AA", "AE", "AR") for a in acks)
            (ack,) = await exchange(server.port, adt("AFTER"))  # still serving
            assert ack_code_of(ack) in ("AA", "AE")
        for raw, ack in zip(mutated, acks, strict=True):
            if ack_code_of(ack) == "AA":  # accepted: durable, exactly as sent
                control = ack.decode("utf-8", "replace").split("\rMSA|AA|")[1].split("\r")[0]
                header_ok = [d for d in engine.ingestor.messages.messages.find({"control_id": control})]
                assert any(base64.b64decode(d["raw"]) == raw for d in header_ok), control
