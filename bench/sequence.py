"""The cost of the message-structure check (``adapters.hl7v2.sequence.judged``) a message, alone.

    python bench/sequence.py [--rounds N]            # wall time, per message kind
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/sequence.py --instructions --rounds 1000 [--kind lab|adt|slip]

Under callgrind the timed calls run inside one ``operator.call`` (as ``bench/ingest.py --instructions``
does), so the count is of the checks alone, after each structure was compiled and its steps remembered
once; divide the collected total by ``--rounds``. ``--kind none`` runs the same loop around a no-op call,
the loop's own cost to subtract. ``lab`` is the ingest bench's 12-OBX blood count (17 segments),
``adt`` an ADT^A04, ``slip`` an ADT with PID after PV1 and an RXA outside the structure (two warnings
built), ``repeated`` the lab result with its PID repeated before its last OBX (hl7fix31: the converter's
reading of results into orders, ``results.orderless``, asked, the OBX warned).
"""

from __future__ import annotations

import argparse
import operator
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from adapters.convert.results import orderless  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from adapters.hl7v2.sequence import judged as judged_with  # noqa: E402
from bench.ingest import adt_a01, oru_lab  # noqa: E402
from mappings.site import Site  # noqa: E402

SLIP = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|S1|P|2.5.1\r"
        "EVN|A04|20261201091500\rPV1|1|O\rPID|1||M1^^^FNXRMYY^MR||张^三||19850412|M\r"
        "RXA|0|1|20261201|20261201|08^HepB^CVX|1\r")


judged = partial(judged_with, orderless=orderless)  # (outside the counted loop)


def message(kind: str):  # noqa: ANN201 -- a parsed Message
    if kind == "adt":
        return parse(adt_a01(1).decode("utf-8"))
    if kind == "slip":
        return parse(SLIP)
    if kind == "repeated":
        lab = oru_lab(1).decode("utf-8").rstrip("\r").split("\r")
        pid = next(s for s in lab if s.startswith("PID|"))
        return parse("\r".join([*lab[:-1], pid, lab[-1]]) + "\r")
    return parse(oru_lab(1).decode("utf-8"))


def _timed(check: Callable[..., object], call: tuple[object, ...], rounds: int) -> None:
    m, s, f, a = call
    for _ in range(rounds):
        check(m, s, f, a, orderless=orderless)  # as the ingest calls it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--kind", choices=["lab", "adt", "slip", "repeated", "none"], default="lab")
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()
    site = Site.from_dirs(ROOT / "mappings")
    kinds = [args.kind] if args.instructions else ["lab", "adt", "slip", "repeated"]
    for kind in kinds:
        msg = message("lab" if kind == "none" else kind)
        facility, app = msg.msh.sending_facility, msg.msh.sending_application
        judged(msg, site, facility, app)  # compiled, steps remembered
        check = (lambda m, s, f, a, orderless: None) if kind == "none" else judged_with
        rounds = args.rounds

        t0 = time.perf_counter()
        operator.call(_timed, check, (msg, site, facility, app), rounds)
        spent = time.perf_counter() - t0
        error, warnings = judged(msg, site, facility, app)
        print(f"{kind}: {len(msg.segments)} segments, {spent / rounds * 1e6:.2f} us a check "
              f"({len(warnings)} warnings, refused: {error is not None})")


if __name__ == "__main__":
    main()
