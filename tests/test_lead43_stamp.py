"""The compartments' stamp on MongoDB with transactions: written after the commit (the lead, forty-third round).

rv43a MED 4: every identity write replaced one shared document (``mpi.COMPARTMENTS_STAMP``) inside its transaction,
so on a replica set two workers' identity writes at once were a WriteConflict for the second, which nothing retried.
``MongoStore.after_commit`` runs the stamp after the commit. These tests need a MongoDB replica set
(``HUREN_MONGODB_URI``); mongomock and a standalone server have no transactions, SQLite orders its writers -- there
the stamp is written inside the block as before, and tests/test_perfa42_compartment.py holds it on both backends."""

from __future__ import annotations

import threading

import pytest

from engine.engine import Engine
from engine.settings import Settings


def test_two_transactions_stamping_at_once_both_commit_and_the_stamp_changes(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        store = engine.store
        if not getattr(store, "transactions", False):
            pytest.skip("no MongoDB transactions on this backend (SQLite orders writers; mongomock has none)")
        links = engine.identity.links
        links.touched()
        before = links.stamp()
        inside = threading.Barrier(2, timeout=20)
        failed: list[BaseException] = []

        def write(n: int) -> None:
            try:
                with store.transaction():
                    store.collection("lead43_probe").replace({"_id": f"w{n}", "n": n})
                    links.touched()
                    inside.wait()  # both transactions hold their writes before either commits
            except BaseException as exc:  # noqa: BLE001 -- the test reports what failed
                failed.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failed, failed
        assert links.stamp() not in (None, before)
        assert {d["_id"] for d in store.collection("lead43_probe").find({})} == {"w1", "w2"}


def test_a_rolled_back_transaction_writes_no_stamp(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        store = engine.store
        if not getattr(store, "transactions", False):
            pytest.skip("no MongoDB transactions on this backend")
        links = engine.identity.links
        links.touched()
        before = links.stamp()
        with pytest.raises(RuntimeError), store.transaction():
            links.touched()
            raise RuntimeError("rolled back")
        assert links.stamp() == before
