"""fid37: the fidelity counters ``/admin/fidelity`` reads (``hl7_fidelity``: unmapped codes and segments, counted
warnings and their records, the per-application refusal rows) are added by the storage port's atomic
``Collection.increment`` -- a read of the rows then a ``replace`` of each lost counts and records between two
processes on a MongoDB without transactions (a standalone server; rv36g, count36's note). Contract tests on every
backend (the ``store`` fixture: SQLite, mongomock, real MongoDB if set), as cn36's for the increment itself; the
counts read back through ``MessageStore.fidelity_report``, what the view reads."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest

from adapters.hl7v2.errors import HL7Error, Tally
from engine.messages import Fidelity, MessageStore
from engine.repository import open_store
from engine.repository.port import Store
from engine.settings import Settings


def _counted(record: str, example: str) -> Fidelity:
    """One message's counts: an unmapped code, an unknown segment, and a counted warning naming one of the
    institution's own records (``Tally.records``, the operator's list to correct)."""
    warning = HL7Error("PID-3 kept apart", segment="PID", field=3, code="205", severity="W",
                       tally=Tally("kept_apart", "LISF", records=(record,)))
    return Fidelity("FNXRMYY", [warning], [{"kind": "code", "code": "ZZF1", "where": "OBX-3"},
                                           {"kind": "segment", "segment": "ZXF", "where": "ZXF"}], example)


def _rows(messages: MessageStore) -> dict[str, dict[str, Any]]:
    """The institution's rows by what they count: ``code``, ``segment``, ``warning``."""
    return {d["kind"]: d for d in messages.fidelity_report("FNXRMYY")}


def _other(store: Store, settings: Settings) -> Store:
    """A second store over the same database: a second engine process."""
    return open_store(settings) if not hasattr(store, "client") else type(store)(store.client, store.db.name)  # type: ignore[attr-defined]


def test_increment_adds_each_value_once_after_those_held(store: Store) -> None:
    """``Collection.increment(add=)``: the values a call adds to a list field, each once, after those held, the
    returned documents exact -- what the row was, and what it is -- alike on every backend."""
    rows = store.collection("fid37_sets")
    before, after = rows.increment("r", "count", on_insert={"kind": "k"}, add={"records": ["b", "a", "b"]})
    assert before is None and after == {"_id": "r", "kind": "k", "count": 1, "records": ["b", "a"]}
    before, after = rows.increment("r", "count", by=2, add={"records": ["a", "c"]})
    assert before == {"_id": "r", "kind": "k", "count": 1, "records": ["b", "a"]}
    assert after == rows.get("r") == {"_id": "r", "kind": "k", "count": 3, "records": ["b", "a", "c"]}
    with pytest.raises(ValueError):
        rows.increment("r", "count", fields={"records": []}, add={"records": ["d"]})


def test_counts_records_and_the_last_example_are_kept_row_by_row(store: Store) -> None:
    """A batch of two messages then a third: each row counts 3, the warning's row lists the three records once each,
    sorted, whatever order they came in; the first seen stays, the last seen and the example are the last's."""
    messages = MessageStore(store)
    with store.transaction():
        messages.count_fidelity_many([_counted("Patient/r2", "m1"), _counted("Patient/r1", "m2")])
    first = _rows(messages)
    with store.transaction():
        messages.count_fidelity_many([_counted("Patient/r0", "m3"), _counted("Patient/r2", "m3")])
    rows = _rows(messages)
    assert {kind: row["count"] for kind, row in rows.items()} == {"code": 4, "segment": 4, "warning": 4}
    assert rows["warning"]["records"] == ["Patient/r0", "Patient/r1", "Patient/r2"], rows["warning"]
    assert first["warning"]["records"] == ["Patient/r1", "Patient/r2"], first["warning"]
    assert all(row["example_message"] == "m3" and row["first_seen"] == first[k]["first_seen"]
               for k, row in rows.items()), rows
    assert rows["code"]["value"] == "ZZF1" and rows["warning"]["count_key"] == "LISF", rows


def test_counts_in_a_failed_block_are_not_kept(store: Store) -> None:
    """Rolled back with their block -- by the transaction, or on a MongoDB without one by the increment's own
    undo: the count taken back, the records this block added removed, a row it created gone."""
    messages = MessageStore(store)
    with store.transaction():
        messages.count_fidelity_many([_counted("Patient/k1", "m1")])
    kept = _rows(messages)
    with pytest.raises(RuntimeError), store.transaction():
        messages.count_fidelity_many([_counted("Patient/k2", "m2")])
        messages.count_fidelity_many([Fidelity("FNXRMYY", [], [{"kind": "code", "code": "ZZNEW", "where": "OBX-3"}],
                                               "m2")])
        raise RuntimeError("boom")
    rows = _rows(messages)
    assert {k: (r["count"], r.get("records")) for k, r in rows.items()} == {
        k: (r["count"], r.get("records")) for k, r in kept.items()}, rows
    assert not [d for d in messages.fidelity_report("FNXRMYY") if d["value"] == "ZZNEW"]


# the write operations ``MongoCollection`` sends (``mongomock.collection.Collection``'s)
_WRITES = ("find_one_and_update", "update_one", "update_many", "replace_one", "insert_one", "insert_many",
           "delete_one", "delete_many")


def _one_write_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """mongomock applies each write as a server does, whole: a server updates one document atomically, while
    mongomock's update reads the document, computes and writes it back in Python, so threads switching inside it
    lose updates that no server would (an ``$inc`` included). Each write is held under one lock -- the server's
    guarantee, no more: a read and a later write (the read-then-replace) are still two operations."""
    import mongomock.collection

    lock = threading.RLock()
    for name in _WRITES:
        method = getattr(mongomock.collection.Collection, name)

        def whole(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with lock:
                return _method(self, *args, **kwargs)

        monkeypatch.setattr(mongomock.collection.Collection, name, whole)


def test_two_processes_counting_at_once_lose_nothing(store: Store, backend_settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stores over one database (two engine processes), four threads each counting 25 messages, one at a time
    in its own transaction as a message written alone is, the threads switching as often as Python allows: every
    row counts 200 and the warning's row lists all 200 records. The read-then-replace lost counts and records on
    mongomock (no isolation between processes, as on a standalone MongoDB): 80 of 200 kept, each write whole."""
    if type(getattr(store, "client", None)).__module__.startswith("mongomock"):
        _one_write_at_a_time(monkeypatch)
    other = _other(store, backend_settings)
    start = threading.Barrier(8)

    def count(s: Store, t: int) -> None:
        messages = MessageStore(s)
        start.wait()
        for i in range(25):
            with s.transaction():
                messages.count_fidelity_many([_counted(f"Patient/t{t}-{i}", f"m{t}-{i}")])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=count, args=(s, t)) for t, s in enumerate((store, other) * 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(interval)
        if other is not store and hasattr(other, "conn"):
            other.close()
    rows = _rows(MessageStore(store))
    assert {kind: row["count"] for kind, row in rows.items()} == {"code": 200, "segment": 200, "warning": 200}
    assert rows["warning"]["records"] == sorted(f"Patient/t{t}-{i}" for t in range(8) for i in range(25))


def test_a_process_held_between_its_read_and_its_write_loses_nothing() -> None:
    """The race forced: process A (a ``MessageStore`` on a standalone MongoDB, mongomock) is held at its first touch
    of the rows -- after a ``find`` returns (the read-then-replace) or before an ``increment`` runs -- while
    process B counts the same rows; then A goes on. Both messages are counted and both records listed."""
    import mongomock

    from engine.repository.mongo_store import MongoStore

    client = mongomock.MongoClient()
    a, b = MessageStore(MongoStore(client, "huren")), MessageStore(MongoStore(client, "huren"))
    touched, b_done = threading.Event(), threading.Event()
    find, increment = a.fidelity.find, a.fidelity.increment
    held = [True]

    def hold() -> None:
        if held[0]:
            held[0] = False
            touched.set()
            b_done.wait(timeout=5)

    def find_then_hold(*args: Any, **kwargs: Any) -> Any:
        out = find(*args, **kwargs)
        hold()
        return out

    def hold_then_increment(*args: Any, **kwargs: Any) -> Any:
        hold()
        return increment(*args, **kwargs)

    a.fidelity.find = find_then_hold  # type: ignore[method-assign]
    a.fidelity.increment = hold_then_increment  # type: ignore[method-assign]
    worker = threading.Thread(target=lambda: a.count_fidelity_many([_counted("Patient/a", "ma")]))
    worker.start()
    assert touched.wait(timeout=5)
    b.count_fidelity_many([_counted("Patient/b", "mb")])
    b_done.set()
    worker.join(timeout=10)
    rows = _rows(b)
    assert {kind: row["count"] for kind, row in rows.items()} == {"code": 2, "segment": 2, "warning": 2}, rows
    assert rows["warning"]["records"] == ["Patient/a", "Patient/b"], rows["warning"]
