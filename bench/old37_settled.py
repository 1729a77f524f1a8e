"""What the dropped-paragraph hook costs a write group that is not a document's (thirty-seventh round, old37).

    python bench/old37_settled.py [--calls N]

``DocumentLabels.settled`` is a batch write hook: it runs once for every write group, a lab
message's too, and looks at each version the group stored for a numbered DocumentReference or a
paragraph-marked Observation (the lab has neither, so it asks the store nothing). Converts the
12-OBX lab ORU of ``bench/ingest.py`` once and hands its resources to ``settled`` N times (no
repository: the lab's answer needs none). Prints the wall time per call; for steadier figures run
it under ``valgrind --tool=callgrind`` with ``--calls N`` and ``--calls 0`` and divide the
difference of the instruction totals by N.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.ingest import oru_lab  # noqa: E402
from engine.document_labels import DocumentLabels  # noqa: E402
from engine.settings import Settings  # noqa: E402
from mappings.site import Site  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200_000)
    args = ap.parse_args()
    site = Site.load(Settings())
    conversion = convert(parse(oru_lab(1).decode("utf-8")), site)
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(r, None) for r in conversion.by_reference.values()]
    settled = DocumentLabels(None).settled  # type: ignore[arg-type]  (never asked: no document in a lab)
    start = time.perf_counter()
    for _ in range(args.calls):
        settled(pairs)
    elapsed = time.perf_counter() - start
    if args.calls:
        print(f"lab ORU 12 OBX settled {elapsed / args.calls * 1e9:8.0f} ns a call ({len(pairs)} versions)")


if __name__ == "__main__":
    main()
