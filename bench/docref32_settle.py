"""What settling a conversion against the store costs per message (thirty-second round, docref32).

    python bench/docref32_settle.py [--calls N]

``Conversion.settle_against_store`` now asks, for every message, whether the converter wrote a
DocumentReference without content (``settle_documents``: a message carrying only the text lines it
withdraws writes the report's document onto a stored one only). A lab message writes none: the
added cost is one scan of its resource references. Converts the 12-OBX lab ORU and the imaging ORU
of ``bench/ingest.py`` once, then calls ``settle_against_store`` N times on each (``read_many`` and
``search`` answering nothing: the lab's answer needs neither). Prints the wall time per call. For
steadier figures run it under ``valgrind --tool=callgrind`` with ``--calls N`` and ``--calls 0`` and
divide the difference of the instruction totals by N.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.ingest import oru_lab, oru_pacs  # noqa: E402
from engine.settings import Settings  # noqa: E402
from mappings.site import Site  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--kind", choices=["lab", "imaging", "both"], default="both")
    args = ap.parse_args()
    site = Site.load(Settings())
    kinds = {"lab": [("lab ORU 12 OBX", oru_lab)], "imaging": [("imaging ORU", oru_pacs)]}
    for name, make in kinds.get(args.kind) or [*kinds["lab"], *kinds["imaging"]]:
        conversion = convert(parse(make(1).decode("utf-8")), site)
        settle = conversion.settle_against_store
        start = time.perf_counter()
        for _ in range(args.calls):
            settle(lambda keys: {}, None)
        elapsed = time.perf_counter() - start
        if args.calls:
            print(f"{name:16} settle_against_store {elapsed / args.calls * 1e9:8.0f} ns a call "
                  f"({len(conversion.by_reference)} resources)")


if __name__ == "__main__":
    main()
