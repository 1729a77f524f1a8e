"""Benchmark of the patient index when a person has many records.

    python bench/identity.py                 # 25 persons, up to 24 records each
    python bench/identity.py --records 12 --persons 10
    python bench/identity.py --quick         # 10 persons, up to 8 records each (seconds)

Each round sends every person one more 12-OBX ORU^R01 (the ingest bench's message) under a new
MRN with the same national resident ID, so each round adds one record to each person, in batches
of 50 through the real ingest pipeline on SQLite. For some rounds it prints the process CPU per
message of that round, the patient index's share of it (its statement and write hook, with the
link versions they write, thread CPU) and how many Patient versions the index wrote per message
to restate the ``seealso`` links of the person's earlier records. A feed that keeps one record a
person per institution never gets far; a feed whose MRN changes with every visit does, and this
shows what each further record costs. Prints its figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import oru_lab, warm_validators  # noqa: E402
from engine import heap  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.merge_rules import INDEX  # noqa: E402
from engine.settings import Settings  # noqa: E402

RESIDENTS = 499  # oru_lab's message n belongs to resident n % 499, under the MRN of n


def measure(records: int, persons: int, shown: set[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        mpi, repo = engine.identity, engine.repository
        spent = {"index": 0.0}
        versions = {"n": 0}
        depth = threading.local()

        def timed(fn: Any) -> Any:
            def run(*args: Any, **kwargs: Any) -> Any:
                outer = getattr(depth, "n", 0)
                depth.n = outer + 1
                t0 = time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    depth.n = outer
                    if not outer:  # the link versions it writes run the statement and hook again
                        spent["index"] += time.thread_time() - t0
            return run

        real_write_many = repo.write_many

        def write_many(resources: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("source") == INDEX:
                versions["n"] += len(resources)
            return real_write_many(resources, *args, **kwargs)

        repo.write_many = write_many  # type: ignore[method-assign]
        repo._hooks[:] = [timed(h) if getattr(h, "__self__", None) is mpi else h for h in repo._hooks]
        repo._statements[:] = [timed(s) if getattr(s, "__self__", None) is mpi else s for s in repo._statements]
        # warm up on residents of their own (the bench's persons are 0 .. persons-1)
        engine.ingestor.process([(oru_lab(95_000_000 + i, own_person=True), "bench", "127.0.0.1:1")
                                 for i in range(50)])
        warm_validators(engine)
        heap.settle()
        print(f"{persons} persons, one more record each per round ({persons} messages), batches of 50:")
        for k in range(records):
            messages = [(oru_lab(p + RESIDENTS * k), "bench", "127.0.0.1:1") for p in range(persons)]
            spent["index"], versions["n"] = 0.0, 0
            cpu0 = time.process_time()
            for start in range(0, len(messages), 50):
                engine.ingestor.process(messages[start:start + 50])
            whole = (time.process_time() - cpu0) / persons * 1e6
            if k + 1 in shown:
                print(f"  record {k + 1:3d} of each person: {whole:8,.0f} us CPU a message, patient index "
                      f"{spent['index'] / persons * 1e6:7,.0f} us, {versions['n'] / persons:5.1f} earlier "
                      f"records rewritten a message")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=24, help="records per person at the end")
    ap.add_argument("--persons", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="10 persons, up to 8 records each")
    args = ap.parse_args()
    if args.quick:
        args.records, args.persons = min(args.records, 8), min(args.persons, 10)
    shown = {1, 2, 4, 8, 12, 16, 20, 24, args.records}
    measure(args.records, min(args.persons, RESIDENTS), shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
