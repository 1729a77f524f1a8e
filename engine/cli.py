"""The ``huren`` command: serve, replay, quarantine, client, keys, staff, audit, report, settle, referrals."""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.settings import Settings

# Who adds which verbs, in the order ``huren --help`` lists them: (module, its function adding them, the verbs it adds).
# A run naming one of these verbs imports only the module adding it (``build_parser(verb)``): importing every verb's
# module cost ~0.2 s of CPU at each start (0.34 s against 0.12 s for ``huren audit verify``: the insurance, ingest and
# staff commands import most of the engine) -- for a cron's or an auditor's one-verb run, and for each of the suite's
# ``huren`` processes (forty-fifth round, suite45b). No verb named (``huren``, ``huren --help``), or one not listed,
# builds the whole parser as before, so help and every error read as they did. ``tests/test_suite45b_cli_verbs.py``
# checks this table against what each function adds.
_REGISTRARS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("engine.auth.cli", "add_commands", ("client", "keys")),
    ("engine.auth.staff_cli", "add_commands", ("staff",)),
    ("engine.identity.cli", "add_commands", ("identity",)),
    ("adapters.listeners.cli", "register", ("serve", "replay", "quarantine")),  # (``serve``'s options and handler)
    ("engine.audit.cli", "add_audit_commands", ("audit",)),
    ("engine.recognition.cli", "add_report_commands", ("report",)),
    ("engine.recognition.cli", "add_qc_commands", ("qc",)),
    ("engine.insurance.cli", "add_commands", ("settle", "deductions", "indicators", "split-admissions")),
    ("engine.referral.cli", "add_commands", ("referrals",)),
)
VERBS = frozenset(verb for _module, _function, verbs in _REGISTRARS for verb in verbs)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The ``huren`` parser: every verb's, or with ``verb`` (one of ``VERBS``) only ``serve``'s and those its module
    adds -- the same subparser, built by the same function, as in the whole parser."""
    parser = argparse.ArgumentParser(prog="huren", description="huren integration engine")
    sub = parser.add_subparsers(dest="verb", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API and the MLLP listener")
    serve.add_argument("--replay", nargs="*", default=[], help="files or folders of HL7 v2 messages to replay at start")
    for module, function, verbs in _REGISTRARS:
        if verb is not None and verb not in verbs:
            continue
        add = getattr(importlib.import_module(module), function)
        if module == "adapters.listeners.cli":
            add(sub, serve)
        else:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    verb = given[0] if given and given[0] in VERBS else None
    if verb is None:
        args = build_parser().parse_args(argv)
    else:
        args, unknown = build_parser(verb).parse_known_args(argv)
        if unknown:  # refused by the whole parser, as before: its usage lists every verb
            args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    handler = getattr(args, "handler", None)
    if handler is None:
        build_parser().error(f"{args.verb}: not available")
    return int(handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
