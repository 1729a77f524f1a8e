"""What joining a result's codings to an order's code costs (``MergeRules._concept_union``), per call, with
the shapes code37 counts as mapping gaps added: an order by a text naming no item (``^凝血检查三项``) under the
LIS's 1020, and an order ``^血常规`` under 100101 (mapped, no item).

    python bench/code37_concept.py [--calls N]

xotext36's and mixfix36's shapes as before (``bench/xotext36_concept.py``). Runs the tree it sits in, so
the same script copied into another checkout gives that tree's figures."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mixfix36_concept import CASES, L  # noqa: E402
from bench.mixfix36_concept import main as timed  # noqa: E402
from bench.xotext36_concept import TEXT  # noqa: E402

GAPS = {
    "text-none": ({"text": "凝血检查三项"}, {"coding": [{"system": L, "code": "1020", "display": "肝功能八项"}]}),
    "no-item": ({"text": "血常规"}, {"coding": [{"system": L, "code": "100101", "display": "白细胞"},
                                              {"system": "http://loinc.org", "code": "6690-2"}]}),
}


def main() -> None:
    timed({**CASES, **TEXT, **GAPS}, width=10)


if __name__ == "__main__":
    main()
