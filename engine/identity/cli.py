"""``huren identity rebuild|conflicts|authorities|carried``: operator verbs of the master patient index."""

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
    authorities = isub.add_parser(
        "authorities", help="list the CX-4 assigning authorities the kept messages write on record numbers "
                            "(PID-3, MRG-1) and how each is read: own MRN, another member's, or kept apart")
    authorities.set_defaults(handler=identity_authorities)
    carried = isub.add_parser(
        "carried", help="the once-per-store pass giving merges filed before the fortieth round their carried ID "
                        "number: when it ran, survivors written, merges left and why, its audit records")
    carried.set_defaults(handler=identity_carried)


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


def identity_authorities(args: argparse.Namespace, settings: Settings) -> int:
    """One line per (institution, sending application, CX-4): its count in the kept messages and its
    reading (``engine.identity.authorities``). A line read ``apart`` that is in fact the institution's
    own numbering (the HIS's name, an OID, "MRN") goes into ``institutions.yaml`` ``mrn_authorities``
    before messages are taken again."""
    from engine.engine import Engine
    from engine.identity.authorities import census

    with Engine(settings) as engine:
        print("institution\tapplication\tCX-4\tcount\treading")
        for a, n in census(engine.ingestor.messages.messages, engine.site):
            print("\t".join(_cell(v) for v in (a.institution, a.application, a.cx4, str(n), a.reading)))
    return 0


def identity_carried(args: argparse.Namespace, settings: Settings) -> int:
    """What ``engine.carried_numbers`` did on this store (the Engine's open runs it if it has not run): one
    ``name<TAB>value`` line each. The pass is once per store; its figures are its marker's."""
    from engine.carried_numbers import report
    from engine.engine import Engine

    with Engine(settings) as engine:
        done = report(engine.repository)
    if done is None:  # (the open runs it: only a store no Engine finished opening)
        print("carried-numbers\tnot run")
        return 1
    print(f"carried-numbers\tdone {done.get('at')}" + ("; again at the next start" if done.get("again") else ""))
    for name, what in (("merges", "records merged away looked at"), ("written", "records given a number"),
                       ("carried", "merges that carried"), ("two_people", "left: two people"),
                       ("against", "left: against the record's sex or birth date"),
                       ("held", "nothing: the survivor holds a number"),
                       ("no_message", "left: the merge's message not kept or not readable"),
                       ("given_back", "undone merges: the number back on the record the A37 separated"),
                       ("moved", "left to the next start: written since the scan")):
        print(f"{name}\t{done.get(name, 0)}\t{what}")
    print(f"audit\t{' '.join(f'audit-{n}' for n in done.get('audited') or ()) or '-'}")
    return 0


def _cell(value: str) -> str:
    """A tab-separated cell: a backslash, tab or line break inside a sent value (a CX-4 is the sender's
    text) escaped, so one line stays one authority (rvidfix32, LOW) -- and every other character that is
    not printable (regapp33): the parser lets through NEL (U+0085), the line and paragraph separators
    (U+2028/9), which ``str.splitlines`` and some viewers take as line breaks, C1 controls such as CSI
    (U+009B, a terminal escape) and format characters such as U+202E, which reorders the line on screen:
    each is written as a Python escape (``\\x85``, ``\\u2028``)."""
    return "".join(_ESCAPES.get(c) or (c if c.isprintable() else c.encode("unicode_escape").decode("ascii"))
                   for c in value)


_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
