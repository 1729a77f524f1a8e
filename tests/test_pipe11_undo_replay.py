"""A message kept ``received`` after a failed undo (MongoDB without transactions: mongomock or a
standalone server) has writes stored that no write hook ever saw. Its replay must end as if the
message had been processed cleanly the first time: the recognition rows, the patient index links,
every hook's work done once, the message processed.

Before the fix the replay found those versions stored exactly as it converted them again, told
them unchanged, made no new version, and so never ran the write hooks: the message was answered
AA with its recognition entries, check rows and patient index links missing.

The path is the real one: the real engine on mongomock with all its hooks; the fault is a pymongo
error raised by the collection's own ``delete_one`` during the undo of a block that a write hook
refused (``tests/test_undo10_failed_block.py``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import mongomock
import pymongo.errors
import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.ingest import UNDO_LEFT
from engine.messages import PROCESSED, RECEIVED, message_id
from engine.settings import Settings
from tests.test_mongo10_failed_message_undone import BAD, PEER, Refusal, _of_bad_message

NUMBERS = (30, BAD, 32)
# what the hooks keep besides the FHIR data, compared between a faulty run replayed and a clean one
HOOKED = ("mpi_links", "recognition_checks", "recognition_results", "recognition_flags", "recognition_check_days",
          "recognition_flag_days", "referrals")
_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


class Arming(Refusal):
    """Refuses the bad message's report while ``on``; from its ``arm_at``-th refusal on, the undo
    of the failing block cannot delete from ``fhir_current``."""

    def __init__(self, armed: dict[str, bool], arm_at: int) -> None:
        super().__init__(lambda r: r["resourceType"] == "DiagnosticReport" and _of_bad_message(r))
        self.armed, self.arm_at, self.refused = armed, arm_at, 0

    def __call__(self, new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        if self.on and self.picks(new):
            self.refused += 1
            if self.refused >= self.arm_at:
                self.armed["on"] = True
        return super().__call__(new, previous)


@pytest.fixture
def faulty_undo(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    armed = {"on": False}
    real = mongomock.collection.Collection.delete_one

    def delete_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"] and self.name == "fhir_current":
            raise pymongo.errors.AutoReconnect("connection lost during the undo")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.Collection, "delete_one", delete_one)
    return armed


def _hooked_state(engine: Engine) -> dict[str, list[str]]:
    """Each hook collection's documents in a stable order, instants left out (a replay runs later),
    and the patient index's keyed hashes (each engine has its own key)."""
    db = engine.store.db  # type: ignore[attr-defined]
    out: dict[str, list[str]] = {}
    for name in HOOKED:
        docs = [repr(sorted((k, repr(v)) for k, v in d.items()
                            if k not in ("_id", "nid_key") and not (isinstance(v, str) and (
                                _INSTANT.match(v) or v.startswith("per-")))))
                for d in db[name].find()]
        out[name] = sorted(docs)
    return out


@pytest.fixture
def clean() -> dict[str, list[str]]:
    """The hooks' state after the three messages processed with no fault."""
    with tempfile.TemporaryDirectory() as tmp, Engine(
            Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0, mongodb_uri="mongomock://")) as engine:
        for n in NUMBERS:
            assert engine.ingestor.process([(oru_lab(n), "mllp", PEER)])[0].code == "AA"
        state = _hooked_state(engine)
    assert state["recognition_results"] and state["mpi_links"] and state["recognition_checks"]
    return state


@pytest.mark.parametrize("how", ["one-batch", "own-batch", "redo"])
def test_the_replay_of_a_message_whose_undo_failed_runs_its_hooks(
        settings: Settings, faulty_undo: dict[str, bool], clean: dict[str, list[str]], how: str) -> None:
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        # "redo": the batch's one-commit undo works, the message's own block's (``_write_each``) does not
        hook = Arming(faulty_undo, arm_at=2 if how == "redo" else 1)
        engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
        raw = [oru_lab(n) for n in NUMBERS]
        if how == "own-batch":
            for r in raw:
                engine.ingestor.process([(r, "mllp", PEER)])
                faulty_undo["on"] = False
        else:
            engine.ingestor.process([(r, "mllp", PEER) for r in raw])
        faulty_undo["on"], hook.on = False, False
        keys = [message_id("FNXRMYY", f"LAB{n:09d}") for n in NUMBERS]
        docs = [engine.ingestor.messages.get(k) for k in keys]
        kept = [d for d in docs if d is not None and d["status"] == RECEIVED]
        assert len(kept) == (3 if how == "one-batch" else 1)
        # a kept message names what of it stayed stored: the bad one its report among them
        # ("one-batch": the one after it only what it shares with the first, written before)
        assert any(ref.startswith("DiagnosticReport/") for ref in docs[1][UNDO_LEFT])  # type: ignore[index]
        left = [d for d in kept if any(r.startswith("DiagnosticReport/") for r in d.get(UNDO_LEFT, ()))]
        assert len(left) == (2 if how == "one-batch" else 1)
        assert _hooked_state(engine) != clean  # the hooks' work of the kept messages is missing

        hook.seen = []
        for doc in kept:
            replayed = engine.ingestor.replay(doc["_id"], actor="operator")
            assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        assert _hooked_state(engine) == clean
        assert any(t == "DiagnosticReport" for t, _ in hook.seen)  # its report's hooks ran
        for doc in left:
            after = engine.ingestor.messages.get(doc["_id"])
            assert after is not None and after["status"] == PROCESSED and UNDO_LEFT not in after
            # what stayed stored got a new version, which its message's Provenance names and signs
            noted = next(r for r in doc[UNDO_LEFT] if r.startswith("DiagnosticReport/"))
            report, _, left_at = noted.partition("/_history/")
            assert left_at == "1"  # the version the failed undo left behind
            versions = engine.repository.backend.history(*report.split("/"))
            assert sorted(v.version for v in versions) == [1, 2]
            assert f"{report}/_history/2" in _provenance_targets(engine, after["resources"])

        # a second replay is an ordinary one: nothing rewritten, no third version
        again = engine.ingestor.replay(left[0]["_id"], actor="operator")
        assert again is not None and again.code == "AA"
        report = next(r for r in left[0][UNDO_LEFT] if r.startswith("DiagnosticReport/")).partition("/_history/")[0]
        assert len(engine.repository.backend.history(*report.split("/"))) == 2
        assert _hooked_state(engine) == clean


def _provenance_targets(engine: Engine, refs: list[str]) -> set[str]:
    out: set[str] = set()
    for ref in refs:
        if ref.startswith("Provenance/"):
            prov = engine.repository.read(*ref.split("/"))
            out |= {t["reference"] for t in prov.get("target", [])}
    return out


def test_a_rewrite_makes_a_new_version_and_hands_the_hooks_the_version_before(store: Any) -> None:
    """``write_many(rewrite=...)`` on every backend: a resource stored as the write sends it again
    gets a new version (create-only or not) and its hooks run, handed the version before the one
    left behind as ``previous``; without ``rewrite`` it is unchanged and no hook runs."""
    from engine.repository.fhir import FhirRepository
    from tests.test_repository_fhir import observation, patient

    repo = FhirRepository(store)
    seen: list[tuple[str, str, str | None]] = []

    def hook(new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        seen.append((new["id"], new["meta"]["versionId"], previous["meta"]["versionId"] if previous else None))
        return []

    repo.add_write_hook(hook)
    obs, pat = observation("o1", "p1", "718-7", "2024-03-01", 130), patient("p1")
    repo.write_many([pat, obs])
    assert seen == [("p1", "1", None), ("o1", "1", None)]
    seen.clear()
    results = repo.write_many([pat, obs], create_only={"Patient/p1"})
    assert [r.changed for r in results] == [False, False] and seen == []

    # version 1 of each was left without its hooks: rewritten, the hooks told there was nothing before
    results = repo.write_many([pat, obs], create_only={"Patient/p1"}, rewrite={"Patient/p1", "Observation/o1"})
    assert [(r.changed, r.version) for r in results] == [(True, "2"), (True, "2")]
    assert seen == [("p1", "2", None), ("o1", "2", None)]
    seen.clear()
    # version 2 left so: the hooks get version 1 as the previous one; what is not named is unchanged
    results = repo.write_many([pat, obs], rewrite={"Observation/o1"})
    assert [(r.changed, r.version) for r in results] == [(False, "2"), (True, "3")]
    assert seen == [("o1", "3", "1")]
    assert [v.version for v in repo.backend.history("Observation", "o1")] == [3, 2, 1]
    assert repo.read("Observation", "o1")["valueQuantity"]["value"] == 130
    # named once, sent twice in one group: rewritten once, the second one unchanged
    seen.clear()
    results = repo.write_many([obs, obs], rewrite={"Observation/o1"})
    assert [(r.changed, r.version) for r in results] == [(True, "4"), (False, "4")]
    assert seen == [("o1", "4", "2")]


def test_recovery_goes_on_past_a_message_kept_for_replay(
        settings: Settings, faulty_undo: dict[str, bool], clean: dict[str, list[str]]) -> None:
    """A dead process's batch, recovered one message at a time on mongomock: the middle message's
    undo fails, so it is stored ``received`` for replay. Recovery used to take that for "could not
    be stored": it stopped there, left the last message of the batch unprocessed and kept the
    journal. Now it goes on, and the journal goes; the kept message's replay ends it as a clean
    run would have."""
    from engine.inflight import InFlightJournal

    folder = settings.data_dir / "inflight"
    dead = InFlightJournal(folder)
    dead.begin([(oru_lab(n), "mllp", PEER, 0) for n in NUMBERS])
    dead.close()  # as a process that died mid-batch leaves it: written, not emptied, unlocked
    (journal,) = folder.glob("*.journal")
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        hook = Arming(faulty_undo, arm_at=1)
        engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
        engine.ingestor.recover()
        statuses = [(engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) or {}).get("status")
                    for n in NUMBERS]
        assert statuses == [PROCESSED, RECEIVED, PROCESSED]
        assert not journal.exists()
        faulty_undo["on"], hook.on = False, False
        kept = message_id("FNXRMYY", f"LAB{BAD:09d}")
        replayed = engine.ingestor.replay(kept, actor="operator")
        assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        assert _hooked_state(engine) == clean
