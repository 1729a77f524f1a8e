"""The ``final_at`` back-fill must not write an instant older than one the ingest wrote meanwhile.

The pass (``engine.recognition.upgrade``) reads a result's history outside any transaction and
writes afterwards; every ``--workers`` process runs it when it opens the store, so one restarting
while the others ingest runs it alongside them. HOSPA's blood count is final with no ``final_at``
(as an earlier release left it): the pass reads its history, the start of its latest run of final
versions (S1). Before it writes, another writer withdraws the result, HOSPB places its repeat
with R98 ("outside record not accessible", true: nothing final to read), and HOSPA sends it final
again (S2), the ingest writing ``final_at`` = S2. The pass must leave S2: with S1 written over it,
HOSPB's order (placed after S1) found R98 "contradicted by records" and the repeat not payable.

The interleaving is made deterministic by running the ingest (real MLLP socket, real store) from
the backend's ``history`` the first time the pass calls it -- after its read, before its write.
On both backends (SQLite, MongoDB through mongomock).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.recognition.upgrade import backfill_final_at, final_since
from engine.repository.port import StoredResource
from tests.test_hooks11_policy_edges import result, row_of
from tests.test_rec13_final_at_upgrade import R98, _as_an_earlier_release_left_it, _opened
from tests.test_recognition_policy_e2e import CBC, order, ts


def _after_first_read(real: Callable[[str, str], list[StoredResource]],
                      then: Callable[[], None]) -> Callable[[str, str], list[StoredResource]]:
    """The backend's own ``history``; ``then`` runs once, after the first read has returned."""
    done: list[bool] = []

    def history(rtype: str, rid: str) -> list[StoredResource]:
        versions = real(rtype, rid)
        if not done:
            done.append(True)
            then()
        return versions

    return history


@pytest.mark.parametrize("backend", [{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def test_an_ingest_between_the_backfills_read_and_write_keeps_its_final_at(
        tmp_path: Path, backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    with _opened(tmp_path, **backend) as (engine, hl7):
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
        hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F"))  # final at S1
        entry = _as_an_earlier_release_left_it(engine)  # final, no ``final_at``, no marker
        coll = engine.recognition.index.coll
        s1 = entry["final_at"]

        def another_worker_ingests() -> None:
            hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="W"))  # withdrawn
            hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))  # R98 true: nothing final
            hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F", control="-again"))  # final at S2

        monkeypatch.setattr(engine.store.fhir, "history",
                            _after_first_read(engine.store.fhir.history, another_worker_ingests))
        backfill_final_at(engine.store)
        monkeypatch.undo()

        after = coll.get(entry["_id"])
        placed = next(c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB")["placed"]
        assert after is not None and s1 < placed < after["final_at"], (s1, placed, after)
        hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
        row = row_of(engine, "HOSPB")
        assert row is not None and (row["status"], row["reason"], row["contradicted"]) == (
            "justified", "R98", None), row


@pytest.fixture(autouse=True)
def _no_engine_fixture() -> None:
    """These tests open their engines themselves."""


@pytest.mark.parametrize("backend", [{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def test_a_correction_between_the_read_and_the_write_still_gets_final_at(
        tmp_path: Path, backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrected version stored meanwhile continues the run of final versions: the ingest writes
    no ``final_at`` for it (final before, none then), so the pass, finding the resource at a newer
    version than it read, reads the history again under the write lock and writes S1 all the same."""
    with _opened(tmp_path, **backend) as (engine, hl7):
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
        hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F"))
        entry = _as_an_earlier_release_left_it(engine)
        coll = engine.recognition.index.coll
        rtype, _, rid = entry["_id"].partition("/")
        s1 = final_since(engine.store.fhir.history(rtype, rid))  # what the pass alone writes
        assert s1 is not None and entry["held"] < s1 <= entry["final_at"]

        def another_worker_corrects() -> None:
            hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="C"))
            assert not (coll.get(entry["_id"]) or {}).get("final_at")  # none written by the ingest

        monkeypatch.setattr(engine.store.fhir, "history",
                            _after_first_read(engine.store.fhir.history, another_worker_corrects))
        assert backfill_final_at(engine.store) == 1
        monkeypatch.undo()
        after = coll.get(entry["_id"])
        assert after is not None and after["final_at"] == s1, (s1, after)
