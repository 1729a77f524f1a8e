"""wardlink38: a ward at a facility no member's code names, keyed by its Location's id.

1. ``FactReader._visit_ward`` for such a ward (no manager, PL-4 WAIYUAN), CPU a call, read from a dict
   (dept37's bench set-up): before, ``dept@|NEI|<name>``; now ``dept@~<ward id>|NEI|<name>``.
2. The auditors' rate by department (``recognition_rates``) over ``wards`` outside wards' tallies (two names
   each: a renamed ward) in the real SQLite store: CPU a report, and the store reads the namer makes for them
   (now one ``read_many`` of their Locations and one latest-tally scan each whose Location is not stored).
Runs on any tree with dept37's bench (main's too: ``git archive main | tar -x -C DIR``). Asserts nothing.

    .venv/bin/python bench/wardlink38_wards.py [calls] [wards]"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dept37_visit_ward import MEMBERS, STORE, _chain, _visit  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.recognition.facts import FactReader  # noqa: E402
from engine.recognition.reports import ReportFilter, recognition_rates  # noqa: E402
from engine.settings import Settings  # noqa: E402


def visit_ward(calls: int) -> None:
    store = {**STORE, **_chain("WAIYUAN", False)}
    rules = SimpleNamespace(institutions=dict.fromkeys(MEMBERS))
    reader = FactReader(lambda t, i: store.get((t, i)), lambda: rules)  # type: ignore[arg-type,return-value]
    visit = _visit("WAIYUAN")
    print(f"outside ward: {reader._visit_ward(visit)}")
    start = time.process_time()
    for _ in range(calls):
        reader._visit_ward(visit)
    print(f"  {calls} calls: {(time.process_time() - start) / calls * 1e6:.2f} us CPU a call")


def rates(wards: int, located: bool) -> None:
    """``located``: the wards' Locations are stored (as the converter stores them): named by one read."""
    new_form = "OUTSIDE_AT" in vars(__import__("engine.wards", fromlist=["x"]))
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        rec = engine.recognition
        rows = []
        for w in range(wards):
            at = f"~wl38-ward-{w}" if new_form else ""
            for n, name in enumerate((f"外院{w}科", f"外院{w}病区")):
                rows.append({"_id": f"wl38-{w}-{n}", "dept": f"dept@{at}|W{w}|{name}", "inst": "FNXRMYY",
                             "day": f"2025-03-{10 + n}", "item": "CBC", "outcome": "recognised", "count": 1})
            if located:
                engine.repository.update({"resourceType": "Location", "id": f"wl38-ward-{w}", "status": "active",
                                          "name": f"外院{w}病区", "alias": [f"W{w}"]})
        rec.check_days.insert_many(rows)
        flt = ReportFilter()
        recognition_rates(rec, flt, ("dept",))  # warm
        start = time.process_time()
        for _ in range(5):
            out = recognition_rates(rec, flt, ("dept",))["dept"]
        took = (time.process_time() - start) / 5
    print(f"rate by department over {wards} outside wards ({2 * wards} tallies, {len(out)} rows, Locations "
          f"{'stored' if located else 'not stored'}): "
          f"{took * 1e3:.1f} ms CPU a report")


if __name__ == "__main__":
    visit_ward(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    for located in (True, False):
        rates(int(sys.argv[2]) if len(sys.argv) > 2 else 200, located)
