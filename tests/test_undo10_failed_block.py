"""What a failed store block leaves behind it, beyond the FHIR data (tests/test_mongo10_*):

- the audit log's right edge: on MongoDB its records live in the store's database, so a block
  that fails after an append takes the record with it (a replica set's transaction aborts, a
  standalone server's or mongomock's undo deletes it); the log must number the next record from
  what is stored, or verification reports the missing number as a deleted record. SQLite keeps
  the audit log in a file of its own: the append there stands, and the log is whole too.
- an undo that itself fails (mongomock / a standalone server): every entry is still tried, and
  the caller gets ``UndoIncomplete`` naming what stayed stored, chained to the block's error; the
  ingest pipeline then keeps the message ``received`` for replay instead of answering "quarantined,
  nothing kept". The fault is real: a pymongo error raised by the collection's method itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import mongomock
import pymongo.errors
import pytest

from bench.ingest import oru_lab
from engine.audit.events import build_event
from engine.audit.verify import verify_online
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, RECEIVED, message_id
from engine.repository.mongo_store import MongoStore
from engine.repository.port import UndoIncomplete
from engine.settings import Settings
from tests.test_mongo10_failed_message_undone import BAD, PEER, Refusal, _of_bad_message

log = logging.getLogger(__name__)


class Stop(Exception):
    pass


def _event(n: int) -> dict[str, Any]:
    return build_event(action="replay", origin="undo10", agents=[], outcome="0", patient_ids=[],
                       detail={"message": f"m{n}"})


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as e:
        yield e


def test_an_audit_append_in_a_failed_block_leaves_no_hole(engine: Engine) -> None:
    audit = engine.audit
    assert audit is not None
    audit.record(_event(0))
    with pytest.raises(Stop), engine.store.transaction():
        audit.record(_event(1))
        raise Stop("a later write of the block fails")
    kept = audit.held_count()
    # MongoDB: the record went with its block; SQLite: its own file, the record stands
    assert kept == (2 if engine.settings.mongodb_uri is None else 1)
    assert audit.size == kept

    # twice more, the second failed block nested: the log follows what is stored each time
    with pytest.raises(Stop), engine.store.transaction():
        with engine.store.transaction():
            audit.record_many([_event(2), _event(3)])
        raise Stop("again")
    assert audit.size == audit.held_count()
    appended = audit.record(_event(4))
    assert appended.seq == audit.held_count() - 1
    report = verify_online(audit)
    assert report.problems == [], report.problems
    assert report.records == audit.held_count()


def _faulty_delete(monkeypatch: pytest.MonkeyPatch, name: str, armed: dict[str, bool]) -> None:
    """``delete_one`` of collection ``name`` raises a pymongo error while ``armed["on"]``."""
    cls = mongomock.collection.Collection
    real = cls.delete_one

    def delete_one(self: Any, *args: Any, **kwargs: Any) -> Any:
        if armed["on"] and self.name == name:
            raise pymongo.errors.AutoReconnect("connection lost during the undo")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "delete_one", delete_one)


def test_the_undo_tries_every_entry_and_says_what_it_left(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MongoStore(mongomock.MongoClient())
    x, y = store.collection("x"), store.collection("y")
    x.insert({"_id": "kept", "n": 0})
    armed = {"on": True}
    _faulty_delete(monkeypatch, "x", armed)
    with pytest.raises(UndoIncomplete) as caught, store.transaction():
        y.insert({"_id": "y1"})
        x.insert({"_id": "a"})
        x.replace({"_id": "kept", "n": 1})
        y.insert({"_id": "y2"})
        raise Stop("hook refused")
    err = caught.value
    assert isinstance(err.__cause__, Stop)
    assert err.left == ["x/a"] and "x/a" in str(err) and "AutoReconnect" in str(err)
    # the entries before and after the failing one were put back
    assert [d["_id"] for d in y.find()] == []
    assert x.get("kept") == {"_id": "kept", "n": 0}
    assert store.undo is None and not store.in_transaction

    # any exception of a put-back, not only a pymongo one, is counted and the rest still tried
    armed["on"] = False

    def broken(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("not a pymongo error")

    monkeypatch.setattr(mongomock.collection.Collection, "replace_one", broken)
    with pytest.raises(UndoIncomplete) as caught2, store.transaction():
        y.insert({"_id": "y3"})
        store.undo.then("x/kept", lambda: x.raw.replace_one({"_id": "kept"}, {"n": 9}))  # type: ignore[union-attr]
        raise Stop("again")
    assert caught2.value.left == ["x/kept"] and isinstance(caught2.value.__cause__, Stop)
    assert y.get("y3") is None


@pytest.mark.parametrize("how", ["one-batch", "own-batch", "redo"])
def test_a_message_whose_undo_fails_is_kept_for_replay_not_quarantined(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str) -> None:
    armed = {"on": False}
    _faulty_delete(monkeypatch, "fhir_current", armed)
    with Engine(settings.with_(mongodb_uri="mongomock://")) as engine:
        class Arming(Refusal):
            refused = 0

            def __call__(self, new: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
                if self.on and self.picks(new):
                    self.refused += 1
                    if how != "redo" or self.refused == 2:  # "redo": the one-commit undo works, the
                        armed["on"] = True  # message's own block's (``_write_each``) does not
                return super().__call__(new, previous)

        hook = Arming(lambda r: r["resourceType"] == "DiagnosticReport" and _of_bad_message(r))
        engine.repository.add_write_hook(hook, types={"DiagnosticReport"})
        numbers = (30, BAD, 32)
        raw = [oru_lab(n) for n in numbers]
        with caplog.at_level(logging.ERROR):
            if how != "own-batch":
                codes = [o.code for o in engine.ingestor.process([(r, "mllp", PEER) for r in raw])]
            else:
                codes = []
                for r in raw:
                    codes.append(engine.ingestor.process([(r, "mllp", PEER)])[0].code)
                    armed["on"] = False
        docs = [engine.ingestor.messages.get(message_id("FNXRMYY", f"LAB{n:09d}")) for n in numbers]
        assert all(d is not None for d in docs)
        statuses = [(c, d["status"]) for c, d in zip(codes, docs, strict=True)]  # type: ignore[index]
        if how == "one-batch":  # the batch fails as a whole: no redo over the writes left stored
            assert statuses == [("AE", RECEIVED)] * 3
        else:
            assert statuses == [("AA", PROCESSED), ("AE", RECEIVED), ("AA", PROCESSED)]
        assert QUARANTINED not in {s for _, s in statuses}
        # an operator sees why, and what stayed stored; "redo": from the message's own block
        said = "message " if how == "redo" else "a batch of "
        assert any(r.getMessage().startswith(said) and "kept for replay" in r.getMessage()
                   and "left stored" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]

        # the fault gone and the hook no longer refusing, the raw message is replayed and stored
        armed["on"], hook.on = False, False
        bad = docs[1]
        assert bad is not None
        replayed = engine.ingestor.replay(bad["_id"], actor="operator")
        assert replayed is not None and (replayed.code, replayed.status) == ("AA", PROCESSED)
