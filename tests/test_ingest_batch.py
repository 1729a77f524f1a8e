"""Group commit without a savepoint per message: one failing message is still quarantined alone,
nothing is audited twice, and kill -9 in the middle of a pipelined stream loses no ACKed message
and doubles none."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, RECEIVED, message_id
from engine.repository.sqlite_store import FlatTransactionFailed, SqliteStore
from engine.settings import Settings
from tests.conftest import REPO_ROOT, assert_acked_kept, kill_mid_stream, wait_until_worker_waits_for_lock


def test_flat_transaction_joins_nested_blocks_and_a_caught_failure_spoils_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    coll = store.collection("t")
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    with store.flat_transaction(), store.transaction():
        coll.insert({"_id": "a"})
    store.conn.set_trace_callback(None)
    assert coll.get("a") is not None
    assert not [s for s in statements if s.startswith("SAVEPOINT")] and statements[-1] == "COMMIT"
    with pytest.raises(FlatTransactionFailed), store.flat_transaction():
        coll.insert({"_id": "b"})
        try:
            with store.transaction():
                coll.insert({"_id": "c"})
                raise ValueError("inner block fails; its caller goes on")
        except ValueError:
            pass
    assert coll.get("b") is None and coll.get("c") is None  # nothing of it stays
    with store.transaction():  # ordinary transactions still savepoint their nested blocks
        coll.insert({"_id": "d"})
        with pytest.raises(ValueError), store.transaction():
            coll.insert({"_id": "e"})
            raise ValueError("rolled back alone")
    assert coll.get("d") is not None and coll.get("e") is None
    store.close()


def test_a_message_failing_at_write_time_is_quarantined_alone(settings: Settings) -> None:
    with Engine(settings) as engine:

        def fail_for_one_patient(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
            if any(i.get("value") == "MRN0000002" for i in resource.get("identifier", [])):
                raise RuntimeError("disk trouble for this one")  # the Patient of oru_lab(2) only
            return []

        engine.repository.add_write_hook(fail_for_one_patient)
        audit_before = engine.audit.size
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (1, 2, 3)])
        assert [o.code for o in outcomes] == ["AA", "AE", "AA"]
        assert outcomes[1].status == QUARANTINED and "storing the converted resources failed" in outcomes[1].ack.decode()
        for out in (outcomes[0], outcomes[2]):
            assert engine.ingestor.messages.get(out.message_id)["status"] == PROCESSED
            assert all(engine.repository.read(*ref.split("/")) for ref in out.resources)
        assert engine.ingestor.stats.processed == 2 and engine.ingestor.stats.quarantined == 1
        assert engine.ingestor.stats.redone_batches == 1
        events = [engine.audit.events(seq, 1)[0] for seq in range(audit_before, engine.audit.size)]
        imports = [e for e in events if e["type"]["code"] == "110107"]
        assert sorted(e["outcome"] for e in imports) == ["0", "0", "4"]  # one per message, none twice


def test_a_batch_of_resends_conflicts_and_new_messages_is_decided_from_one_read(backend_settings: Settings) -> None:
    """Hospital A resends two results (one processed, one quarantined), sends one twice in the same
    batch, reuses a control id for other content and sends two new ones: each gets the answer its
    envelope earns, on either backend, and the batch's idempotency keys are read in one call."""
    with Engine(backend_settings) as engine:
        ingest = engine.ingestor
        first = ingest.process([(oru_lab(1), "mllp", "p"), (oru_lab(2).replace(b"|2.5.1|", b"|2.9|"), "mllp", "p")])
        assert [o.code for o in first] == ["AA", "AR"]
        reads: list[list[str]] = []
        get_many = ingest.messages.get_many
        ingest.messages.get_many = lambda ids: reads.append(list(ids)) or get_many(ids)  # type: ignore[method-assign]
        other = oru_lab(1).replace("张^三".encode(), "李^四".encode())  # control id of oru_lab(1), other bytes
        batch = [oru_lab(1), oru_lab(2).replace(b"|2.5.1|", b"|2.9|"), oru_lab(3), oru_lab(3), other, oru_lab(4)]
        outcomes = ingest.process([(raw, "mllp", "p") for raw in batch])
        assert [o.code for o in outcomes] == ["AA", "AR", "AA", "AA", "AE", "AA"]
        assert [o.duplicate for o in outcomes] == [True, True, False, True, False, False]
        assert outcomes[0].resources == first[0].resources and outcomes[3].resources == outcomes[2].resources
        assert outcomes[4].status == QUARANTINED and "already received with different content" in outcomes[4].ack.decode()
        assert len(reads) == 1 and sorted(set(reads[0])) == sorted(
            {message_id("FNXRMYY", f"LAB{n:09d}") for n in (1, 2, 3, 4)})
        for n in (1, 3, 4):
            assert ingest.messages.get(message_id("FNXRMYY", f"LAB{n:09d}"))["status"] == PROCESSED
        assert ingest.messages.count(QUARANTINED) == 2  # the refused version and the conflict, once each


def test_a_message_failing_only_on_the_redo_keeps_nothing_of_the_rolled_back_attempt(settings: Settings) -> None:
    """The batch is written whole first; when it fails it is redone message by message. A message
    written in the failed attempt and failing in the redo is quarantined as stored before it:
    no references to resources the rollback removed."""
    with Engine(settings) as engine:
        calls: dict[str, int] = {}

        def flaky(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
            mrn = next((i.get("value") for i in resource.get("identifier", [])
                        if str(i.get("value", "")).startswith("MRN")), None)
            if resource.get("resourceType") == "Patient" and mrn:
                calls[mrn] = calls.get(mrn, 0) + 1
                if (mrn, calls[mrn]) in {("MRN0000913", 1), ("MRN0000912", 2)}:
                    raise RuntimeError("disk trouble, once")
            return []

        engine.repository.add_write_hook(flaky)
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (911, 912, 913)])
        assert [o.code for o in outcomes] == ["AA", "AE", "AA"]
        assert engine.ingestor.stats.redone_batches == 1
        doc = engine.ingestor.messages.get(outcomes[1].message_id)
        assert doc["status"] == QUARANTINED and doc["resources"] == [] and doc["attempts"] == 1
        assert outcomes[1].resources == []
        for out in (outcomes[0], outcomes[2]):
            assert engine.ingestor.messages.get(out.message_id)["resources"] == out.resources != []


def test_a_message_whose_resources_fail_validation_is_quarantined_alone(settings: Settings, tmp_path: Path) -> None:
    """The batch's converted resources are validated type by type before anything is written; a
    message with an invalid resource is refused with the validator's reason, as when each write
    validated its own, and the others are stored."""
    from mappings.site import DEFAULTS_DIR

    site = tmp_path / "site"
    (site / "profiles").mkdir(parents=True)
    (site / "institutions.yaml").write_text((DEFAULTS_DIR / "institutions.yaml").read_text("utf-8"), "utf-8")
    shipped = (REPO_ROOT / "conformance" / "profiles" / "Observation.yaml").read_text("utf-8")
    stricter = shipped.replace("required:\n  subject:", "required:\n  interpretation: this site wants OBX-8\n  subject:", 1)
    assert stricter != shipped
    (site / "profiles" / "Observation.yaml").write_text(stricter, "utf-8")
    no_flags = oru_lab(2).replace(b"|N|||F|", b"||||F|")  # no abnormal flag: no interpretation
    assert no_flags != oru_lab(2)
    with Engine(settings.with_(site=site)) as engine:
        outcomes = engine.ingestor.process([(oru_lab(1), "mllp", "p"), (no_flags, "mllp", "p"),
                                            (oru_lab(3), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AA", "AE", "AA"]
        assert outcomes[1].status == QUARANTINED
        assert "FHIR resource rejected (422)" in outcomes[1].ack.decode()
        assert "interpretation" in outcomes[1].ack.decode()
        for out in (outcomes[0], outcomes[2]):
            assert engine.ingestor.messages.get(out.message_id)["status"] == PROCESSED
            assert all(engine.repository.read(*ref.split("/")) for ref in out.resources)
        assert engine.ingestor.stats.processed == 2 and engine.ingestor.stats.quarantined == 1


def test_the_collector_waits_for_the_end_of_a_batch(settings: Settings) -> None:
    """Cyclic collection is paused while a batch is written and back on after it, failing or not."""
    import gc

    with Engine(settings) as engine:
        during: list[bool] = []

        def note(resource: dict[str, Any], previous: Any) -> list[dict[str, Any]]:
            during.append(gc.isenabled())
            if any(i.get("value") == "MRN0000902" for i in resource.get("identifier", [])):
                raise RuntimeError("this one fails")
            return []

        engine.repository.add_write_hook(note)
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in (901, 902, 903)])
        assert [o.code for o in outcomes] == ["AA", "AE", "AA"]
        assert during and not any(during)
        assert gc.isenabled()
        gc.disable()  # whoever turned it off keeps it off
        try:
            engine.ingestor.process([(oru_lab(904), "mllp", "p")])
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_a_lone_sender_never_waits_for_company(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lingering for more messages only follows a batch of several: one sender waiting for each
    ACK gets batches of one, answered at once, however long a batch under load may wait."""
    import engine.ingest

    monkeypatch.setattr(engine.ingest, "LINGER_GAP", 1.0)
    with Engine(settings) as eng:
        eng.ingestor.linger = 5.0
        started = time.monotonic()
        acks = [eng.ingestor.handle(oru_lab(600 + n), channel="mllp", peer="p") for n in range(3)]
        assert [ack_code_of(a) for a in acks] == ["AA"] * 3
        assert time.monotonic() - started < 2.0  # three lingers would take three seconds
        assert eng.ingestor.stats.largest_batch == 1


def test_under_load_a_batch_waits_for_the_messages_on_their_way(settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """After a batch of several, the next batch takes a message arriving shortly after its first."""
    import engine.ingest

    monkeypatch.setattr(engine.ingest, "LINGER_GAP", 1.0)
    with Engine(settings) as eng:
        ing = eng.ingestor
        ing.linger = 5.0

        def send(n: int) -> Any:
            return ing.submit(oru_lab(650 + n), channel="mllp", peer="p")

        with ing._lock:  # the worker takes message 0 and waits for the lock; 1 and 2 queue up
            first = send(0)
            wait_until_worker_waits_for_lock(ing)
            burst = [send(1), send(2)]
        assert first.result(timeout=60).code == "AA" and all(f.result(timeout=60).code == "AA" for f in burst)
        batches = ing.stats.batches
        third = send(3)
        time.sleep(0.3)  # on its way while the worker holds message 3
        fourth = send(4)
        assert third.result(timeout=60).code == "AA" and fourth.result(timeout=60).code == "AA"
        assert ing.stats.batches == batches + 1  # 3 and 4 committed together
        for fut in (third, fourth):
            assert ing.messages.get(fut.result().message_id)["status"] == PROCESSED


@pytest.mark.slow
def test_kill_9_mid_stream_loses_no_acked_message_and_doubles_none(settings: Settings) -> None:
    messages = [oru_lab(700 + i) for i in range(400)]
    # well into the stream, batches in flight
    acked = kill_mid_stream([sys.executable, "-m", "engine.cli", "serve"], settings, messages, after=60)
    with Engine(settings) as engine:
        outcomes = assert_acked_kept(engine, messages, acked)
        assert engine.store.query("SELECT count(*) FROM fhir_history WHERE type = 'Observation'")[0][0] == 0
        assert not [d for d in engine.ingestor.messages.pending(limit=10)]
        assert RECEIVED not in {engine.ingestor.messages.get(o.message_id)["status"] for o in outcomes}


_KILL_INSIDE_COMMIT = """
import os, signal, sys
from pathlib import Path
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0)
with Engine(settings) as engine:
    first = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in range(760, 765)])
    print(" ".join(o.code for o in first), flush=True)  # these five are ACKed
    written = []

    def die_mid_batch(resource, previous):
        written.append(resource.get("resourceType"))
        if written.count("Observation") == 30:  # the third message of the next batch
            os.kill(os.getpid(), signal.SIGKILL)
        return []

    engine.repository.add_write_hook(die_mid_batch)
    engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in range(765, 770)])
    print("not killed", flush=True)
"""


def test_kill_9_inside_the_batch_commit_keeps_the_acked_and_recovers_the_rest(settings: Settings) -> None:
    """kill -9 while a batch's single transaction is half written (its raw messages and the
    resources of two of its messages): the earlier, ACKed batch is all there; nothing of the
    killed batch was committed (none of it was ACKed), but its raw messages were in the in-flight
    journal: the next start processes them, each once, and the sender's resend of all ten gets the
    recorded answers and doubles nothing."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _KILL_INSIDE_COMMIT, str(settings.data_dir)], cwd=REPO_ROOT,
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split("\n")[0] == "AA AA AA AA AA"
    acked, killed = range(760, 765), range(765, 770)
    with Engine(settings) as engine:
        ing = engine.ingestor
        assert all(ing.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) is None for n in killed)
        assert engine.repository.search("Observation", [("_summary", "count")]).total == 12 * len(acked)
        assert ing.recover() == len(killed)  # from the killed process's in-flight journal
        assert ing.recover() == 0  # once
        for n in [*acked, *killed]:
            doc = ing.messages.get(message_id("FNXRMYY", f"LAB{n:09d}"))
            assert doc is not None and doc["status"] == PROCESSED
            assert len([r for r in doc["resources"] if r.startswith("Observation/")]) == 12
        outcomes = ing.process([(oru_lab(n), "mllp", "p") for n in [*acked, *killed]])
        assert [(o.code, o.duplicate) for o in outcomes] == [("AA", True)] * 10
        assert engine.repository.search("Observation", [("_summary", "count")]).total == 12 * 10
        assert engine.store.query("SELECT count(*) FROM fhir_history WHERE type = 'Observation'")[0][0] == 0
