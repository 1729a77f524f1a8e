"""A message kept ``received`` after a failed undo (MongoDB without transactions) notes the versions
its failed block left stored (``undo_left``: ``Type/id/_history/n``); its replay writes one of
them again, with its hooks, only while it is still the current version. Otherwise the replay
writes it as an ordinary replay would.

Before: the note named ``Type/id`` only, and every replay wrote each named resource again whatever
its current version:

- a resource shared by the messages of one batch (the Organization, the ordering Practitioner) is
  noted on each of them: three replays made versions 2, 3 and 4 of it (a clean run: 1), its hooks
  ran three times, the 2nd and 3rd handed versions 1 and 2 as the previous one;
- a lab message's thin Patient (create-only) left at version 1, then written over by an ADT A08
  (version 2: a new name and phone): the replay put the lab's thin Patient back as version 3 --
  the lab feed erased what the ADT feed stated -- and handed the hooks version 1 as previous;
- one deleted since: re-created, its hooks handed the version before the deletion as previous
  (a creation has none).

And a dead process's journal recovered against a database that fails while processing (the raw
messages stored): recovery took each such message for one kept for replay, went on through every
message against the failing database and deleted the journal; it stops at the first again.

The path is the real one: the real engine on mongomock with all its hooks; the fault is a pymongo
error raised by the collection's own methods (``tests/test_pipe11_undo_replay.py``).
"""

from __future__ import annotations

from typing import Any

import mongomock
import pymongo.errors
import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.ingest import UNDO_LEFT
from engine.messages import PROCESSED, RECEIVED, message_id
from engine.settings import Settings
from tests import test_pipe11_undo_replay as pipe11
from tests.test_mongo10_failed_message_undone import BAD, PEER
from tests.test_pipe11_undo_replay import NUMBERS, Arming, _hooked_state

faulty_undo, clean = pipe11.faulty_undo, pipe11.clean  # the fixtures: the fault, the clean run's hooked state

Seen = list[tuple[str, str, str | None]]


def _watch(engine: Engine, types: set[str]) -> Seen:
    """What the write hooks of ``types`` are handed: (Type/id, version, previous version)."""
    seen: Seen = []

    def hook(new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        seen.append((f"{new['resourceType']}/{new['id']}", new["meta"]["versionId"],
                     previous["meta"]["versionId"] if previous else None))
        return []

    engine.repository.add_write_hook(hook, types=types)
    return seen


def _left(doc: dict[str, Any], rtype: str) -> tuple[str, str]:
    """The ``Type/id`` of the one ``rtype`` a kept message notes, and the version noted."""
    (noted,) = [r for r in doc[UNDO_LEFT] if r.startswith(f"{rtype}/")]
    ref, _, version = noted.partition("/_history/")
    return ref, version


def _kept_lab(engine: Engine, faulty_undo: dict[str, bool]) -> dict[str, Any]:
    """The bad lab message sent alone; its hook refused, its undo failed: kept ``received``."""
    hook = Arming(faulty_undo, arm_at=1)
    engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
    out = engine.ingestor.process([(oru_lab(BAD), "mllp", PEER)])[0]
    assert (out.code, out.status) == ("AE", RECEIVED)
    faulty_undo["on"], hook.on = False, False
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{BAD:09d}"))
    assert doc is not None and doc["status"] == RECEIVED
    return doc


def test_a_resource_shared_by_a_batch_is_rewritten_once(
        settings: Settings, faulty_undo: dict[str, bool], clean: dict[str, list[str]]) -> None:
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        hook = Arming(faulty_undo, arm_at=1)
        engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
        engine.ingestor.process([(oru_lab(n), "mllp", PEER) for n in NUMBERS])
        faulty_undo["on"], hook.on = False, False
        docs = [engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) for n in NUMBERS]
        assert [d["status"] for d in docs if d] == [RECEIVED] * 3
        shared = [_left(d, t) for t in ("Organization", "Practitioner") for d in docs if d]
        assert {v for _, v in shared} == {"1"} and len({r for r, _ in shared}) == 2  # on all three
        seen = _watch(engine, {"Organization", "Practitioner"})
        for doc in docs:
            replayed = engine.ingestor.replay(doc["_id"], actor="operator")  # type: ignore[index]
            assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        for ref in sorted({r for r, _ in shared}):
            # written again once, by the first replay: its hooks ran once, told nothing came before
            assert [v.version for v in engine.repository.backend.history(*ref.split("/"))] == [2, 1]
            assert [s for s in seen if s[0] == ref] == [(ref, "2", None)]
        assert _hooked_state(engine) == clean


def test_the_replay_keeps_what_the_adt_feed_stored_over_a_left_patient(
        settings: Settings, faulty_undo: dict[str, bool]) -> None:
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        doc = _kept_lab(engine, faulty_undo)
        ref, version = _left(doc, "Patient")
        assert version == "1"
        lab = oru_lab(BAD).decode()
        pid = next(s for s in lab.split("\r") if s.startswith("PID"))
        assert "张^三" in pid and "13800000000" in pid
        adt = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101100000||ADT^A08^ADT_A01|ADTX1|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
               "EVN|A08|20261101100000\r" + pid.replace("张^三", "王^五").replace("13800000000", "13911112222")
               + "\rPV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\r").encode()
        out = engine.ingestor.process([(adt, "mllp", PEER)])[0]
        assert (out.code, out.status) == ("AA", PROCESSED)
        before = engine.repository.read(*ref.split("/"))
        assert before["meta"]["versionId"] == "2" and before["name"][0]["text"] == "王五"
        seen = _watch(engine, {"Patient"})

        replayed = engine.ingestor.replay(doc["_id"], actor="operator")
        assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        after = engine.repository.read(*ref.split("/"))
        # create-only, as for any lab message: the ADT feed's Patient stays as it stored it
        assert after == before
        assert [v.version for v in engine.repository.backend.history(*ref.split("/"))] == [2, 1]
        assert seen == []
        # what no other write touched was rewritten, with its hooks: the report is at version 2
        report, left_at = _left(doc, "DiagnosticReport")
        assert left_at == "1"
        assert engine.repository.read(*report.split("/"))["meta"]["versionId"] == "2"
        done = engine.ingestor.messages.get(doc["_id"])
        assert done is not None and UNDO_LEFT not in done


def test_a_left_resource_deleted_since_is_created_again_with_no_previous(
        settings: Settings, faulty_undo: dict[str, bool]) -> None:
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        doc = _kept_lab(engine, faulty_undo)
        obs = next(r for r in doc[UNDO_LEFT] if r.startswith("Observation/")).partition("/_history/")[0]
        assert engine.repository.delete(*obs.split("/")) == 2
        seen = _watch(engine, {"Observation"})
        replayed = engine.ingestor.replay(doc["_id"], actor="operator")
        assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        # a creation: its hooks are told nothing came before (it was deleted), as for any create
        assert [s for s in seen if s[0] == obs] == [(obs, "3", None)]
        assert engine.repository.read(*obs.split("/"))["meta"]["versionId"] == "3"


def test_write_many_rewrites_a_version_only_while_it_is_current(store: Any) -> None:
    """``write_many(rewrite={"Type/id/_history/n"})`` on every backend: rewritten (its hooks run,
    create-only or not) while version n is current; once written over, as without ``rewrite``:
    create-only keeps the stored version, an ordinary write merges as always."""
    from engine.repository.fhir import FhirRepository
    from tests.test_repository_fhir import observation, patient

    repo = FhirRepository(store)
    seen: Seen = []

    def hook(new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        seen.append((new["id"], new["meta"]["versionId"], previous["meta"]["versionId"] if previous else None))
        return []

    repo.add_write_hook(hook)
    pat, obs = patient("p1"), observation("o1", "p1", "718-7", "2024-03-01", 130)
    repo.write_many([pat, obs])
    richer = dict(pat, gender="female", birthDate="1980-01-01")
    repo.update(richer)  # another feed: Patient/p1 version 2
    seen.clear()
    left = {"Patient/p1/_history/1", "Observation/o1/_history/1"}
    results = repo.write_many([pat, obs], create_only={"Patient/p1"}, rewrite=left)
    assert [(r.changed, r.version) for r in results] == [(False, "2"), (True, "2")]
    assert seen == [("o1", "2", None)]
    assert repo.read("Patient", "p1")["gender"] == "female"
    # noted again at version 1 (another kept message sharing it): version 2 is current, unchanged
    seen.clear()
    results = repo.write_many([pat, obs], create_only={"Patient/p1"}, rewrite=left)
    assert [(r.changed, r.version) for r in results] == [(False, "2"), (False, "2")] and seen == []
    # the version current is the one noted: rewritten, its hooks handed the one before
    results = repo.write_many([obs], rewrite={"Observation/o1/_history/2"})
    assert [(r.changed, r.version) for r in results] == [(True, "3")] and seen == [("o1", "3", "1")]


@pytest.fixture
def failing_processing(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """While on: the database takes new documents (the raw messages are stored) but changes none
    (no FHIR version put, no status set): the database failing while processing."""
    armed = {"on": False}
    real_replace = mongomock.collection.Collection.replace_one
    real_update = mongomock.collection.Collection.update_one

    def replace_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            raise pymongo.errors.AutoReconnect("connection lost")
        return real_replace(self, *args, **kwargs)

    def update_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            raise pymongo.errors.AutoReconnect("connection lost")
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.Collection, "replace_one", replace_one)
    monkeypatch.setattr(mongomock.collection.Collection, "update_one", update_one)
    return armed


def test_journal_recovery_stops_when_the_database_fails_while_processing(
        settings: Settings, failing_processing: dict[str, bool]) -> None:
    from engine.inflight import InFlightJournal

    folder = settings.data_dir / "inflight"
    dead = InFlightJournal(folder)
    dead.begin([(oru_lab(n), "mllp", PEER, 0) for n in NUMBERS])
    dead.close()  # as a process that died mid-batch leaves it: written, not emptied, unlocked
    (journal,) = folder.glob("*.journal")
    keys = [message_id("FNXRMYY", f"LAB{n:09d}") for n in NUMBERS]
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        failing_processing["on"] = True
        engine.ingestor.recover()
        failing_processing["on"] = False
        statuses = [(engine.ingestor.messages.get(k) or {}).get("status") for k in keys]
        # the first message's raw is stored, its processing failed: recovery stopped there (it
        # does not run the rest against a failing database) and kept the journal for the next start
        assert statuses == [RECEIVED, None, None]
        assert journal.exists()
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        engine.ingestor.recover()  # the next start: the database works again
        statuses = [(engine.ingestor.messages.get(k) or {}).get("status") for k in keys]
        assert statuses == [PROCESSED] * 3
        assert not journal.exists()


@pytest.fixture
def faulty_undo_of_versions(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Like ``faulty_undo``, and the undo cannot put a replaced version back either."""
    armed = {"on": False}
    real_delete = mongomock.collection.Collection.delete_one
    real_replace = mongomock.collection.Collection.replace_one

    def delete_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"] and self.name == "fhir_current":
            raise pymongo.errors.AutoReconnect("connection lost during the undo")
        return real_delete(self, *args, **kwargs)

    def replace_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"] and self.name == "fhir_current":
            raise pymongo.errors.AutoReconnect("connection lost during the undo")
        return real_replace(self, *args, **kwargs)

    monkeypatch.setattr(mongomock.collection.Collection, "delete_one", delete_one)
    monkeypatch.setattr(mongomock.collection.Collection, "replace_one", replace_one)
    return armed


def test_a_replay_whose_undo_fails_again_notes_the_versions_it_left(
        settings: Settings, faulty_undo_of_versions: dict[str, bool], clean: dict[str, list[str]]) -> None:
    """The replay of a kept message rewrites what was left (version 2), a hook refuses it again and
    the undo fails again: version 2 stays stored, its hooks never ran. The note must now name
    version 2 (it named version 1: the next replay took version 2 for a later write and left it
    without its hooks)."""
    fault = faulty_undo_of_versions
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        hook = Arming(fault, arm_at=1)
        engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
        for n in NUMBERS:
            engine.ingestor.process([(oru_lab(n), "mllp", PEER)])
            fault["on"] = False
        key = message_id("FNXRMYY", f"LAB{BAD:09d}")
        doc = engine.ingestor.messages.get(key)
        assert doc is not None and doc["status"] == RECEIVED
        report, version = _left(doc, "DiagnosticReport")
        assert version == "1"

        again = engine.ingestor.replay(key, actor="operator")  # refused again, its undo failing again
        fault["on"] = False
        assert again is not None and (again.code, again.status) == ("AE", RECEIVED)
        assert engine.repository.read(*report.split("/"))["meta"]["versionId"] == "2"
        doc = engine.ingestor.messages.get(key)
        assert doc is not None and _left(doc, "DiagnosticReport") == (report, "2")

        hook.on = False
        replayed = engine.ingestor.replay(key, actor="operator")
        assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
        assert engine.repository.read(*report.split("/"))["meta"]["versionId"] == "3"
        assert _hooked_state(engine) == clean
