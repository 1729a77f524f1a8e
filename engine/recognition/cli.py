"""``huren report duplicates``: the auditors' report on the command line (same figures as the API)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from engine.errors import FhirError
from engine.recognition.reports import STATUSES, ReportFilter, duplicates_report, to_csv, to_text
from engine.recognition.service import parse_day
from mappings.sitefiles import RulesError


def add_report_commands(sub: Any) -> None:
    report = sub.add_parser("report", help="reports for auditors")
    kinds = report.add_subparsers(dest="report", required=True)
    dup = kinds.add_parser("duplicates", help="suspected duplicate tests: flags, money at stake, recognition rate")
    dup.add_argument("--from", dest="start", help="first day (YYYY-MM-DD) of the repeated tests")
    dup.add_argument("--to", dest="end", help="last day (YYYY-MM-DD), inclusive")
    dup.add_argument("--institution", help="repeating institution code")
    dup.add_argument("--item", help="recognition item code")
    dup.add_argument("--category", choices=["检验", "检查"])
    dup.add_argument("--status", choices=list(STATUSES))
    dup.add_argument("--format", choices=["text", "json", "csv"], default="text")
    dup.add_argument("--rows", type=int, default=50, help="rows to list in text and JSON (CSV lists all)")
    dup.set_defaults(handler=run_duplicates)


def run_duplicates(args: argparse.Namespace, settings: Any) -> int:
    from engine.engine import Engine

    try:
        flt = ReportFilter(start=parse_day(args.start, "--from"), end=parse_day(args.end, "--to"),
                           institution=args.institution, item=args.item, category=args.category, status=args.status)
    except FhirError as exc:
        print(f"huren report duplicates: {exc.diagnostics}", file=sys.stderr)
        return 2
    try:
        engine = Engine(settings)
    except RulesError as exc:
        print(f"huren: recognition rules: {exc}", file=sys.stderr)
        return 1
    with engine:
        report = duplicates_report(engine.recognition, flt, limit=None if args.format == "csv" else args.rows)
    if args.format == "json":
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(to_csv(report))
    else:
        sys.stdout.write(to_text(report))
    return 0
