"""A message whose write fails partway is quarantined (AE) with nothing of it stored, on every
backend: SQLite (a savepoint per message), mongomock (a block whose writes are undone) and a
real MongoDB when ``HUREN_MONGODB_URI`` is set (a transaction per message on a replica set).

The failure is a real one, made midway through the message's writes: a write hook, registered
through the repository's public ``add_write_hook``, refuses a particular resource. Write hooks
run after the message's resources are put (``group_commit``), so by then its Patient, request,
specimen, results and report are written. Before the fix, on mongomock the failing message kept
all of them; its replay found them unchanged (no new versions), so the hook that had refused it
never ran again and the message was answered AA.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.repository.port import StoredResource
from engine.settings import Settings
from tests.test_ingest_durability import exchange, listening

BAD = 31
PEER = "10.0.0.5:4000"


class Refusal:
    """A write hook that refuses, while ``on``, a resource the predicate picks; it remembers
    what it was shown, so a test can tell that it ran."""

    def __init__(self, picks: Any) -> None:
        self.picks, self.on, self.seen = picks, True, []

    def __call__(self, new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        self.seen.append((new["resourceType"], new["id"]))
        if self.on and self.picks(new):
            raise ValueError(f"{new['resourceType']}/{new['id']} refused by a write hook")
        return []


def _of_bad_message(resource: dict[str, Any]) -> bool:
    return any(i.get("value") == f"LAB{BAD:09d}" for i in resource.get("identifier") or [])


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as e:
        yield e


def _watch(engine: Engine) -> dict[str, list[tuple[str, str]]]:
    """The resources each message's conversion makes, by control id (the converter itself runs)."""
    convert = engine.ingestor.convert
    assert convert is not None
    made: dict[str, list[tuple[str, str]]] = {}

    def converted(message: Any, site: Any, **kwargs: Any) -> Any:
        conversion = convert(message, site, **kwargs)
        made[message.msh.control_id] = [(r["resourceType"], r["id"]) for r in conversion.resources]
        return conversion

    engine.ingestor.convert = converted
    return made


def _documents(engine: Engine) -> dict[str, list[dict[str, Any]]] | None:
    """On MongoDB, every FHIR document as stored (index fields included), to compare whole."""
    db = getattr(engine.store, "db", None)
    if db is None:
        return None
    return {name: sorted(db[name].find(), key=lambda d: d["_id"]) for name in ("fhir_current", "fhir_history")}


def _stored(engine: Engine, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[StoredResource]]:
    """Every stored version (current and history) of each key that has any."""
    backend = engine.repository.backend
    return {key: versions for key in keys if (versions := backend.history(*key))}


def _sent(engine: Engine, how: str, numbers: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
    """Send messages ``numbers`` (in one batch, each in its own, or pipelined over a real MLLP
    socket); each one's ACK code and stored message document."""
    raw = [oru_lab(n) for n in numbers]
    if how == "mllp":
        async def run() -> list[bytes]:
            async with listening(engine) as server:
                return await exchange(server.port, *raw)

        codes = [ack_code_of(ack) for ack in asyncio.run(run())]
    elif how == "one-batch":
        codes = [o.code for o in engine.ingestor.process([(r, "mllp", PEER) for r in raw])]
    else:
        codes = [engine.ingestor.process([(r, "mllp", PEER)])[0].code for r in raw]
    docs = [engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) for n in numbers]
    assert all(doc is not None for doc in docs)
    return list(zip(codes, docs, strict=True))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["one-batch", "own-batch", "mllp"])
def test_a_message_failing_midway_keeps_nothing_and_its_replay_stores_it_once(engine: Engine, how: str) -> None:
    made = _watch(engine)
    hook = Refusal(lambda r: r["resourceType"] == "DiagnosticReport" and _of_bad_message(r))
    engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
    outcomes = _sent(engine, how, (30, BAD, 32))
    assert [(code, doc["status"]) for code, doc in outcomes] == [
        ("AA", PROCESSED), ("AE", QUARANTINED), ("AA", PROCESSED)]
    bad = outcomes[1][1]
    assert "storing the converted resources failed" in bad["reason"] and not bad.get("resources")

    # its own resources (not shared with the messages stored) exist in no version, and no index
    # row finds them; the other messages' resources are stored once
    shared = {tuple(r.split("/")) for _, doc in (outcomes[0], outcomes[2]) for r in doc["resources"]}
    own = [key for key in made[f"LAB{BAD:09d}"] if key not in shared]
    assert {t for t, _ in own} >= {"Patient", "Observation", "DiagnosticReport", "Provenance", "Specimen"}
    assert _stored(engine, own) == {}
    patient = next(i for t, i in own if t == "Patient")
    assert engine.repository.search("Observation", [("subject", f"Patient/{patient}")]).resources == []
    assert engine.repository.search("DiagnosticReport", [("identifier", f"LAB{BAD:09d}")]).resources == []
    kept = _stored(engine, sorted(shared))
    assert kept and all([v.version for v in versions] == [1] for versions in kept.values())

    # replayed once the hook no longer refuses: stored once, every resource version 1, and the
    # hook ran on its report (its write was not skipped as "unchanged")
    hook.on, hook.seen = False, []
    replayed = engine.ingestor.replay(bad["_id"], actor="operator")
    assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
    assert any(t == "DiagnosticReport" for t, _ in hook.seen)
    again = _stored(engine, own)
    assert sorted(again) == sorted(own)
    assert all([v.version for v in versions] == [1] for versions in again.values())
    assert {f"{t}/{i}" for t, i in own} <= set(replayed.resources)


def _corrected(n: int, control: str, hgb: str) -> bytes:
    """Message ``n`` again under another control id, its haemoglobin changed: an update of the
    same Patient, order, specimen, results and report."""
    raw = oru_lab(n).replace(f"|LAB{n:09d}|P|".encode(), f"|{control}|P|".encode())
    changed = raw.replace(b"||145|g/L|", f"||{hgb}|g/L|".encode(), 1)
    assert changed != raw and f"|{control}|P|".encode() in changed
    return changed


def test_an_update_failing_midway_leaves_the_stored_versions_current_and_no_history(engine: Engine) -> None:
    first = engine.ingestor.process([(oru_lab(BAD), "mllp", PEER)])[0]
    assert first.code == "AA"
    before = {tuple(r.split("/")): engine.repository.backend.current(*r.split("/")) for r in first.resources}
    documents = _documents(engine)

    hook = Refusal(lambda r: r["resourceType"] == "Observation" and str(r.get("valueQuantity", {}).get("value")) == "146")
    engine.repository.add_write_hook(hook, types={"Observation"})
    update = engine.ingestor.process([(_corrected(BAD, "LABFIX00001", "146"), "mllp", PEER)])[0]
    assert (update.code, update.status) == ("AE", QUARANTINED)
    assert any(t == "Observation" for t, _ in hook.seen)  # it refused midway, after the puts
    for key, rec in before.items():
        now = engine.repository.backend.history(*key)
        assert [(v.version, v.body) for v in now] == [(rec.version, rec.body)], key
    assert _documents(engine) == documents  # on MongoDB: each document put back whole, index fields too
    # the index rows are the stored version's again
    assert engine.repository.search("Observation", [("value-quantity", "146")]).resources == []
    assert len(engine.repository.search("Observation", [("value-quantity", "145")]).resources) == 1

    hook.on = False
    replayed = engine.ingestor.replay(update.message_id, actor="operator")
    assert replayed is not None and replayed.code == "AA"
    hgb = [k for k in before if k[0] == "Observation"
           and "146" in str(engine.repository.read(*k).get("valueQuantity", {}).get("value"))]
    assert len(hgb) == 1 and [v.version for v in engine.repository.backend.history(*hgb[0])] == [2, 1]


def test_a_store_block_that_raises_leaves_nothing_of_it(engine: Engine) -> None:
    """The store contract the pipeline relies on, on each backend: an outermost
    ``transaction()`` block that raises leaves no insert, replace, update, delete or FHIR version
    of it; one that ends keeps them all."""
    store = engine.store
    coll = store.collection("mongo10_contract")
    with store.transaction():
        coll.insert({"_id": "a", "n": 1})
        coll.insert({"_id": "b", "n": 1})
    engine.repository.update({"resourceType": "Patient", "id": "m10", "gender": "male"})
    patient = engine.repository.backend.current("Patient", "m10")
    assert patient is not None

    documents = _documents(engine)

    class Stop(Exception):
        pass

    with pytest.raises(Stop), store.transaction():
        coll.insert({"_id": "c", "n": 1})
        coll.insert_many([{"_id": "d", "n": 1}, {"_id": "e", "n": 1}])
        coll.replace({"_id": "a", "n": 2})
        coll.update("a", {"n": 3})
        coll.delete("b")
        with store.transaction():  # a nested block joins the outer one
            engine.repository.update({"resourceType": "Patient", "id": "m10", "gender": "female"})
        assert engine.repository.backend.current("Patient", "m10").version == 2  # type: ignore[union-attr]
        raise Stop
    assert sorted((d["_id"], d["n"]) for d in coll.find()) == [("a", 1), ("b", 1)]
    assert [(v.version, v.body) for v in engine.repository.backend.history("Patient", "m10")] \
        == [(patient.version, patient.body)]
    assert _documents(engine) == documents
    assert engine.repository.search("Patient", [("gender", "female")]).resources == []
    assert [r["id"] for r in engine.repository.search("Patient", [("gender", "male")]).resources] == ["m10"]

    with store.transaction():
        coll.delete("b")
        coll.update("a", {"n": 4})
    assert sorted((d["_id"], d["n"]) for d in coll.find()) == [("a", 4)]
