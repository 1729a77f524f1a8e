"""The ``huren`` command: serve, replay, quarantine, client, keys, staff, audit, report, settle, referrals."""

from __future__ import annotations

import argparse
import sys

from adapters.listeners import cli as ingest_cli
from engine.audit.cli import add_audit_commands
from engine.auth import cli as auth_cli
from engine.auth import staff_cli
from engine.identity import cli as identity_cli
from engine.insurance import cli as insurance_cli
from engine.recognition.cli import add_qc_commands, add_report_commands
from engine.referral import cli as referral_cli
from engine.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huren", description="huren integration engine")
    sub = parser.add_subparsers(dest="verb", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API and the MLLP listener")
    serve.add_argument("--replay", nargs="*", default=[], help="files or folders of HL7 v2 messages to replay at start")
    auth_cli.add_commands(sub)
    staff_cli.add_commands(sub)
    identity_cli.add_commands(sub)
    ingest_cli.register(sub, serve)
    add_audit_commands(sub)
    add_report_commands(sub)
    add_qc_commands(sub)
    insurance_cli.add_commands(sub)
    referral_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"{args.verb}: not available")
    return int(handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
