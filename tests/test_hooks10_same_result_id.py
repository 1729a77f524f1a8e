"""Two messages in one MLLP batch that carry the same result id (a lab's corrected message sent
right after the first, here with the ALT's OBX-3 coded in another system) are each classified by
their own converter plan.

The batch's preview (``Recognition._preview``) classifies a result built from a compiled plan by
one look-up of the plan, found in what ingest hands the batch scopes: "Type/id" -> how the
converter built it, merged over the batch's messages. Two messages with the same result id have
one entry there, the last one's, so the first message's result was classified as the second's:
an ALT coded as a liver panel analyte (recognition item LFT) passed over as no item -- no index
entry, no HR mark, no decision: a repeat not flagged -- or an ALT coded as no item flagged as a
repeated liver panel, the warning in the wrong message's ACK and its version marked
recognisable. Both orders are sent here over a real MLLP socket in one batch and compared with
the same messages sent one at a time: every ACK warning, flag, check row, tally, index entry,
DetectedIssue and the HR mark of every version of the result must be the same.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.listeners.mllp import frame
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.identity.mpi import KEY_FILE
from tests.conftest import running_mllp, wait_until_worker_waits_for_lock
from tests.test_recognition_batch import _settings, _state, _warnings

ALT = "ALT^丙氨酸氨基转移酶^L"
HR = "urn:huren:hr-scope"


def _lab(n: int, control: str, *, alt_system: str = "L", day: str = "20261101") -> bytes:
    """The bench's blood count ``n`` under MSH-10 ``control``, its ALT's OBX-3 coded in
    ``alt_system`` (``L``: the site's local code, mapped to LOINC 1742-6, an LFT analyte; ``LN``:
    read as a LOINC code "ALT", no recognition item), done on ``day``."""
    text = oru_lab(n).decode("utf-8").replace(f"|LAB{n:09d}|P|", f"|{control}|P|")
    return text.replace(ALT, f"ALT^丙氨酸氨基转移酶^{alt_system}").replace("20261101", day).encode("utf-8")


# before the pair: the resident's blood count with its ALT a week earlier (the prior a repeat is
# flagged against), and one blood count of other residents with each ALT coding, so that the
# converter has a compiled plan for both by the time the pair is converted
_BEFORE = [_lab(5, "PRIOR", day="20261025"), _lab(10, "WARM-L"), _lab(11, "WARM-LN", alt_system="LN")]


def _pair(first: str, second: str) -> list[bytes]:
    """The resident's blood count at FNXRMYY (message 5 + 499: the same resident, new ids), sent
    twice with the same ids, the ALT coded ``first`` then ``second``."""
    return [_lab(504, "PAIR-1", alt_system=first), _lab(504, "PAIR-2", alt_system=second)]


def _alt_versions(engine: Engine) -> list[list[str]]:
    """The HR scopes marked on each stored version of the pair's ALT Observation."""
    hits = engine.repository.search("Observation", [("code", "ALT"), ("_count", "50")]).resources
    out = []
    for rid in sorted({r["id"] for r in hits}):
        for version in engine.repository.history("Observation", rid):
            subject = (version.get("subject") or {}).get("reference")
            out.append([rid, subject, (version.get("meta") or {}).get("versionId"),
                        sorted(t["code"] for t in (version.get("meta") or {}).get("tag") or () if t.get("system") == HR)])
    return sorted(out)


def _read_acks(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(b"\x1c\r") < count:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the ACKs"
        data += chunk
    return [part.lstrip(b"\x0b") for part in data.split(b"\x1c\r")[:count]]


def _wait(what: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _in_one_mllp_batch(engine: Engine, raws: list[bytes]) -> list[bytes]:
    """``raws`` pipelined on one MLLP connection and written as one ingest batch: the worker is
    held (the ingestor's batch lock) on a batch of one message of its own while they queue, then
    takes them all at once. Returns the ACKs of ``raws``."""
    ingestor = engine.ingestor
    with running_mllp(engine) as port, socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        batches = ingestor.stats.batches
        ingestor._ensure_worker()  # started now: a message submitted under the lock would start it
        with ingestor._lock:  # the batch lock: the worker takes its next batch, then waits for it
            sock.sendall(frame(_lab(12, "HOLD")))
            _wait(lambda: ingestor._queue.qsize() == 0 and ingestor.stats.batches == batches)
            wait_until_worker_waits_for_lock(ingestor)  # the worker has the held message
            sock.sendall(b"".join(frame(raw) for raw in raws))
            _wait(lambda: ingestor._queue.qsize() == len(raws))
        acks = _read_acks(sock, 1 + len(raws))[1:]
    assert ingestor.stats.batches == batches + 2, "the held message, then the pair in one batch"
    assert ingestor.stats.largest_batch >= len(raws) and ingestor.stats.redone_batches == 0
    return acks


@pytest.mark.parametrize(("first", "second"), [("L", "LN"), ("LN", "L")])
def test_results_with_one_id_in_one_batch_are_classified_each_by_its_own_plan(
        tmp_path: Path, first: str, second: str) -> None:
    pair = _pair(first, second)
    with Engine(_settings(tmp_path, "sqlite", "alone")) as engine:
        for raw in [*_BEFORE, _lab(12, "HOLD")]:
            assert b"MSA|AA|" in engine.ingestor.process([(raw, "mllp", "t")])[0].ack
        alone = [_warnings(engine.ingestor.process([(raw, "mllp", "t")])[0].ack) for raw in pair]
        expected, expected_versions = _state(engine), _alt_versions(engine)

    keys = tmp_path / "batch" / "keys"
    keys.mkdir(parents=True)
    shutil.copy(tmp_path / "alone" / "keys" / KEY_FILE, keys / KEY_FILE)  # the same persons
    with Engine(_settings(tmp_path, "sqlite", "batch")) as engine:
        for raw in _BEFORE:
            assert b"MSA|AA|" in engine.ingestor.process([(raw, "mllp", "t")])[0].ack
        batched = [_warnings(ack) for ack in _in_one_mllp_batch(engine, pair)]
        state, versions = _state(engine), _alt_versions(engine)

    # the item-coded ALT is a repeat of the resident's ALT of a week before: flagged in the
    # ACK of the message that coded it so, and nowhere else
    item_coded = [first, second].index("L")
    assert any("DetectedIssue/dup-" in seg and "LFT" in seg for seg in alone[item_coded]), alone
    assert not any("LFT" in seg for seg in alone[1 - item_coded]), alone
    assert batched == alone
    assert versions == expected_versions
    assert state == expected
