"""A poison message: one that kills the ingest process whenever it is processed.

Hospital A's lab sends six results in one batch; the fourth makes the converter take the whole
process down (here: SIGKILL from inside the parser, as a crash in native code or the kernel's
out-of-memory killer would). Nothing of the batch was committed or ACKed. Without the in-flight
journal the batch's raw messages were gone, and every resend and every restart died on the same
message. With it:

- the next start processes the dead batch's messages one at a time: the three before the poison
  are stored, then the process dies again on the poison, alone this time;
- the start after that knows the poison (two deaths, the last alone): it is kept in the
  quarantine with that reason, never converted again, and the last two messages are processed;
- the sender's resend of all six over MLLP gets the recorded answers (five AA, the poison AE
  with its reason in ERR), and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.test_ingest_durability import err_fields, exchange, listening

BATCH = range(880, 886)
POISON = 883

_RUN = """
import os, signal, sys
from pathlib import Path
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)
with Engine(settings) as engine:
    parse = engine.ingestor.parse

    def poisoned(text, *more):
        if "LAB{poison:09d}" in text:
            os.kill(os.getpid(), signal.SIGKILL)
        return parse(text, *more)

    engine.ingestor.parse = poisoned
    print("recovered", engine.ingestor.recover(), flush=True)
    if sys.argv[2:] == ["send"]:
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "10.0.0.5:4000") for n in range({start}, {stop})])
        print("not killed", flush=True)
""".replace("{poison:09d}", f"{POISON:09d}").replace("{start}", str(BATCH.start)).replace("{stop}", str(BATCH.stop))


def _run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", _RUN, str(data_dir), *args], cwd=REPO_ROOT,
                          capture_output=True, timeout=300)


def _doc(engine: Engine, n: int) -> dict | None:
    return engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}"))


def test_a_poison_message_is_quarantined_at_the_second_death_and_its_batch_is_kept(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    first = _run(settings.data_dir, "send")  # the batch with the poison: the process dies
    assert first.returncode == -signal.SIGKILL, first.stderr.decode()[-2000:]
    assert first.stdout.decode().split() == ["recovered", "0"]
    with Engine(settings) as engine:  # nothing committed (none of it was ACKed) ...
        assert all(_doc(engine, n) is None for n in BATCH)
        journals = list((settings.data_dir / "inflight").glob("*.journal"))
        assert len(journals) == 1 and journals[0].stat().st_size > 0  # ... but the raw bytes are kept
        # (this engine only looks: recovery is what a start does, below)

    second = _run(settings.data_dir)  # restart: the dead batch one message at a time; dies on the poison
    assert second.returncode == -signal.SIGKILL, second.stderr.decode()[-2000:]
    with Engine(settings) as engine:
        assert [(_doc(engine, n) or {}).get("status") for n in BATCH] == [PROCESSED] * 3 + [None] * 3

    third = _run(settings.data_dir)  # restart: the poison is known and quarantined; the rest processed
    assert third.returncode == 0, third.stderr.decode()[-2000:]
    assert third.stdout.decode().split() == ["recovered", "3"]

    with Engine(settings) as engine:
        statuses = [(_doc(engine, n) or {}).get("status") for n in BATCH]
        assert statuses == [PROCESSED] * 3 + [QUARANTINED] + [PROCESSED] * 2
        poison = _doc(engine, POISON)
        assert poison is not None and poison["ack_code"] == "AE" and "stopped 2 times" in poison["reason"]
        assert poison["peer"] == "10.0.0.5:4000" and poison["raw"]  # the raw bytes, as received
        assert not list((settings.data_dir / "inflight").glob("*.journal"))
        assert engine.ingestor.recover() == 0

        async def resend() -> list[bytes]:
            async with listening(engine) as server:
                return await exchange(server.port, *(oru_lab(n) for n in BATCH))

        acks = asyncio.run(resend())
        assert [ack_code_of(a) for a in acks] == ["AA"] * 3 + ["AE"] + ["AA"] * 2
        assert any("stopped 2 times" in "|".join(f) for f in err_fields(acks[3]))
        assert engine.repository.search("Observation", [("_summary", "count")]).total == 12 * 5
        assert engine.ingestor.messages.count() == len(BATCH)


def test_a_journal_that_cannot_be_written_stops_no_batch(settings: Settings) -> None:
    """The journal is a safety net for messages not yet ACKed: when it cannot be written (here its
    folder is a file), messages are still processed, stored and ACKed as always."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "inflight").write_text("not a folder")
    with Engine(settings) as engine:
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (890, 891)])
        assert [o.code for o in outcomes] == ["AA", "AA"]
        assert [(_doc(engine, n) or {}).get("status") for n in (890, 891)] == [PROCESSED] * 2
        assert engine.ingestor.recover() == 0
