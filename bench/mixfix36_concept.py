"""What joining a result's codings to an order's code costs (``MergeRules._concept_union``), per call.

    python bench/mixfix36_concept.py [--calls N]

Opens a real Engine (its merge rules and recognition code maps: ``same_test``) on a temporary data
directory and times ``_concept_union`` of the shipped ServiceRequest ``code`` rule, result writer (ORU), for
three shapes: the LIS's coding already stored (1020 under [24325-3, 1020]: nothing to judge), one coding
of the same test by the maps (1020 under an LFT order by LOINC) and one no map knows (PTX under PT).
Runs the tree it sits in, so the same script in another checkout gives that tree's figures
(mixfix36: each coding not stored is judged alone by the code maps)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402

L = "urn:huren:code:FNZYY"
LN = "http://loinc.org"
CASES = {
    "stored": ({"coding": [{"system": LN, "code": "24325-3"}, {"system": L, "code": "1020"}]},
               {"coding": [{"system": L, "code": "1020", "display": "肝功能八项"}]}),
    "mapped": ({"coding": [{"system": LN, "code": "24325-3"}], "text": "肝功能"},
               {"coding": [{"system": L, "code": "1020", "display": "肝功能八项"}]}),
    "unmapped": ({"coding": [{"system": LN, "code": "5902-2"}], "text": "PT"},
                 {"coding": [{"system": L, "code": "PTX", "display": "凝血"}]}),
}


def main(cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = CASES, width: int = 9) -> None:
    """Time ``_concept_union`` of each of ``cases`` (label -> the stored code, the result's) and print it
    (``bench/xotext36_concept.py`` runs it with its own shapes added)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=5000)
    calls = ap.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as eng:
        merge = eng.repository.merge
        ep = merge.plan("ServiceRequest", "ORU").elements["code"]
        for label, (stored, incoming) in cases.items():
            start = time.process_time()
            for _ in range(calls):
                merge._concept_union("ServiceRequest", "code", ep, stored, incoming, "ORU", [])
            print(f"{label:{width}s} {(time.process_time() - start) / calls * 1e6:7.2f} us a call")


if __name__ == "__main__":
    main()
