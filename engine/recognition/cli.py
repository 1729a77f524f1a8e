"""``huren report duplicates``: the auditors' report on the command line (same figures as the API)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from engine import fhirjson
from engine.errors import FhirError
from engine.periods import parse_day
from engine.recognition.qc import QcImportError, QcRecord, merge, parse_import
from engine.recognition.reports import STATUSES, ReportFilter, duplicates_report, to_csv, to_text
from engine.recognition.rules import load_rules, rule_folders
from mappings.sitefiles import RulesError, find_file, read_yaml


def add_qc_commands(sub: Any) -> None:
    qc = sub.add_parser("qc", help="quality-control (室间质评) results used by mutual recognition")
    verbs = qc.add_subparsers(dest="qc", required=True)
    imp = verbs.add_parser("import", help="import external quality assessment results (CSV or JSON) into the "
                                          "site's qc.yaml")
    imp.add_argument("file", type=Path, help="CSV with a header row, or JSON: institution, item, passed, from, until, "
                                             "hr (optional), source (optional)")
    imp.add_argument("--dry-run", action="store_true", help="check and show what would change, write nothing")
    imp.set_defaults(handler=run_qc_import)


def run_qc_import(args: argparse.Namespace, settings: Any) -> int:
    """Merge the file's periods into the site's qc.yaml (a result replaces the one for the same
    institution, item and start), check the whole rule set with it, then write it."""
    site = getattr(settings, "site", None)
    if site is None:
        print("huren qc import: set HUREN_SITE: results go into the site's qc.yaml, never the shipped defaults",
              file=sys.stderr)
        return 2
    try:
        imported = parse_import(args.file)
    except (OSError, QcImportError) as exc:
        print(f"huren qc import: {exc}", file=sys.stderr)
        return 1
    folders = rule_folders(Path(site))
    target = (Path(site) / "recognition" if (Path(site) / "recognition").is_dir() else Path(site)) / "qc.yaml"
    try:
        current = read_yaml(find_file("qc.yaml", folders)).data or []
        existing = [QcRecord(r["institution"], r["item"], bool(r["passed"]), date.fromisoformat(r["from"]),
                             date.fromisoformat(r["until"]), tuple(r.get("hr") or ()), r.get("source", ""))
                    for r in current]
        merged = merge(existing, imported)
        text = QC_HEADER + "".join(  # one period per line, as in the shipped qc.yaml
            "- " + yaml.safe_dump(r.as_yaml_row(), allow_unicode=True, sort_keys=False, default_flow_style=True,
                                  width=10_000).strip() + "\n" for r in merged)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "qc.yaml").write_text(text, "utf-8")
            from engine.engine import Engine  # the institutions in force, for the cross-checks

            with Engine(settings) as engine:
                known = set(engine.site.institutions)
                load_rules([*folders, Path(tmp)], engine.recognition.rules.institutions)
    except (RulesError, KeyError, ValueError) as exc:
        print(f"huren qc import: {exc}", file=sys.stderr)
        return 1
    unknown = sorted({r.institution for r in imported} - known)
    if unknown:
        print(f"huren qc import: warning: not in institutions.yaml: {', '.join(unknown)}", file=sys.stderr)
    print(f"{len(imported)} results read from {args.file}; {target} would hold {len(merged)} periods"
          if args.dry_run else f"{len(imported)} results imported into {target} ({len(merged)} periods); "
          "a running server picks them up on SIGHUP or POST /admin/reload")
    if not args.dry_run:
        target.write_text(text, "utf-8")
    return 0


QC_HEADER = """\
# Quality-control periods per institution and item (室间质评 / external quality assessment),
# maintained with `huren qc import FILE`: institution, item (or "all"), passed, from/until (inclusive),
# hr (HR scopes beyond the community), source.
"""


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
    from engine.api.ui_words import site_names
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
        names = site_names(engine) if args.format == "csv" else {}
    if args.format == "json":
        sys.stdout.write(fhirjson.dumps(report, indent=True).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(to_csv(report, names))
    else:
        sys.stdout.write(to_text(report))
    return 0
