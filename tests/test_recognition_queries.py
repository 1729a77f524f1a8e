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


def count_calls(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> Counter[str]:
    """Count what the recognition service asks of its collections (the real calls still run)."""
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
                return _real(*args, **kwargs)

            monkeypatch.setattr(coll, op, spy)
    return calls


def test_a_12_obx_lab_report_costs_a_bounded_number_of_recognition_queries(
        engine: Engine, mllp: int, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_calls(monkeypatch, engine)
    per_message = []
    for n in (1, 1 + 499, 1 + 2 * 499):  # the same resident (bench ids repeat every 499): a repeat each time
        calls.clear()
        ack = mllp_send(mllp, oru_lab(n))
        assert "MSA|AA|" in ack, ack
        per_message.append(sum(calls.values()))
    # 13 results (the report and 12 Observations): their index entries in one query; the order's
    # candidates, and for each of the two recognition items (the blood count report, ALT) the
    # group and candidates of its test in one query (the blood count's: the order's, already
    # read), its entry, flag and the order's check row -- each row read by key once per message
    assert all(total <= 13 for total in per_message), (per_message, calls)
    assert calls["results.get"] == 0, calls  # the 13 entries: one query (results.find) for all
    assert calls["checks.get"] <= 2, calls
    assert calls["results.find"] <= 4, calls  # entries, the order's window, ALT's window, the patient's
