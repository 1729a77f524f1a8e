"""What keeping a ward's stated name costs (locfix34): a PL without PL-9 assumes its Locations'
names (``Said.assumed``) and the visit's display of the place is kept from the stored entry
(merge.yaml Encounter.location ``displays``).

    python bench/locfix34_locations.py [--messages N] [--rounds R]

Through the real ingestor on SQLite (a fresh data directory a round): N visits admitted by an A01
naming the bed's ward (PV1-3 with PL-9), then an A08 for each sending the bed by code alone
(``XYK^301^02^FNXRMYY``) -- every A08 converts three Locations whose names are assumed and merges the
stored visit. Prints the CPU per A08 (process CPU over ``ingestor.handle``, the best of R rounds) and
the CPU per A08 of ``adapters.convert.convert`` alone. Run as ``PYTHONPATH=. python bench/...``.
Steadier: the conversion's instructions under callgrind (``operator.call`` around the loop and
``--toggle-collect=_operator_call``, ``PYTHONHASHSEED=0``), the figures of README's locfix34 paragraph.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.settings import Settings


def _adt(event: str, n: int, k: int, pl: str) -> bytes:
    pv1 = ["PV1", "1", "I", pl] + [""] * 15 + [f"BLF{n}"]
    return ("\r".join([
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|202612030{k % 10}0000||ADT^{event}^ADT_A01|BLF-{n}-{k}|P|2.5.1",
        f"EVN|{event}|20261203080000",
        f"PID|1||BLFP{n}^^^FNXRMYY^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r").encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    best, conv = float("inf"), float("inf")
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as root, \
                Engine(Settings(data_dir=Path(root) / "var", http_port=0, mllp_port=0)) as eng:
            firsts = [_adt("A01", n, 0, "XYK^301^02^FNXRMYY^^^^^血液科病区") for n in range(args.messages)]
            thins = [_adt("A08", n, 1, "XYK^301^02^FNXRMYY") for n in range(args.messages)]
            for msg in firsts:
                assert b"MSA|AA" in eng.ingestor.handle(msg, channel="file", peer="file:bench")
            t0 = time.process_time()
            for msg in thins:
                assert b"MSA|AA" in eng.ingestor.handle(msg, channel="file", peer="file:bench")
            best = min(best, (time.process_time() - t0) / args.messages)
            parsed = [parse(m.decode()) for m in thins]
            t0 = time.process_time()
            for m in parsed:
                convert(m, eng.site)
            conv = min(conv, (time.process_time() - t0) / args.messages)
    print(f"A08 (ward by code, stored ward named): {best * 1e6:.0f} us CPU/message through the ingestor, "
          f"{conv * 1e6:.0f} us of it converting (best of {args.rounds} rounds, {args.messages} messages)")


if __name__ == "__main__":
    main()
