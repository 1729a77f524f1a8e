"""dfix40: an operator's owner decision whose processing fails at the store (rv40i MED 1) leaves the message as it was
before the decision, decidable again, and the operator is told the store was busy (503 Retry-After), never a 200 with
AE -- nor, after it, a 409 "being taken" by a decision no process is applying.

Real bytes through the real path: the held message over ``POST /hl7v2``, the decision over ``/admin`` (FastAPI), the
real store (SQLite and mongomock). The SQLite cases take the store's write lock for real: a second connection to the
database file holds ``BEGIN IMMEDIATE`` while the decision is processed, as a second worker of ``huren serve
--workers N`` (or the console) does, and the ingest's own write fails with SQLite's "database is locked".
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import DECIDING
from engine.repository.port import UndoIncomplete
from engine.repository.sqlite_store import SqliteStore
from engine.settings import Settings
from tests.conftest import _BACKENDS, settings_for_backend
from tests.test_codedoc38_order_owner import _codes
from tests.test_order35_as_later import _operator
from tests.test_rv40f_probes import _held_message, _owner, _senders
from tests.test_srfix35_order_code import B, the_order

MOVED = "1.2.156.112604.1.2.43"


@pytest.fixture(scope="module", params=_BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("dfix40")
    (root / "site" / "hl7v2").mkdir(parents=True)
    (root / "site" / "hl7v2" / "senders.yaml").write_text(_senders({B: [["RIS", f"^{MOVED}^ISO"]]}),
                                                          encoding="utf-8")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=root / "site")
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("dfix40", "system/*.cruds")
        yield client


def _ops(engine: Engine, client: str = "ops-dfix40") -> dict[str, str]:
    return _operator(engine, "system/MessageHeader.cr", client)


def _store_error(engine: Engine) -> Exception:
    """What the backend raises when its write cannot be made: SQLite's busy timeout, a MongoDB connection lost."""
    if isinstance(engine.store, SqliteStore):
        return sqlite3.OperationalError("database is locked")
    from pymongo.errors import AutoReconnect

    return AutoReconnect("connection closed")


@contextlib.contextmanager
def _failing_once(engine: Engine, exc: Exception) -> Iterator[None]:
    """The decision's batch write fails once with ``exc`` (as the store raised it), then writes as ever."""
    ingestor = engine.ingestor
    write_batch = ingestor._write_batch
    left = {"n": 1}

    def once(items: list[Any], **kw: Any) -> bool:
        if left["n"]:
            left["n"] -= 1
            raise exc
        return write_batch(items, **kw)

    ingestor._write_batch = once  # type: ignore[method-assign]
    try:
        yield
    finally:
        del ingestor._write_batch


@contextlib.contextmanager
def _locked_while_processed(engine: Engine, *, through_put_back: bool = False) -> Iterator[list[sqlite3.Connection]]:
    """SQLite: another connection to the database file holds its write lock (``BEGIN IMMEDIATE``) from the moment
    the decision's processing starts (after its reopen) -- until that processing has failed, or (``through_put_back``)
    until the block ends, so the put-back fails too. The engine's writer waits 0.2 s, not its 10, meanwhile."""
    store = engine.store
    assert isinstance(store, SqliteStore)
    ingestor = engine.ingestor
    phase2 = ingestor._phase2
    held: list[sqlite3.Connection] = []

    def release() -> None:
        while held:
            other = held.pop()
            other.execute("ROLLBACK")
            other.close()

    def locked(items: list[Any], flat: bool = True) -> None:
        other = sqlite3.connect(str(store.path), isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        held.append(other)
        store.conn.execute("PRAGMA busy_timeout=200")
        try:
            phase2(items, flat)
        finally:
            if not through_put_back:
                release()
                store.conn.execute("PRAGMA busy_timeout=10000")

    ingestor._phase2 = locked  # type: ignore[method-assign]
    try:
        yield held
    finally:
        del ingestor._phase2
        release()
        store.conn.execute("PRAGMA busy_timeout=10000")


def _busy(r: Any) -> dict[str, Any]:
    """The 503 OperationOutcome of a decision the store was too busy to write; its one issue."""
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("retry-after") == "5", r.headers
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    (issue,) = body["issue"]
    assert issue["code"] == "transient" and "the store was busy" in issue["diagnostics"], issue
    assert "nothing of it was applied" in issue["diagnostics"], issue
    return issue


def _as_before(engine: Engine, msg: str, before: dict[str, Any]) -> None:
    now = engine.ingestor.messages.get(msg) or {}
    assert now.get(DECIDING) is None, now
    assert {k: v for k, v in now.items() if k != DECIDING} == before, (now, before)


def test_a_decision_the_store_failed_is_answered_503_and_the_message_is_as_before(
        engine: Engine, http: TestClient) -> None:
    """The decision's write fails at the store (the backend's own error): 503 transient with Retry-After, the
    message exactly as it was before the decision (processed, its held claims, its replay entries: none added), still
    listed as held, the order untouched. Asked again: taken (3001), nothing in flight left on it; asked a third time:
    already."""
    placer = "DF40-BUSY"
    msg = _held_message(http, placer)
    before = engine.ingestor.messages.get(msg)
    with _failing_once(engine, _store_error(engine)):
        _busy(_owner(http, msg, _ops(engine), reason="第一次"))
    _as_before(engine, msg, before)
    assert msg in [m["id"] for m in http.get("/admin/held", headers=_ops(engine)).json()["items"]]
    assert "3002" in _codes(the_order(http, placer))
    again = _owner(http, msg, _ops(engine), reason="第二次")
    assert again.status_code == 200 and again.json()["decided"]["used"] is True, again.text
    assert "3001" in _codes(the_order(http, placer))
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "processed" and doc.get(DECIDING) is None, doc
    assert [(e.get("as"), e.get("reason")) for e in doc["replays"]] == [("owner", "第二次")], doc["replays"]
    third = _owner(http, msg, _ops(engine), reason="第三次")
    assert third.status_code == 200 and third.json()["already"] is True, third.text


def test_a_decision_whose_failure_left_writes_stored_asks_for_a_plain_replay(
        engine: Engine, http: TestClient) -> None:
    """A failure whose undo left writes stored (``UndoIncomplete``: a MongoDB without transactions) is not put back
    over them: 409 saying so, the message kept received for a plain replay; the next decision is told the same (not
    "being taken"); the plain replay holds the change again and the decision then takes it."""
    placer = "DF40-KEPT"
    msg = _held_message(http, placer)
    order = the_order(http, placer)
    left = [f"ServiceRequest/{order['id']}/_history/{order['meta']['versionId']}"]
    with _failing_once(engine, UndoIncomplete("a failed block's undo failed", left)):
        r = _owner(http, msg, _ops(engine), reason="留下的写入")
    assert r.status_code == 409 and "writes of the message stayed stored" in r.text, r.text
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "received" and DECIDING in doc and doc[DECIDING] is None, doc
    nxt = _owner(http, msg, _ops(engine), reason="再来")
    assert nxt.status_code == 409 and "replay it plainly" in nxt.text and "being taken" not in nxt.text, nxt.text
    plain = http.post(f"/admin/quarantine/{msg}/replay", headers=_ops(engine))
    assert plain.status_code == 200 and plain.json()["status"] == "processed", plain.text
    assert "3002" in _codes(the_order(http, placer))  # (held again)
    taken = _owner(http, msg, _ops(engine), reason="普通重放之后")
    assert taken.status_code == 200, taken.text
    assert "3001" in _codes(the_order(http, placer))


def test_a_second_workers_write_lock_fails_the_decision_and_it_is_asked_again(
        engine: Engine, http: TestClient) -> None:
    """SQLite, the lock for real: another connection holds the file's write lock while the decision is processed;
    the ingest's write fails with "database is locked", the lock is let go, the message is put back: 503, as before;
    asked again, taken."""
    if not isinstance(engine.store, SqliteStore):
        pytest.skip("SQLite's file lock")
    placer = "DF40-LOCK"
    msg = _held_message(http, placer)
    before = engine.ingestor.messages.get(msg)
    with _locked_while_processed(engine):
        _busy(_owner(http, msg, _ops(engine), reason="锁住了"))
    _as_before(engine, msg, before)
    assert "3002" in _codes(the_order(http, placer))
    again = _owner(http, msg, _ops(engine), reason="锁放开了")
    assert again.status_code == 200 and again.json()["decided"]["used"] is True, again.text
    assert "3001" in _codes(the_order(http, placer))


def test_a_lock_held_through_the_put_back_leaves_it_for_the_next_start(
        engine: Engine, http: TestClient) -> None:
    """SQLite: the lock is held through the put-back too -- the message cannot be put back. The answer says so (409,
    not 503: asking again in a moment would not help), a later decision is 409 "being taken" (as after a crash), and
    the next start's recovery (``Ingestor.recover``, as ``huren serve`` runs it) processes it plainly: held again,
    nothing in flight left, and the decision is then taken."""
    if not isinstance(engine.store, SqliteStore):
        pytest.skip("SQLite's file lock")
    placer = "DF40-STUCK"
    msg = _held_message(http, placer)
    with _locked_while_processed(engine, through_put_back=True):
        r = _owner(http, msg, _ops(engine), reason="一直锁着")
    assert r.status_code == 409 and "could not be put back" in r.text and "next start" in r.text, r.text
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "received" and doc.get(DECIDING) == doc["replays"][-1]["at"], doc
    later = _owner(http, msg, _ops(engine), reason="稍后")
    assert later.status_code == 409 and "being taken as the owner's by ops-dfix40" in later.text, later.text
    engine.ingestor.recover()
    doc = engine.ingestor.messages.get(msg)
    assert doc["status"] == "processed" and doc.get(DECIDING) is None and doc["held_claims"], doc
    assert "3002" in _codes(the_order(http, placer))
    taken = _owner(http, msg, _ops(engine), reason="重启之后")
    assert taken.status_code == 200 and taken.json()["decided"]["used"] is True, taken.text
    assert "3001" in _codes(the_order(http, placer))


def test_a_plain_replay_meanwhile_is_not_put_back(engine: Engine, http: TestClient) -> None:
    """``MessageStore.put_back`` writes only while the message is still this decision's reopen: a plain replay that
    reopened it meanwhile (it clears ``deciding``) is left as it is -- False, nothing written."""
    msg = _held_message(http, "DF40-PLAIN")
    messages = engine.ingestor.messages
    doc = messages.get(msg)
    at = "2026-12-05T10:00:00.000000Z"
    with engine.store.transaction():
        messages.reopen(msg, actor="ops-a", decided_at=at, decided_as="owner", reason="甲",
                        expect={"status": "processed", "processed_at": doc["processed_at"]})
    with engine.store.transaction():
        messages.reopen(msg, actor="ops-b")
    stale = messages.get(msg)
    assert stale[DECIDING] is None and len(stale["replays"]) == 2, stale
    with engine.store.transaction():
        assert not messages.put_back(msg, at)
    assert messages.get(msg) == stale
    engine.ingestor.recover()  # (the plain replay's processing, as the next start would finish it)


def test_a_decision_failed_while_a_plain_replay_reopened_it_is_told_to_look_again(
        engine: Engine, http: TestClient) -> None:
    """The decision's write fails at the store just after a plain replay (another worker, the console) reopened the
    message: the put-back finds it no longer this decision's and leaves it to that replay -- 409 "replayed
    meanwhile", not 503 (asking again at once would find it being replayed); the replay finished (here by
    ``recover``), the message is held again and the decision is taken."""
    placer = "DF40-MEANWHILE"
    msg = _held_message(http, placer)
    ingestor = engine.ingestor
    write_batch = ingestor._write_batch
    left = {"n": 1}
    error = _store_error(engine)

    def replayed_then_failed(items: list[Any], **kw: Any) -> bool:
        if left["n"]:
            left["n"] -= 1
            with engine.store.transaction():
                ingestor.messages.reopen(msg, actor="ops-console")
            raise error
        return write_batch(items, **kw)

    ingestor._write_batch = replayed_then_failed  # type: ignore[method-assign]
    try:
        r = _owner(http, msg, _ops(engine), reason="同时重放")
    finally:
        del ingestor._write_batch
    assert r.status_code == 409 and "replayed meanwhile" in r.text, r.text
    doc = ingestor.messages.get(msg)
    assert doc["status"] == "received" and doc[DECIDING] is None, doc
    assert [e.get("as") for e in doc["replays"]] == ["owner", None], doc["replays"]  # (both kept, as asked)
    ingestor.recover()
    assert ingestor.messages.get(msg)["held_claims"] and "3002" in _codes(the_order(http, placer))
    taken = _owner(http, msg, _ops(engine), reason="重放之后")
    assert taken.status_code == 200 and taken.json()["decided"]["used"] is True, taken.text
    assert "3001" in _codes(the_order(http, placer))
