"""``huren identity rebuild|conflicts``: operator verbs of the master patient index."""

from __future__ import annotations

import argparse

from engine.settings import Settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    ident = sub.add_parser("identity", help="master patient index (links between Patient records)")
    isub = ident.add_subparsers(dest="identity_verb", required=True)
    rebuild = isub.add_parser("rebuild", help="re-link every stored Patient by national ID")
    rebuild.set_defaults(handler=identity_rebuild)
    conflicts = isub.add_parser("conflicts", help="list records not linked because their data conflict")
    conflicts.set_defaults(handler=identity_conflicts)


def identity_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from engine.engine import Engine

    with Engine(settings) as engine:
        n = engine.identity.rebuild()
        print(f"{n} Patient records re-linked; {len(engine.identity.conflicts())} in conflict")
    return 0


def identity_conflicts(args: argparse.Namespace, settings: Settings) -> int:
    from engine.engine import Engine

    with Engine(settings) as engine:
        for doc in engine.identity.conflicts():
            print(f"Patient/{doc['_id']}\t{'; '.join(doc.get('reasons', []))}")
    return 0
