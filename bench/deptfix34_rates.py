"""The recognition rate by department over a store of several years' per-day tallies (deptfix34).

    python bench/deptfix34_rates.py              # two years: 3 institutions x 120 tallies a day
    python bench/deptfix34_rates.py --days 1825  # five years

deptfix34 names a ward no ward table lists by the first PL-9 name stored for its code (its label the same
in any period): one indexed query per such ward a report shows (``reports.first_ward_name``). This fills
``recognition_check_days`` straight (SQLite, in bulk) with tallies spread over wards (half sent with PL-9's
name), doctors, items and outcomes, then times ``recognition_rates`` (the four breakdowns the API asks for)
for one month and for the whole store, and with the department left out (no ward is then named). Prints its
figures; asserts nothing. Run it from a checkout before deptfix34 (``git archive``) for the figures before.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.engine import Engine  # noqa: E402
from engine.recognition.reports import ReportFilter, recognition_rates  # noqa: E402
from engine.settings import Settings  # noqa: E402

INSTITUTIONS = ["FNXRMYY", "FNZYY", "FNYLWSY"]
END = date(2026, 6, 30)


def fill(engine: Engine, days: int, per_day: int, rng: random.Random) -> int:
    items = list(engine.recognition.rules.items)
    wards = [f"W{n:02d}" for n in range(20)]
    rows: dict[str, dict] = {}
    for d in range(days):
        day = (END - timedelta(days=d)).isoformat()
        for inst in INSTITUTIONS:
            for _ in range(per_day):
                ward = rng.choice(wards)
                dept = f"dept|{ward}|{ward}病区" if int(ward[1:]) % 2 else f"dept|{ward}|"
                item, outcome, doctor = rng.choice(items), rng.choice(["recognised", "duplicate", "pending"]), \
                    f"医生{rng.randrange(40)}"
                key = "|".join((day, inst, item, outcome, dept, doctor))
                row = rows.setdefault(key, {"_id": key, "day": day, "inst": inst, "item": item, "category": "检验",
                                            "outcome": outcome, "dept": dept, "doctor": doctor, "count": 0,
                                            "money": "0.00"})
                row["count"] += 1
    docs = list(rows.values())
    for start in range(0, len(docs), 20000):
        engine.recognition.check_days.insert_many(docs[start:start + 20000])
    return len(docs)


def timed(fn: object, runs: int = 3) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of ``runs`` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--per-day", type=int, default=120, help="tallies a day per institution (before merging)")
    args = ap.parse_args()
    rng = random.Random(34)
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        n = fill(engine, args.days, args.per_day, rng)
        month = ReportFilter(start=date(2026, 5, 1), end=date(2026, 5, 31))
        rec = engine.recognition
        print(f"{n:,} tallies over {args.days} days")
        for label, flt, dims in (("month, four breakdowns", month, ("inst", "dept", "doctor", "month")),
                                 ("month, no department", month, ("inst", "doctor", "month")),
                                 ("whole store, four breakdowns", ReportFilter(), ("inst", "dept", "doctor", "month"))):
            wall, cpu = timed(lambda flt=flt, dims=dims: recognition_rates(rec, flt, dims))
            print(f"recognition_rates, {label}: {wall:.3f} s wall, {cpu:.3f} s CPU (best of 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
