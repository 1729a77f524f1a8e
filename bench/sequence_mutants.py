"""Mutants of the public sample messages walked by the structure check and by the structure's own grammar: a
message the grammar rejects must draw a deviation, one it accepts none (hl7fix32, thirty-second round).

    python bench/sequence_mutants.py [--seed 7] [--per 30] [--show 2]

``bench/sequence_conformance.py`` generates conformant messages and so finds only unfounded warnings; this
finds the other kind, a message out of its structure that passes unnamed (rvhl7seq32's finding: 68 of 2,711
such mutants). Each message under ``tests/data/hl7v2`` (3 to 60 segments) gets ``--per`` mutants: a segment
moved, dropped or repeated. Mutants holding a segment outside the structure (another check's) or of a
structure hl7apy lacks or holds open are left out. For the rest, ``Compiled.follow`` / ``accepting`` (the
grammar: Glushkov's follow sets) says whether the structure holds the message; ``deviations`` must then be
empty exactly when it does. Prints the counts (``silent``: rejected, named by nothing; ``unfounded``:
accepted, named) with ``--show`` examples per structure, and the number of deviations (a cascade after one
slip shows here). Exits 1 when either count is not 0.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from adapters.hl7v2 import parser, sequence  # noqa: E402
from adapters.hl7v2.structure import of_its_structure  # noqa: E402


def samples() -> list[list[str]]:
    """The segment lines of each sample message (a file may hold several, each begun by MSH)."""
    out = []
    for path in sorted((ROOT / "tests" / "data" / "hl7v2").rglob("*")):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\r").replace("\n", "\r")
        for chunk in text.split("\rMSH|"):
            lines = [x for x in (chunk if chunk.startswith("MSH|") else "MSH|" + chunk).split("\r") if x.strip()]
            if lines and lines[0].startswith("MSH|") and 3 <= len(lines) <= 60:
                out.append(lines)
    return out


def mutants(lines: list[str], rnd: random.Random, per: int) -> list[list[str]]:
    out = []
    for _ in range(per):
        mutant, n = lines[:], len(lines)
        i, j, r = rnd.randrange(1, n), rnd.randrange(1, n), rnd.random()
        if r < 0.5:
            mutant.insert(j, mutant.pop(i))  # moved
        elif r < 0.8:
            del mutant[i]  # dropped
        else:
            mutant.insert(i, lines[j])  # repeated
        if mutant != lines:
            out.append(mutant)
    return out


def held(found: sequence.Compiled, shape: tuple[str, ...]) -> bool:
    """Whether the structure's grammar holds segment ids ``shape`` (Z-segments passed over)."""
    assert found.follow is not None
    places = sequence._FIRST
    for name in shape[1:]:
        if name[0] != "Z":
            places = frozenset(k for q in places for k in found.follow[q].get(name, ()))
            if not places:
                return False
    return bool(places & found.accepting)


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--seed", type=int, default=7)
    args.add_argument("--per", type=int, default=30)
    args.add_argument("--show", type=int, default=2)
    opts = args.parse_args()
    rnd = random.Random(opts.seed)
    checked = named = 0
    wrong: dict[str, Counter[str]] = {"silent": Counter(), "unfounded": Counter()}
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for lines in samples():
        for mutant in mutants(lines, rnd, opts.per):
            try:
                message = parser.parse("\r".join(mutant) + "\r")
            except Exception:  # noqa: BLE001  (a mutant the parser refuses is no structure question)
                continue
            found = of_its_structure(message, sequence._COMPILED, sequence.compiled)
            if found is None or found.follow is None:
                continue
            shape = tuple(s.name for s in message.segments)
            if any(name not in found.names and name[0] != "Z" for name in shape):
                continue  # outside the structure: named "outside", not a question of the grammar
            checked += 1
            devs = sequence.deviations(message)
            named += len(devs)
            accepted = held(found, shape)
            kind = "silent" if not accepted and not devs else "unfounded" if accepted and devs else ""
            if kind:
                wrong[kind][found.structure] += 1
                if len(examples[kind, found.structure]) < opts.show:
                    examples[kind, found.structure].append(f"{found.version} {' '.join(shape)}")
    print(f"{checked} mutants checked, {named} deviations; silent {sum(wrong['silent'].values())}, "
          f"unfounded {sum(wrong['unfounded'].values())}")
    for kind, counts in wrong.items():
        for structure, count in counts.most_common():
            print(f"  {kind} {structure}: {count}")
            for example in examples[kind, structure]:
                print(f"    {example}")
    return 1 if any(sum(c.values()) for c in wrong.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
