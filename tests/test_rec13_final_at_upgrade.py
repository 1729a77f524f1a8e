"""An index entry an earlier release stored without ``final_at`` gets it once, when the store is
opened, so that R98 on an upgraded store asks what huren held *final* when the order was placed.

HOSPA's blood count reached huren preliminary, HOSPB placed its repeat with R98 ("outside record
not accessible"), and only then was HOSPA's result sent final. A release before the twelfth round
kept only when the entry was first stored (``held``, the preliminary's arrival): on an upgraded
store HOSPB's result, decided after the upgrade, found R98 "contradicted by records" and the repeat
not payable, though nothing recognisable existed when it was ordered. The old layout is made the way
that release left it (the entry without ``final_at``, no upgrade marker); the store is closed and
opened again, and the order's result goes over a real MLLP socket. The same pass on MongoDB
(mongomock), run again, writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.recognition.upgrade import FINAL_AT, LAYOUT, backfill_final_at
from engine.settings import Settings
from tests.conftest import running_mllp
from tests.test_hooks11_policy_edges import result, row_of
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, INSTITUTIONS, order, ts

R98 = "R98^外院结果无法调阅^urn:huren:recognition-reason"


@contextmanager
def _opened(tmp_path: Path, **kw: str) -> Iterator[tuple[Engine, Sender]]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **kw)) as eng, \
            running_mllp(eng) as port:
        yield eng, Sender(port)


def _prior_final_after_the_order(hl7: Sender) -> None:
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="P"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R98))
    hl7.send(result("HOSPA", "A1", CBC, ts(5, 10), status="F"))  # final after the order was placed


def _as_an_earlier_release_left_it(engine: Engine) -> dict:
    """The prior's entry without ``final_at`` and the store never upgraded; the entry as it was."""
    coll = engine.recognition.index.coll
    [entry] = [e for e in coll.find({}) if e["inst"] == "HOSPA" and e["_id"].startswith("DiagnosticReport/")]
    assert entry["held"] < entry["final_at"], entry
    with engine.store.transaction():
        coll.replace({k: v for k, v in entry.items() if k != "final_at"})
        engine.store.collection(LAYOUT).delete(FINAL_AT)
    return entry


def test_an_upgraded_store_decides_r98_on_when_the_prior_became_final(tmp_path: Path) -> None:
    with _opened(tmp_path) as (engine, hl7):
        _prior_final_after_the_order(hl7)
        entry = _as_an_earlier_release_left_it(engine)
    with _opened(tmp_path) as (engine, hl7):
        [again] = [e for e in engine.recognition.index.coll.find({}) if e["_id"] == entry["_id"]]
        # the final version's meta.lastUpdated: the same write group, moments before its hook
        placed = next(c for c in engine.recognition.checks.find({}) if c["inst"] == "HOSPB")["placed"]
        assert entry["held"] < placed < again.get("final_at", "") <= entry["final_at"], (again, placed)
        hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
        row = row_of(engine, "HOSPB")
        assert row is not None and (row["status"], row["reason"], row["contradicted"]) == (
            "justified", "R98", None), row


def test_the_pass_runs_once_and_leaves_entries_final_from_the_first_version(tmp_path: Path) -> None:
    with _opened(tmp_path, mongodb_uri="mongomock://") as (engine, hl7):
        _prior_final_after_the_order(hl7)
        hl7.send(order("HOSPC", "C1", CBC, ts(4)))
        hl7.send(result("HOSPC", "C1", CBC, ts(4, 10)))  # final when first stored: nothing to add
        entry = _as_an_earlier_release_left_it(engine)
        before = {e["_id"]: e for e in engine.recognition.index.coll.find({})}
        assert backfill_final_at(engine.store) == 1
        after = {e["_id"]: e for e in engine.recognition.index.coll.find({})}
        assert entry["held"] < after[entry["_id"]]["final_at"] <= entry["final_at"]
        assert {k: v for k, v in after.items() if k != entry["_id"]} == {
            k: v for k, v in before.items() if k != entry["_id"]}
        assert backfill_final_at(engine.store) is None  # once per store
        engine.store.collection(LAYOUT).delete(FINAL_AT)
        assert backfill_final_at(engine.store) == 0  # and, run again, nothing left to write
        assert {e["_id"]: e for e in engine.recognition.index.coll.find({})} == after


@pytest.fixture(autouse=True)
def _no_engine_fixture() -> None:
    """These tests open their engines themselves (closed and opened again on one data dir)."""
