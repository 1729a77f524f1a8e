"""Conformant messages generated from each HL7 message structure, walked by the structure check: any warning
is an unfounded one (hl7seq32, thirty-second round).

    python bench/sequence_conformance.py [--versions 2.5.1 2.6] [--per 300] [--seed 1]

For each structure of each version hl7apy holds, ``--per`` random segment sequences the structure's own
definition allows (each optional member present or not, each repeating one 0-3 times, one member of a choice)
are walked by ``sequence.compiled(...).walk``; every deviation found is printed with the shortest message that
drew it. A complete message of the grammar must draw none (a required segment is never left out here).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from adapters.hl7v2.sequence import ANY, compiled  # noqa: E402


def generate(node: tuple, rnd: random.Random, out: list[str]) -> None:
    """Appends one conformant sequence of ``node``'s segment ids to ``out``."""
    items = node[1]
    choice = node[0] == "choice"
    if choice:
        items = [rnd.choice(items)]
    for name, sub, (least, most), tag in items:
        least = max(least, 1) if choice else least
        count = least if rnd.random() < 0.4 else (least + 1 if most == 1 else least + rnd.randint(0, 2))
        for _ in range(min(count, 1) if most == 1 else count):
            if tag == "GRP":
                generate(sub, rnd, out)
            elif name != ANY:
                out.append(name)


def main() -> None:
    from hl7apy import SUPPORTED_LIBRARIES, load_library

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", nargs="*", default=sorted(SUPPORTED_LIBRARIES))
    parser.add_argument("--per", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for version in args.versions:
        structures = load_library(version).ELEMENTS["Message"]
        found: Counter[tuple[str, str, str]] = Counter()
        shortest: dict[tuple[str, str, str], list[str]] = {}
        walked = 0
        for structure in sorted(structures):
            shape = compiled(version, structure)
            if shape is None:
                continue
            rnd = random.Random(args.seed)
            for _ in range(args.per):
                out: list[str] = []
                generate(structures[structure], rnd, out)
                if not out or out[0] != "MSH":
                    continue
                walked += 1
                for i, kind, *_ in shape.walk(tuple(out)):
                    key = (structure, out[i], kind)
                    found[key] += 1
                    if key not in shortest or len(out) < len(shortest[key]):
                        shortest[key] = out
        print(f"{version}: {walked} conformant messages, {sum(found.values())} warnings")
        for key, n in sorted(found.items()):
            print(f"  {key} x{n}: {' '.join(shortest[key])}")


if __name__ == "__main__":
    main()
