"""The recognition rate by department when the wards' Locations are stored (wardfix35).

    python bench/wardfix35_rates.py              # two years: 3 institutions x 120 tallies a day
    python bench/wardfix35_rates.py --days 1825  # five years

wardfix35 names a ward no ward table lists by its ward Location's current name (``engine.wards.ward_name``):
one read of the report's wards' Locations (``current_ward_names``), where deptfix34 made one indexed query of
the tallies per ward (its first PL-9 name). ``bench/deptfix34_rates.py`` stores no Location (every ward then
falls back to its latest named tally, one query each); this one fills the same tallies (its ``fill``) and
stores each ward's Location the real way -- an A01 per institution and ward through the ingestor, half the
wards named by PL-9 -- then times ``recognition_rates`` (the four breakdowns) for one month and for the whole
store. Prints its figures; asserts nothing. Run it from a checkout before wardfix35 (``git archive``) for the
figures before.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.deptfix34_rates import INSTITUTIONS, fill, timed  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.recognition.reports import ReportFilter, recognition_rates  # noqa: E402
from engine.settings import Settings  # noqa: E402


def _admission(inst: str, n: int) -> bytes:
    ward = f"W{n:02d}"
    pl = f"{ward}^101^01^^^^^^{ward}病区" if n % 2 else f"{ward}^101^01"
    pv1 = ["PV1", "1", "I", pl] + [""] * 15 + [f"WB35V{inst}{n}"]
    return ("\r".join([
        f"MSH|^~\\&|HIS|{inst}|HUREN|FNYGT|20260601080000||ADT^A01^ADT_A01|WB35-{inst}-{n}|P|2.5.1",
        "EVN|A01|20260601080000",
        f"PID|1||WB35P{inst}{n}^^^{inst}^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r").encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--per-day", type=int, default=120, help="tallies a day per institution (before merging)")
    args = ap.parse_args()
    rng = random.Random(34)
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as engine:
        n = fill(engine, args.days, args.per_day, rng)
        for inst in INSTITUTIONS:
            for ward in range(20):
                ack = engine.ingestor.handle(_admission(inst, ward), channel="file", peer="file:bench")
                assert b"MSA|AA" in ack, ack
        month = ReportFilter(start=date(2026, 5, 1), end=date(2026, 5, 31))
        rec = engine.recognition
        print(f"{n:,} tallies over {args.days} days, 60 ward Locations stored")
        for label, flt in (("month, four breakdowns", month), ("whole store, four breakdowns", ReportFilter())):
            wall, cpu = timed(lambda flt=flt: recognition_rates(rec, flt, ("inst", "dept", "doctor", "month")))
            print(f"recognition_rates, {label}: {wall:.3f} s wall, {cpu:.3f} s CPU (best of 3)")
        labels = sorted(k for k in recognition_rates(rec, month, ("dept",))["dept"] if "W0" in k)[:4]
        print("labels, e.g.:", ", ".join(labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
