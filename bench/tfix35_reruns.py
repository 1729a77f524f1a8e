"""The cost of a 12-result panel restated *final* with other values (a re-run sent F again, not C, MSH-7
later than its report's): since the thirty-fifth round (tfix35) each result whose value changes is dated
against the message that stated it (``merge_rules._restated_older``: the same sender's older restatement
is held), as a correction's status is (``bench/tfix34_corrections.py``) -- one Provenance search per
result, one message-store look-up per message (``ingest._Dates``'s memo), and the Provenances' writer
marks read in one call (a client-written Provenance dates nothing).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/tfix35_reruns.py --messages 20

``--older``: the re-runs are sent first and the reports (older MSH-7) after them, one at a time: the
path that holds every result (AA with a W per result). The panels are written first (not collected);
then each message alone (``Ingestor.process`` of one message, as ``POST /hl7v2`` or MLLP hands it over),
its instructions collected; wall and CPU time a message are printed too (the machine is shared: the
instruction counts are the figure)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import first_observation, one_at_a_time, oru_lab, settle_warm  # noqa: E402

# every value of ``oru_lab``'s panel, re-run: (as sent, as re-sent)
_RERUN = [("6.2", "6.4"), ("4.8", "4.9"), ("145", "147"), ("0.43", "0.44"), ("90", "91"), ("30", "31"),
          ("335", "337"), ("210", "215"), ("60.1", "61.0"), ("30.2", "29.8"), ("6.1", "6.0"), ("25", "27")]


def rerun(n: int) -> bytes:
    """``oru_lab(n)`` re-run: every value another, every OBX-11 and OBR-25 still F, stamped three hours
    later, its own control id."""
    text = oru_lab(n).decode("utf-8")
    for was, now in _RERUN:
        text = text.replace(f"^L||{was}|", f"^L||{now}|", 1)
    text = text.replace("|20261101091500||ORU^R01^ORU_R01|LAB", "|20261101121500||ORU^R01^ORU_R01|RER", 1)
    assert "|RER" in text and "^L||6.4|" in text
    return text.encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--older", action="store_true", help="the re-runs first, the older reports after")
    args = parser.parse_args()
    from engine.engine import Engine
    from engine.settings import Settings

    first = 71_000_000
    setup, timed_ones = ((rerun, oru_lab) if args.older else (oru_lab, rerun))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine)
            engine.ingestor.process([(setup(first + i), "bench", "127.0.0.1:1") for i in range(args.messages)])
            engine.ingestor.process([(setup(first + 10_000), "bench", "127.0.0.1:1")])  # (warm: not counted)
            engine.ingestor.process([(timed_ones(first + 10_000), "bench", "127.0.0.1:1")])
            outcomes, wall, cpu = one_at_a_time(engine, [timed_ones(first + i) for i in range(args.messages)])
            acks = {bytes(o.ack).split(b"MSA|", 1)[1][:2] for o in outcomes}
            assert acks == {b"AA"}, acks
            held = [o for o in outcomes if b"not later" in bytes(o.ack)]
            assert len(held) == (len(outcomes) if args.older else 0), len(held)
            assert _wbc(engine, first) == 6.4  # (the re-run's value: taken, or standing against the report)
    what = "older reports held against their re-runs" if args.older else "re-runs of a 12-result panel"
    print(f"{args.messages} {what}, one message at a time: {wall / args.messages * 1e3:.1f} ms wall, "
          f"{cpu / args.messages * 1e3:.1f} ms CPU a message; under callgrind, divide the collected "
          f"instructions by {args.messages}")


def _wbc(engine: object, first: int) -> float:
    """The stored value of the first panel's WBC result (its first message's first Observation)."""
    rid = first_observation(engine, f"LAB{first:09d}")
    return float(engine.repository.read("Observation", rid)["valueQuantity"]["value"])  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
