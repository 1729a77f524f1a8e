"""A store this open made (``Store.created``): the once-per-store upgrades write their markers without
their scans (``engine.repository.port.is_new_store``), and what they write is what their scans, run on
that store, write (twenty-ninth round, suitecut29b). That an older store still gets every backfill is
the upgrades' own tests (test_rec13_final_at_upgrade, test_last20a_deleted_labels, test_audit_legacy,
test_party29_citations (labelmark27's, moved there), test_rec17_same_person, test_lead19_charge_lines,
test_rvrvpriv26_upgrade, ...)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from engine import booking_as_sent, carried_numbers
from engine.audit.legacy import MARKER as PURGED
from engine.audit.legacy import purge_legacy_copies
from engine.audit.log import VIEW_PROGRESS
from engine.engine import Engine
from engine.identity.mpi import MERGED_KEYS
from engine.recognition.billed_lines import drop_unbilled_once, number_lines_once
from engine.recognition.upgrade import LAYOUT, backfill_final_at, report_days_once
from engine.repository import open_store
from engine.repository.scoped import DELETED_LABELS, DeletedLabels
from engine.result_labels import MARKER_COLLECTION, ResultLabels
from engine.settings import Settings

# the markers, by collection: (collection, _id)
MARKERS = [(MARKER_COLLECTION, "-backfilled"), (DELETED_LABELS, "-backfilled"), (VIEW_PROGRESS, PURGED),
           (booking_as_sent.MARKER_COLLECTION, "-backfilled"),
           (carried_numbers.MARKER_COLLECTION, carried_numbers.DONE),
           ("mpi_meta", MERGED_KEYS)] + [(LAYOUT, m) for m in (
               "final-at-backfilled", "same-person-of-the-index", "unbilled-charge-rows-dropped",
               "charge-rows-numbered", "money-rules-of-round-27", "report-days-relinked")]


def _names(store: Any) -> list[str]:
    """Every plain collection of the store, either backend."""
    if getattr(store, "db", None) is not None:  # MongoDB / mongomock
        return sorted(n for n in store.db.list_collection_names() if not n.startswith("fhir"))
    with sqlite3.connect(store.path) as raw:
        return sorted(n[len("doc_"):] for (n,) in raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'doc\\_%' ESCAPE '\\'"))


def _everything(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    if hasattr(engine.store, "flush_schema"):
        engine.store.flush_schema()
    return {n: sorted(engine.store.collection(n).find({}), key=lambda d: str(d["_id"])) for n in _names(engine.store)}


def _timeless(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if k != "at"}


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_new_stores_markers_are_what_its_scans_write(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine:
        store = engine.store
        assert store.created is False  # the start is over: an upgrade run again scans
        marked = {m: _timeless(store.collection(m[0]).get(m[1])) for m in MARKERS}
        assert all(marked.values()), marked  # every upgrade marked done at the open
        before = _everything(engine)
        with store.transaction():
            for coll, key in MARKERS:
                store.collection(coll).delete(key)
        # each upgrade's own scan, on the same store: nothing to write
        assert ResultLabels(engine.repository).backfill() == 0
        assert DeletedLabels(engine.repository).backfill() == 0
        assert booking_as_sent.backfill(engine.repository) == 0
        carried = carried_numbers.backfill(engine.repository, engine.audit)
        assert carried is not None and carried.written == [] and carried.audited == []
        assert backfill_final_at(store) == 0
        assert engine.recognition.rekey_once(engine.identity) == 0
        assert drop_unbilled_once(engine.recognition) == 0
        assert number_lines_once(engine.recognition) == 0  # (and the twenty-seventh round's money pass)
        assert report_days_once(engine.recognition) == 0
        assert purge_legacy_copies(engine.audit, engine.repository, VIEW_PROGRESS) == 0
        assert engine.identity.recover_merged_keys() == 0
        store.collection("mpi_meta").replace({"_id": MERGED_KEYS, **marked[("mpi_meta", MERGED_KEYS)]})
        assert {m: _timeless(store.collection(m[0]).get(m[1])) for m in MARKERS} == marked
        after = _everything(engine)
        assert {n: [_timeless(d) for d in docs] for n, docs in after.items()} == {
            n: [_timeless(d) for d in docs] for n, docs in before.items()}


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_created_is_said_of_the_open_that_made_the_store(backend_settings: Settings) -> None:
    first = open_store(backend_settings)
    assert first.created is True
    first.collection("x").replace({"_id": "a"})
    first.close()
    again = open_store(backend_settings)
    assert again.created is False
    again.close()


def test_a_mongo_database_with_collections_is_not_new(settings: Settings) -> None:
    import mongomock

    from engine.repository.mongo_store import MongoStore

    client = mongomock.MongoClient()
    assert MongoStore(client, "h").created is True
    client["h"]["anything"].insert_one({"_id": "a"})
    assert MongoStore(client, "h").created is False
