"""The idempotency key is per sending *system* (MSH-3 + MSH-4 + MSH-10), through the real path.

A county hospital's HIS and LIS share MSH-4 and each number their messages from 1: the second
one's message 1 is a real message, not a conflicting resend of the first one's.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id, sender_id
from engine.settings import Settings
from tests.conftest import mllp_send


def adt(application: str, control: str, name: str = "王^芳", mrn: str = "MRN0001",
        national: str = "110101197505120112") -> bytes:
    return (
        f"MSH|^~\\&|{application}|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
        "EVN|A01|20261101080000\r"
        f"PID|1||{national}^^^^NNCHN~{mrn}^^^FNXRMYY^MR||{name}||19750512|M\r"
        "PV1|1|I|内科^301^2\r"
    ).encode()


def msa(ack: str) -> list[str]:
    return next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")


def versions(engine: Engine) -> list[Any]:
    return sorted((r["id"], r["meta"]["versionId"]) for r in engine.repository.search("Patient", []).resources)


def provenance_v1(engine: Engine, doc: dict[str, Any]) -> str:
    """The message's Provenance, which must still be its first version (not another message's)."""
    (ref,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    assert engine.repository.read(*ref.split("/"))["meta"]["versionId"] == "1"
    return ref


def test_two_applications_of_one_facility_may_use_the_same_control_id(engine: Engine, mllp: int) -> None:
    his, lis = adt("HIS", "1"), adt("LIS^1.2.156.1^ISO", "1", name="李^四", mrn="MRN0002", national="110101197505120139")
    assert msa(mllp_send(mllp, his))[1] == "AA"
    ack = mllp_send(mllp, lis)
    assert msa(ack)[1:3] == ["AA", "1"] and "ERR" not in ack  # was AE 205, quarantined
    messages = engine.ingestor.messages
    first, second = messages.get(message_id("FNXRMYY", "1")), messages.get(sender_id("FNXRMYY", "LIS", "1"))
    assert first["application"] == "HIS" and first["status"] == PROCESSED
    assert second["application"] == "LIS" and second["status"] == PROCESSED and not second["conflict_of"]
    assert provenance_v1(engine, first) != provenance_v1(engine, second)  # each message's own, never versioned over
    stored = versions(engine)
    # each application's resend gets its recorded answer and changes nothing
    assert [msa(mllp_send(mllp, raw))[1] for raw in (his, lis)] == ["AA", "AA"]
    assert messages.count() == 2 and versions(engine) == stored and engine.ingestor.stats.duplicates == 2
    # other bytes under LIS's control id 1 are still LIS's conflict (MSH-3.1 is the application)
    ack = mllp_send(mllp, adt("LIS", "1", name="赵^六", mrn="MRN0003"))
    assert msa(ack)[1] == "AE" and "|MSH^1^10|205^" in ack
    (conflict,) = messages.quarantined()
    assert conflict["conflict_of"] == second["_id"]


def test_a_batch_with_both_applications_stores_both(engine: Engine) -> None:
    raws = [adt("HIS", "7"), adt("LIS", "7", name="李^四", mrn="MRN0002", national="110101197505120139"), adt("HIS", "7")]
    outcomes = engine.ingestor.process([(raw, "mllp", "p") for raw in raws])
    assert [(o.code, o.duplicate) for o in outcomes] == [("AA", False), ("AA", False), ("AA", True)]
    messages = engine.ingestor.messages
    assert provenance_v1(engine, messages.get(outcomes[0].message_id)) != provenance_v1(
        engine, messages.get(outcomes[1].message_id))
    assert outcomes[0].message_id == message_id("FNXRMYY", "7")
    assert outcomes[1].message_id == sender_id("FNXRMYY", "LIS", "7")


@pytest.mark.parametrize("application", ["HIS", ""])
def test_a_store_written_before_the_key_had_msh3_is_still_found(backend_settings: Settings, application: str) -> None:
    """A document as the code before this key stored it (no ``application``: its MSH-3 is read
    from its raw bytes): the same sender's resend gets its recorded answer and changes nothing,
    its other bytes are still a conflict, another application's message with that control id
    is its own, and a correction may not change MSH-3."""
    with Engine(backend_settings) as engine:
        ingest, messages = engine.ingestor, engine.ingestor.messages
        old = adt(application, "9")
        (first,) = ingest.process([(old, "mllp", "p")])
        doc = messages.get(first.message_id)
        assert first.message_id == message_id("FNXRMYY", "9") and doc["status"] == PROCESSED
        with engine.store.transaction():
            messages.messages.replace({k: v for k, v in doc.items() if k != "application"})
        stored = versions(engine)
        other = adt("EMR", "9", name="李^四", mrn="MRN0002", national="110101197505120139")
        again, conflict, new = ingest.process([(old, "mllp", "p"), (adt(application, "9", name="赵^六"), "mllp", "p"),
                                               (other, "mllp", "p")])
        assert (again.code, again.duplicate, again.message_id) == ("AA", True, first.message_id)
        assert (conflict.code, conflict.status) == ("AE", QUARANTINED)
        assert messages.get(conflict.message_id)["conflict_of"] == first.message_id
        assert (new.code, new.duplicate, new.message_id) == ("AA", False, sender_id("FNXRMYY", "EMR", "9"))
        assert set(stored) < set(versions(engine)) and messages.count() == 3
        assert provenance_v1(engine, doc) != provenance_v1(engine, messages.get(new.message_id))
        with pytest.raises(ValueError, match="MSH-3.1"):
            ingest.replay(first.message_id, actor="op", raw=adt("EMR", "9"))
