"""``huren settle YEAR``: the year's budget settlement on the command line (the API's figures).

Exit codes: 0 settled; 1 the settlement rules cannot be used (the error names file, line and
field) or name no budget for the year; 2 bad arguments.

``huren deductions list INSTITUTION YYYY-MM`` writes the month's deduction list (a signed Bundle,
or CSV); ``huren deductions verify FILE --public-key KEY.pem`` checks a list's signature offline
(exit 0 valid, 1 not).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine import fhirjson
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.errors import FhirError
from engine.insurance import rules as settlement_rules
from engine.insurance.charges import site_zone
from engine.insurance.deductions import deduction_list, sign_bundle, to_bundle, to_csv, verify_bundle
from engine.insurance.settlement import settlement_report, to_text
from engine.insurance.split_admissions import load_rule, split_admissions
from engine.periods import parse_day
from mappings.site import SiteError


def add_commands(sub: Any) -> None:
    settle = sub.add_parser("settle", help="the year's community budget settlement from the stored charges")
    settle.add_argument("year", type=int, help="settlement year, e.g. 2026")
    settle.add_argument("--community", help="only this medical community (institutions.yaml `community`)")
    settle.add_argument("--format", choices=["text", "json"], default="text")
    settle.set_defaults(handler=run_settle)

    ded = sub.add_parser("deductions", help="monthly deduction lists (扣款清单): make one, or verify a signed one")
    kinds = ded.add_subparsers(dest="deductions", required=True)
    make = kinds.add_parser("list", help="an institution's upheld duplicate tests of a month, as CSV or a signed Bundle")
    make.add_argument("institution", help="institution code (institutions.yaml `code`)")
    make.add_argument("month", help="YYYY-MM")
    make.add_argument("--format", choices=["csv", "bundle"], default="bundle")
    make.add_argument("--out", help="write to this file instead of standard output")
    make.set_defaults(handler=run_deductions)
    check = kinds.add_parser("verify", help="check a deduction list Bundle's signature (offline with --public-key)")
    check.add_argument("file", help="the Bundle JSON file")
    check.add_argument("--public-key", action="append", default=[],
                       help="PEM of the audit public key (from /audit/public-key); repeat for several; "
                            "default: this server's keys")
    check.set_defaults(handler=run_verify)

    ind = sub.add_parser("indicators", help="the month's indicators (MeasureReports) and threshold alerts (Flags)")
    ind.add_argument("month", help="YYYY-MM")
    ind.add_argument("--community", help="only this medical community")
    ind.add_argument("--institution", help="only this institution")
    ind.add_argument("--publish", action="store_true",
                     help="store the MeasureReports and alerts (re-running a month replaces its reports and retires "
                          "alerts no longer crossed)")
    ind.add_argument("--format", choices=["text", "json"], default="text")
    ind.set_defaults(handler=run_indicators)

    split = sub.add_parser("split-admissions", help="suspected split admissions (分解住院) in a period")
    split.add_argument("--from", dest="start", required=True, help="first admission day (YYYY-MM-DD)")
    split.add_argument("--to", dest="end", required=True, help="last admission day, inclusive")
    split.add_argument("--format", choices=["text", "json"], default="text")
    split.set_defaults(handler=run_split)


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


def run_deductions(args: argparse.Namespace, settings: Any) -> int:
    from engine.api.ui_words import site_names
    from engine.engine import Engine

    with Engine(settings) as engine:
        try:
            dl = deduction_list(engine.recognition, engine.repository, args.institution, args.month)
        except FhirError as exc:
            print(f"huren deductions: {exc.diagnostics}", file=sys.stderr)
            return 2
        if args.format == "csv":
            data = to_csv(dl, site_names(engine)).encode("utf-8")
        else:
            data = sign_bundle(to_bundle(dl, engine.repository, settings.fhir_base_url, site_names(engine)),
                               engine.audit.keys)
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(data)
        print(f"{len(dl.rows)} deductions, {dl.currency} {dl.total:.2f}: {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def run_verify(args: argparse.Namespace, settings: Any) -> int:
    try:
        with open(args.file, "rb") as fh:
            data = fh.read()
        if args.public_key:
            pems = []
            for path in args.public_key:
                with open(path, "rb") as fh:
                    pems.append(fh.read())
            keys = AuditKeys.from_public_pems(KEY_NAME, pems)
        else:
            keys = AuditKeys.load(settings, create=False)
        ok = verify_bundle(data, keys)
    except (OSError, ValueError) as exc:
        print(f"huren deductions verify: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: {'signature valid' if ok else 'SIGNATURE INVALID: the list was altered or not signed by these keys'}")
    return 0 if ok else 1


def run_indicators(args: argparse.Namespace, settings: Any) -> int:
    from engine.engine import Engine
    from engine.insurance.indicators import Period, indicators, publish, scopes, to_text

    with Engine(settings) as engine:
        try:
            period = Period.month(args.month)
            scope = scopes(engine.site, community=args.community, institution=args.institution)
            reports, flags = indicators(engine, period, scope)
        except SiteError as exc:
            print(f"huren indicators: {exc}", file=sys.stderr)
            return 1
        except FhirError as exc:
            print(f"huren indicators: {exc.diagnostics}", file=sys.stderr)
            return 2
        if args.publish:
            stored, active = publish(engine, reports, flags)
            print(f"published {stored} MeasureReports, {active} active alerts", file=sys.stderr)
    if args.format == "json":
        active_flags = [f for f in flags if f["status"] == "active"]
        sys.stdout.write(fhirjson.dumps({"reports": reports, "alerts": active_flags}).decode() + "\n")
    else:
        sys.stdout.write(to_text(reports, flags))
    return 0


def run_split(args: argparse.Namespace, settings: Any) -> int:
    from engine.engine import Engine

    try:
        rule = load_rule(settings.site)
        start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    except SiteError as exc:
        print(f"huren split-admissions: rule: {exc}", file=sys.stderr)
        return 1
    except FhirError as exc:
        print(f"huren split-admissions: {exc.diagnostics}", file=sys.stderr)
        return 2
    with Engine(settings) as engine:
        try:
            report = split_admissions(engine.repository, engine.identity, rule, start, end,
                                          site_zone(engine.site))
        except FhirError as exc:
            print(f"huren split-admissions: {exc.diagnostics}", file=sys.stderr)
            return 2
    if args.format == "json":
        sys.stdout.write(fhirjson.dumps(report).decode() + "\n")
        return 0
    r = report["rule"]
    print(f"Suspected split admissions {report['from']} – {report['to']}: {report['count']} "
          f"(readmitted within {r['window_days']} days for the same condition; {r['file']})")
    for p in report["pairs"]:
        a, b = p["first"], p["readmission"]
        print(f"  {a['patient']}: {a['institution']} {a['admitted']}–{a['discharged']} {a['encounter']} → "
              f"{b['institution']} {b['admitted']} {b['encounter']}  gap {p['gap_days']} d  {', '.join(p['conditions'])}")
    return 0
