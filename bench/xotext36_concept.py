"""What joining a result's codings to an order's code costs (``MergeRules._concept_union``), per call,
with the order named by text alone (xotext36: a result's coding is judged by the item the text names).

    python bench/xotext36_concept.py [--calls N]

mixfix36's three coded shapes (``bench/mixfix36_concept.py``) and two more: an order ``^血常规`` (CBC by
its name) under the LIS's 1001 (CBC: added) and 1020 (LFT: not added, warned). Runs the tree it sits in,
so the same script copied into another checkout gives that tree's figures."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.mixfix36_concept import CASES, L  # noqa: E402
from bench.mixfix36_concept import main as timed  # noqa: E402

TEXT = {
    "text-same": ({"text": "血常规"}, {"coding": [{"system": L, "code": "1001", "display": "血常规五分类"}]}),
    "text-other": ({"text": "血常规"}, {"coding": [{"system": L, "code": "1020", "display": "肝功能八项"}]}),
}


def main() -> None:
    timed({**CASES, **TEXT}, width=10)


if __name__ == "__main__":
    main()
