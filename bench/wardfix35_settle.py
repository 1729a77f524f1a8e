"""What reading a code-only PL's places costs a message (wardfix35): ``actors.settle_ward_names``.

    PYTHONPATH=. python bench/wardfix35_settle.py [--messages N] [--rounds R]

The hot case of ``bench/locfix34_locations.py``: N visits admitted by an A01 naming the bed's ward (PV1-3
with PL-9), then an A08 for each sending the bed by code alone (``XYK^301^02^FNXRMYY``): each A08's three
Locations only assume their names, so ``Conversion.settle_against_store`` reads them (one ``read_many`` of
bed, room and ward) and shows the bed's stored name. Prints the CPU per A08 of ``settle_ward_names`` alone
and of the whole ``settle_against_store`` (best of R rounds), over the real SQLite repository, and the CPU
per A08 through the ingestor for scale.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from adapters.convert import convert
from adapters.convert.actors import settle_ward_names
from adapters.hl7v2.parser import parse
from bench.locfix34_locations import _adt
from engine.engine import Engine
from engine.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    own, whole, through = float("inf"), float("inf"), float("inf")
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as root, \
                Engine(Settings(data_dir=Path(root) / "var", http_port=0, mllp_port=0)) as eng:
            for n in range(args.messages):
                ack = eng.ingestor.handle(_adt("A01", n, 0, "XYK^301^02^FNXRMYY^^^^^血液科病区"), channel="file",
                                          peer="file:bench")
                assert b"MSA|AA" in ack
            thins = [_adt("A08", n, 1, "XYK^301^02^FNXRMYY") for n in range(args.messages)]
            repo = eng.repository
            made = [convert(parse(m.decode()), eng.site) for m in thins]
            t0 = time.process_time()
            for c in made:
                settle_ward_names(c, repo.read_many)
            own = min(own, (time.process_time() - t0) / args.messages)
            made = [convert(parse(m.decode()), eng.site) for m in thins]
            t0 = time.process_time()
            for c in made:
                c.settle_against_store(repo.read_many, repo.search, [], messages=eng.ingestor.messages)
            whole = min(whole, (time.process_time() - t0) / args.messages)
            t0 = time.process_time()
            for m in thins:
                assert b"MSA|AA" in eng.ingestor.handle(m, channel="file", peer="file:bench")
            through = min(through, (time.process_time() - t0) / args.messages)
    print(f"A08 (bed by code, stored ward named): settle_ward_names {own * 1e6:.0f} us CPU, settle_against_store "
          f"{whole * 1e6:.0f} us CPU, through the ingestor {through * 1e6:.0f} us CPU a message "
          f"(best of {args.rounds} rounds, {args.messages} messages)")


if __name__ == "__main__":
    main()
