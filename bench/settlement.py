"""Settlement and indicator benchmark: settle a year of N stored charge lines, and compute a
month's indicators over them.

    python bench/settlement.py [--lines N] [--rounds R] [--years Y]

Stores N ChargeItems (three institutions of the demo community, both insurance types, dates over
the year plus 5 % in the next year, a few lines that cannot be settled) through the real repository on
SQLite, then runs ``settlement_report`` (what ``huren settle`` and ``GET /reports/settlement`` do:
read the stored ChargeItems page by page, keep the year's, read each line's money as Decimal, tally, settle
every budget) R times. Then N/10 inpatient Encounters (each line belongs to one) and the month's
indicators (``engine.insurance.indicators.indicators``: what ``GET /reports/indicators`` and
``huren indicators`` do: one pass over the charge lines, the admissions, the referral rows and the
duplicate tallies, eight MeasureReports and their alerts) R times. Prints the wall and CPU time
of each, the CPU time per charge line, and the load average (timings on a shared machine are noisy:
compare CPU per line).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import load_note  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.insurance import rules as settlement_rules  # noqa: E402
from engine.insurance.charges import FUND_SHARE_EXT, INSURANCE_TYPE_EXT  # noqa: E402
from engine.insurance.indicators import Period, indicators, scopes  # noqa: E402
from engine.insurance.settlement import settlement_report  # noqa: E402
from engine.settings import Settings  # noqa: E402

INSTITUTIONS = ("FNXRMYY", "FNZYY", "FNYLWSY")
LINES = 20000
RULES_FILE = ROOT / "mappings" / "insurance" / "settlement.yaml"


YEARS = 1


def line(n: int, year: int) -> dict[str, Any]:
    """Line ``n``: 5 % in the next year; with ``--years Y`` the rest spread over the Y years up to ``year``."""
    inst = INSTITUTIONS[n % 3]
    y = year + 1 if n % 20 == 19 else year - (n // 7) % YEARS
    day = f"{y}-{(n % 12) + 1:02d}-{(n % 28) + 1:02d}T{n % 24:02d}:15:00+08:00"
    amount = f"{(n % 997) + 10}.{n % 100:02d}"
    res: dict[str, Any] = {
        "resourceType": "ChargeItem", "id": f"bench-{n}", "status": "billed" if n % 50 else "not-billable",
        "code": {"coding": [{"system": "urn:huren:code:price", "code": f"{110200000 + n % 300}"}]},
        "subject": {"reference": f"Patient/p{n % 5000}"}, "occurrenceDateTime": day,
        "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": inst}},
        "priceOverride": {"value": float(amount), "currency": "CNY"},
        "extension": [{"url": INSURANCE_TYPE_EXT, "valueCode": "employee" if n % 3 else "resident"}],
    }
    res["context"] = {"reference": f"Encounter/bench-stay-{n % max(1, LINES // 10)}"}
    if n % 97:
        share = round(float(amount) * 0.7, 2)
        res["extension"].append({"url": FUND_SHARE_EXT, "valueMoney": {"value": share, "currency": "CNY"}})
    return res


def stay(n: int, year: int) -> dict[str, Any]:
    month = (n % 12) + 1
    return {"resourceType": "Encounter", "id": f"bench-stay-{n}", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": f"Patient/p{n % 5000}"},
            "period": {"start": f"{year}-{month:02d}-01T09:00:00+08:00", "end": f"{year}-{month:02d}-{(n % 27) + 2:02d}T10:00:00+08:00"},
            "serviceProvider": {"identifier": {"system": "urn:huren:institution", "value": INSTITUTIONS[n % 3]}}}


def timed(rounds: int, run: Any) -> tuple[float, float, Any]:
    walls, cpus, out = [], [], None
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        out = run()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    global LINES, YEARS
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--years", type=int, default=1, help="spread the lines over this many years (the store's history)")
    ap.add_argument("--quick", action="store_true", help="small counts (CI / make bench)")
    args = ap.parse_args()
    if args.quick:
        args.lines, args.rounds = min(args.lines, 2000), 1
    LINES, YEARS = args.lines, max(1, args.years)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site" / "insurance"
        site.mkdir(parents=True)
        text = RULES_FILE.read_text("utf-8")
        marker = "# fund_pays: required — the reform text's figure for overspend below 5 %"
        (site / "settlement.yaml").write_text(text.replace(marker, "fund_pays: 0.70"), "utf-8")
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0, site=site.parent)
        with Engine(settings) as engine:
            t0 = time.perf_counter()
            batch: list[dict[str, Any]] = []
            for n in range(args.lines):
                batch.append(line(n, 2026))
                if len(batch) == 500:
                    engine.repository.write_many(batch)
                    batch.clear()
            if batch:
                engine.repository.write_many(batch)
            print(f"stored {args.lines} ChargeItems in {time.perf_counter() - t0:.1f} s")
            rules = settlement_rules.load(settings.site)
            wall, cpu, report = timed(args.rounds, lambda: settlement_report(engine.repository, engine.site, rules, 2026))
            counted = report["charges"]["counted"]
            excluded = sum(e["lines"] for e in report["charges"]["excluded"])
            print(f"settled 2026: {counted} lines counted, {excluded} not counted (of {args.lines} stored)")
            print(f"settlement: wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms "
                  f"(median of {args.rounds}); CPU per stored line {cpu / args.lines * 1e6:.1f} µs")

            stays = [stay(n, 2026) for n in range(max(1, args.lines // 10))]
            for i in range(0, len(stays), 500):
                engine.repository.write_many(stays[i:i + 500])
            scope = scopes(engine.site)
            wall, cpu, (reports, flags) = timed(args.rounds, lambda: indicators(engine, Period.month("2026-03"), scope))
            cost = next(r for r in reports if r["measure"].endswith("per-admission-cost"))
            print(f"indicators 2026-03: {len(reports)} MeasureReports, {sum(f['status'] == 'active' for f in flags)} alerts; "
                  f"{cost['group'][0]['population'][0]['count']} admissions discharged in March")
            print(f"indicators: wall {wall * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms (median of {args.rounds}); "
                  f"CPU per stored line {cpu / args.lines * 1e6:.1f} µs ({len(stays)} Encounters stored)")
    print(load_note())


if __name__ == "__main__":
    main()
