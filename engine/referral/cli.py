"""``huren referrals MONTH [--to MONTH]``: the month's referral counts and ratios per institution
and the remote reading turnaround per centre, on the command line (the figures of
``/reports/referrals`` and ``/reports/remote-reading``, read from the same rows).

Exit codes: 0 printed; 2 bad arguments (a month that is not ``YYYY-MM``, ``--to`` before it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine import fhirjson
from engine.errors import BadRequest
from engine.periods import month_range
from engine.referral.reading import reading_report
from engine.referral.report import referral_report


def add_commands(sub: Any) -> None:
    ref = sub.add_parser("referrals", help="a month's two-way referral counts and remote reading turnaround")
    ref.add_argument("month", help="YYYY-MM (the first month, with --to)")
    ref.add_argument("--to", dest="end", help="last month, inclusive (YYYY-MM); default: MONTH alone")
    ref.add_argument("--institution", help="only this institution (institutions.yaml `code`), as sender, "
                                           "receiver or reading centre")
    ref.add_argument("--format", choices=["text", "json"], default="text")
    ref.set_defaults(handler=run_referrals)


def run_referrals(args: argparse.Namespace, settings: Any) -> int:
    from engine.engine import Engine

    end = args.end or args.month
    for name, value in (("MONTH", args.month), ("--to", end)):
        try:
            month_range(value, name)
        except BadRequest as exc:
            print(f"huren referrals: {exc.diagnostics}", file=sys.stderr)
            return 2
    if end < args.month:
        print(f"huren referrals: --to {end} is before {args.month}", file=sys.stderr)
        return 2
    with Engine(settings) as engine:
        referrals = referral_report(engine.referrals.rows, start=args.month, end=end, institution=args.institution)
        reading = reading_report(engine.referrals.reading.rows, start=args.month, end=end, centre=args.institution)
    if args.format == "json":
        sys.stdout.write(fhirjson.dumps({"referrals": referrals, "remote_reading": reading}).decode() + "\n")
    else:
        sys.stdout.write(to_text(referrals, reading))
    return 0


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:g} h"


def to_text(referrals: dict[str, Any], reading: dict[str, Any]) -> str:
    period = referrals["from"] if referrals["from"] == referrals["to"] else f"{referrals['from']} – {referrals['to']}"
    lines = [f"Two-way referrals {period}: {referrals['referrals']}"]
    if referrals["rows"]:
        lines.append("  institution  month    sent up/down  received up/down  accepted rejected completed returned"
                     "  down/up completion return  deductible due")
    for r in referrals["rows"]:
        sent, got, ratios = r["sent"], r["received"], r["ratios"]
        lines.append(
            f"  {r['institution']:<11}  {r['month']}  {sent['upward']:>7}/{sent['downward']:<4}  "
            f"{got['upward']:>11}/{got['downward']:<4}  {r['accepted']:>8} {r['rejected']:>8} {r['completed']:>9} "
            f"{r['returned']:>8}  {_ratio(ratios['downward_to_upward']):>7} {_ratio(ratios['completion_rate']):>10} "
            f"{_ratio(ratios['return_rate']):>6}  CNY {r['deductible_due']}")
    lines.append(f"Remote reading {period}: {sum(r['requested'] for r in reading['rows'])} requested, "
                 f"{len(reading['overdue'])} overdue")
    for r in reading["rows"]:
        t = r["turnaround_hours"]
        kinds = ", ".join(f"{k} {n}" for k, n in r["by_kind"].items())
        lines.append(f"  {r['centre']:<11}  {r['month']}  requested {r['requested']}, reported {r['reported']}, "
                     f"pending {r['pending']}, overdue {r['overdue']}; turnaround median {_hours(t['median'])}, "
                     f"mean {_hours(t['mean'])}, max {_hours(t['max'])} ({kinds})")
    for o in reading["overdue"]:
        done = f"reported {o['reported']}" if o["reported"] else "not reported"
        lines.append(f"  overdue: {o['centre']} {o['kind']} {o['order']} requested {o['requested']} by "
                     f"{o['requester']}, due {o['due']}, {done}, {o['hours_late']:g} h late")
    return "\n".join(lines) + "\n"
