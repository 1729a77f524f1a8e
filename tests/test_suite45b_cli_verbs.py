"""suite45b: ``huren <verb>`` imports only the module adding that verb (``engine.cli._REGISTRARS``), and its parser is
the one the whole ``huren`` parser holds for that verb -- so a one-verb run parses, helps and refuses as it did."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from engine import cli
from tests.conftest import REPO_ROOT


def _verbs_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_each_registrar_adds_exactly_the_verbs_the_table_says() -> None:
    """The table is what each function adds (a verb added and not listed would be a start that cannot find it; one
    listed and not added, a verb missing from its own run)."""
    for module, function, verbs in cli._REGISTRARS:
        parser = argparse.ArgumentParser(prog="huren")
        sub = parser.add_subparsers(dest="verb")
        serve = sub.add_parser("serve")
        add = getattr(importlib.import_module(module), function)
        add(sub, serve) if module == "adapters.listeners.cli" else add(sub)
        assert set(sub.choices) - {"serve"} == set(verbs) - {"serve"}, (module, function)
    assert set(_verbs_of(cli.build_parser())) == cli.VERBS


def _helps(parser: argparse.ArgumentParser, path: str = "huren") -> dict[str, str]:
    """Every help text of ``parser`` and of its verbs and their actions, by ``huren verb action``."""
    out = {path: parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out.update(_helps(child, f"{path} {name}"))
    return out


def test_a_verb_s_own_parser_is_the_whole_parser_s_for_that_verb() -> None:
    """Each verb's help (and each of its actions'), built alone, equals the whole parser's; runs of several verbs
    parse to the same arguments; an unknown verb is refused by the whole parser."""
    whole = _helps(cli.build_parser())
    for verb in sorted(cli.VERBS):
        alone = {path: text for path, text in _helps(cli.build_parser(verb)).items()
                 if path.split(" ")[1:2] == [verb]}
        assert alone and alone == {path: text for path, text in whole.items() if path.split(" ")[1:2] == [verb]}, verb
    for argv in (["audit", "verify", "--json"], ["serve", "--no-mllp", "--workers", "2"], ["quarantine", "list"],
                 ["identity", "rebuild"], ["settle", "2026", "--format", "json"]):
        assert vars(cli.build_parser(argv[0]).parse_args(argv)) == vars(cli.build_parser().parse_args(argv)), argv


def _independent_whole() -> argparse.ArgumentParser:
    """The whole ``huren`` parser built as engine/cli.py built it before suite45b's table (each module's function
    called by name, in the help's order) -- not from ``cli._REGISTRARS``, so a row deleted from the table (its verbs
    gone from ``VERBS``, from ``build_parser()`` and from every one-verb run) is caught here (rv45c LOW 4)."""
    from adapters.listeners import cli as ingest_cli
    from engine.audit.cli import add_audit_commands
    from engine.auth import cli as auth_cli
    from engine.auth import staff_cli
    from engine.identity import cli as identity_cli
    from engine.insurance import cli as insurance_cli
    from engine.recognition.cli import add_qc_commands, add_report_commands
    from engine.referral import cli as referral_cli

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


def test_each_verb_of_the_independent_whole_parser_runs_alone_as_it() -> None:
    """Every verb the CLI's modules add (the whole parser built without the table) is a verb of ``VERBS``, and its
    one-verb parser (``build_parser(verb)``), its help and each of its actions', equals that independent parser's; the
    whole parser's help equals it too (the 15 verbs listed, in the same order)."""
    independent = _independent_whole()
    assert set(_verbs_of(independent)) == cli.VERBS | {"serve"}, set(_verbs_of(independent)) ^ (cli.VERBS | {"serve"})
    whole = _helps(independent)
    assert _helps(cli.build_parser()) == whole
    for verb in sorted(_verbs_of(independent)):
        alone = {path: text for path, text in _helps(cli.build_parser(verb)).items()
                 if path.split(" ")[1:2] == [verb]}
        assert alone == {path: text for path, text in whole.items() if path.split(" ")[1:2] == [verb]}, verb


@pytest.mark.parametrize("argv", [["no-such-verb"], ["quarantine", "list", "--bogus"], ["settle", "MMXXVI"],
                                  ["audit"], ["audit", "verify", "extra"], ["--help"], []])
def test_a_refused_run_says_what_the_whole_parser_says(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown verb, an argument no verb takes (the whole parser's usage, every verb listed), a bad value, a
    missing action, help: ``main`` writes and exits exactly as the whole parser does."""
    with pytest.raises(SystemExit) as whole:
        cli.build_parser().parse_args(argv)
    expected = capsys.readouterr()
    with pytest.raises(SystemExit) as run:
        cli.main(argv)
    assert (run.value.code, capsys.readouterr()) == (whole.value.code, expected), argv


def test_an_audit_run_imports_no_other_verb_s_module() -> None:
    """``huren audit ...`` in a process of its own: the audit commands' module imported, the insurance, ingest and
    staff commands' not (each had been imported at every start)."""
    code = ("import sys\nfrom engine import cli\ncli.build_parser('audit')\n"
            "print(sorted(m for m in ('engine.audit.cli', 'engine.insurance.cli', 'adapters.listeners.cli', "
            "'engine.auth.staff_cli') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "['engine.audit.cli']", done.stdout
