"""The recognition hook's store traffic for a lab report is bounded: a 12-OBX ORU^R01 sent over
MLLP touches the recognition store a fixed number of times per recognition item, and the index
entries of all its results (kept, replaced, or dropped when one no longer is one) are read in one
query. What is counted is what reaches the collections, beneath the per-message memo.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from tests.conftest import mllp_send

OPERATIONS = ("get", "find", "replace", "update", "delete", "insert", "insert_many")


def count_calls(monkeypatch: pytest.MonkeyPatch, engine: Engine, filters: list[Any] | None = None) -> Counter[str]:
    """Count what the recognition service asks of its collections (the real calls still run);
    ``filters`` gets the filter of every ``find`` of the index."""
    calls: Counter[str] = Counter()
    rec = engine.recognition
    for name, coll in (("results", rec.index.coll), ("checks", rec.checks.coll), ("flags", rec.flags.coll),
                       ("charges", rec.charges), ("flag_days", rec.flag_days), ("check_days", rec.check_days)):
        for op in OPERATIONS:
            real = getattr(coll, op, None)
            if real is None:
                continue

            def spy(*args: Any, _real: Callable[..., Any] = real, _key: str = f"{name}.{op}", **kwargs: Any) -> Any:
                calls[_key] += 1
                if _key == "results.find" and filters is not None:
                    filters.append(args[0] if args else kwargs.get("filter"))
                return _real(*args, **kwargs)

            monkeypatch.setattr(coll, op, spy)
    return calls


def test_a_12_obx_lab_report_costs_a_bounded_number_of_recognition_queries(
        engine: Engine, mllp: int, monkeypatch: pytest.MonkeyPatch) -> None:
    filters: list[Any] = []
    calls = count_calls(monkeypatch, engine, filters)
    per_message = []
    check_gets = []
    for n in (1, 1 + 499, 1 + 2 * 499):  # the same resident (bench ids repeat every 499): a repeat each time
        calls.clear()
        filters.clear()
        ack = mllp_send(mllp, oru_lab(n))
        assert "MSA|AA|" in ack, ack
        per_message.append(sum(calls.values()))
        check_gets.append(calls["checks.get"] + calls["checks.find"])
    # 13 results (the report and 12 Observations), each a first version: no entry to read; the
    # order's candidates, and for each of the two recognition items (the blood count report, ALT)
    # the group and candidates of its test, all in one query; each item's entry and flag; the
    # order's check row read once and written once (its outcome with it), its day's tally moved
    # once -- each row read by key once per message (a batch of one: see test_recognition_batch.py
    # for the calls of a batch of many)
    assert all(total <= 10 for total in per_message), (per_message, calls)
    assert calls["results.get"] == 0, calls
    assert not any("_id" in (f or {}) for f in filters), filters  # nor asked for in one query
    assert calls["results.find"] <= 2, calls  # the order's and ALT's windows together, the patient's
    # the order's check row; and the bench's returning resident has the same blood count at the same
    # institution on the same day again -- one test fulfilling one more order each time, whose
    # check row is read for its day and outcome (each order of a test decided, recog12): the
    # other orders' rows in one query
    assert all(gets <= 2 + min(k, 1) for k, gets in enumerate(check_gets)), (check_gets, calls)
    assert calls["checks.replace"] <= 1 and calls["check_days.replace"] <= 1, calls


def test_a_corrected_result_reads_its_entries_in_one_query(engine: Engine, mllp: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Later versions of results (two observations corrected) have entries to replace: they are
    read in one query, never one by one."""
    assert "MSA|AA|" in mllp_send(mllp, oru_lab(7))
    filters: list[Any] = []
    calls = count_calls(monkeypatch, engine, filters)
    corrected = (oru_lab(7).replace(b"|6.2|", b"|6.3|").replace(b"|25|", b"|26|")  # WBC and ALT
                 .replace(b"LAB000000007|P|", b"LAB000000007C|P|"))
    assert "MSA|AA|" in mllp_send(mllp, corrected)
    assert calls["results.get"] == 0, calls
    assert sum(1 for f in filters if "_id" in (f or {})) == 1, filters
