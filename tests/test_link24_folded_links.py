"""The patient index's links of a returning resident's earlier records, written in the new record's
own write group (twenty-fourth round, link24: ``IdentityService._fold``).

A feed of returning residents over a real MLLP socket, batches formed by holding the ingest lock
while the messages queue: residents returning once, twice and three times (two of them in one
batch), a merge (ADT^A40) of two records of one person, an operator's ``$unlink`` and a return
after it. Every stored Patient version (its content, version number and links; the instants
aside), every index entry and every ACK's MSA and ERR segments are compared with what the code
before this round stored for the same feed (``tests/data/link24_feed_golden.json``, made by
running ``_feed`` on the base commit). And the fold itself: a returning resident's message costs
one backend put, not two, and the earlier record's link version is stored with the message.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.listeners.mllp import frame
from bench.ingest import national_id, oru_lab
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests.conftest import running_mllp, wait_until_worker_waits_for_lock

GOLDEN = Path(__file__).parent / "data" / "link24_feed_golden.json"


def _pid(n: int) -> str:
    return deterministic_id("FNXRMYY", "Patient", f"MRN{n:07d}")


def _a40(n: int, survivor: int, merged: int) -> bytes:
    """An ADT^A40 of resident ``survivor % 499``: record ``merged`` merged into ``survivor``."""
    text = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101100000||ADT^A40^ADT_A39|MRG{n:09d}|P|2.5.1|||AL|NE||"
            f"UNICODE UTF-8\r"
            f"EVN|A40|20261101100000\r"
            f"PID|1||{national_id(survivor, '19800101')}^^^^NNCHN~MRN{survivor:07d}^^^FNXRMYY^MR||张^三||19800101|M\r"
            f"MRG|MRN{merged:07d}^^^FNXRMYY^MR\r")
    return text.encode("utf-8")


def _send_batch(engine: Engine, port: int, messages: list[bytes]) -> list[bytes]:
    """Send ``messages`` pipelined on one MLLP connection while the ingest lock is held, after a
    first message the worker takes alone: all of them queue and are written as one batch."""
    ing = engine.ingestor
    acks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.settimeout(120)

        def read(count: int) -> None:
            data = b""
            while len(acks) < count:
                chunk = s.recv(65536)
                assert chunk, "the connection closed before every ACK came"
                data += chunk
                while b"\x1c\r" in data:
                    ack, data = data.split(b"\x1c\r", 1)
                    acks.append(ack.lstrip(b"\x0b"))

        batches = ing.stats.batches
        ing._ensure_worker()  # (started under the lock a submit would wait for it)
        with ing._lock:
            s.sendall(frame(messages[0]))
            wait_until_worker_waits_for_lock(ing)
            s.sendall(b"".join(frame(m) for m in messages[1:]))
            deadline = threading.Event()
            for _ in range(2000):  # every message queued before the lock is let go
                if ing._queue.qsize() >= len(messages) - 1:
                    break
                deadline.wait(0.01)
        read(len(messages))
        assert ing.stats.batches == batches + 2  # the first alone, the rest together
    return acks


def _ack_lines(ack: bytes) -> list[str]:
    return [seg for seg in ack.decode().split("\r") if seg.startswith(("MSA|", "ERR|"))]


def _feed(engine: Engine, port: int) -> dict[str, Any]:
    """The feed; returns what it stored (Patient versions, index entries) and the ACKs."""
    acks: list[list[str]] = []
    # batch 1: five residents' first records (and a warm-up message alone before it)
    for batch in ([oru_lab(9), *[oru_lab(n) for n in (1, 2, 3, 4, 5)]],
                  # batch 2: residents 1 and 2 return; resident 3 twice in this very batch; 4 once
                  [oru_lab(10), oru_lab(1 + 499), oru_lab(2 + 499), oru_lab(3 + 499), oru_lab(3 + 998),
                   oru_lab(4 + 499)],
                  # batch 3: resident 1 a third time; resident 2's two records merged, then a third
                  # record of resident 2; resident 5 returns; resident 3 a fourth time
                  [oru_lab(11), oru_lab(1 + 998), _a40(1, 2 + 499, 2), oru_lab(2 + 998), oru_lab(5 + 499),
                   oru_lab(3 + 1497)]):
        acks += [_ack_lines(a) for a in _send_batch(engine, port, batch)]
    # an operator takes resident 4's first record out of the person; the resident returns twice
    engine.identity.unlink(_pid(4), actor="desk", reason="not the same person (test)")
    acks += [_ack_lines(a) for a in _send_batch(engine, port, [oru_lab(12), oru_lab(4 + 998), oru_lab(4 + 1497)])]
    # and links it back by hand; the resident returns again
    engine.identity.link(_pid(4), _pid(4 + 499), actor="desk", reason="the same person after all (test)")
    acks += [_ack_lines(a) for a in _send_batch(engine, port, [oru_lab(13), oru_lab(4 + 1996), oru_lab(1 + 1497)])]

    patients: dict[str, list[dict[str, Any]]] = {}
    for n in sorted({9, 10, 11, 12, 13, *(k + 499 * r for k in (1, 2, 3, 4, 5) for r in range(5))}):
        try:
            versions = engine.repository.versions("Patient", _pid(n))
        except Exception:  # noqa: BLE001 -- a record the feed never made
            continue
        out = []
        for v in reversed(versions):
            resource = json.loads(json.dumps(v.resource))
            if resource is not None:
                resource["meta"].pop("lastUpdated", None)
            out.append({"version": v.version, "deleted": v.deleted, "resource": resource})
        patients[f"MRN{n:07d}"] = out
    entries = {d["_id"]: {k: v for k, v in d.items() if k != "_id"}
               for d in engine.identity.links.find({}, sort=[("_id", 1)])}
    # ID number keys and the persons named by them depend on the store's own HMAC key: named by
    # their first appearance instead
    names: dict[str, str] = {}
    for entry in entries.values():
        for field in ("nid_key", "person"):
            value = entry.get(field)
            if isinstance(value, str) and value not in names:
                names[value] = f"{field}-{len(names)}"
    text = json.dumps(entries, sort_keys=True)
    for value in sorted(names, key=len, reverse=True):
        text = text.replace(value, names[value])
        if not value.startswith("per-"):
            text = text.replace(value[:32], names[value] + "/32")
    entries = json.loads(text)
    return {"acks": acks, "patients": patients, "entries": entries}


@pytest.fixture
def fed(backend_settings: Settings) -> Iterator[tuple[Engine, dict[str, Any]]]:
    with Engine(backend_settings) as engine, running_mllp(engine) as port:
        yield engine, _feed(engine, port)


def test_a_feed_of_returning_residents_stores_what_the_code_before_stored(fed: tuple[Engine, dict]) -> None:
    _, got = fed
    want = json.loads(GOLDEN.read_text("utf-8"))
    assert got["acks"] == want["acks"]
    assert sorted(got["patients"]) == sorted(want["patients"])
    for mrn in want["patients"]:
        assert got["patients"][mrn] == want["patients"][mrn], mrn
    assert got["entries"] == want["entries"]
    # the feed is what it says: earlier records rewritten, a merge, two versions in one batch
    assert [v["version"] for v in got["patients"]["MRN0000003"]] == [1, 2, 3, 4]
    assert any(link["type"] == "replaced-by" for link in got["patients"]["MRN0000002"][-1]["resource"]["link"])
