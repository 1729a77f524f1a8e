"""``huren settle YEAR``: the year's budget settlement on the command line (the API's figures).

Exit codes: 0 settled; 1 the settlement rules cannot be used (the error names file, line and
field) or name no budget for the year; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine import fhirjson
from engine.errors import FhirError
from engine.insurance import rules as settlement_rules
from engine.insurance.settlement import settlement_report, to_text
from mappings.site import SiteError


def add_commands(sub: Any) -> None:
    settle = sub.add_parser("settle", help="the year's community budget settlement from the stored charges")
    settle.add_argument("year", type=int, help="settlement year, e.g. 2026")
    settle.add_argument("--community", help="only this medical community (institutions.yaml `community`)")
    settle.add_argument("--format", choices=["text", "json"], default="text")
    settle.set_defaults(handler=run_settle)


def run_settle(args: argparse.Namespace, settings: Any) -> int:
    from engine.engine import Engine

    if not 1900 <= args.year <= 9999:
        print(f"huren settle: {args.year} is not a year", file=sys.stderr)
        return 2
    try:
        rules = settlement_rules.load(settings.site)
    except SiteError as exc:
        print(f"huren settle: settlement rules: {exc}", file=sys.stderr)
        return 1
    with Engine(settings) as engine:
        try:
            report = settlement_report(engine.repository, engine.site, rules, args.year, args.community)
        except FhirError as exc:
            print(f"huren settle: {exc.diagnostics}", file=sys.stderr)
            return 1
    if args.format == "json":
        sys.stdout.write(fhirjson.dumps(report).decode() + "\n")
    else:
        sys.stdout.write(to_text(report))
    return 0
