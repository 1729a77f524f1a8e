"""Index extraction of a 12-OBX ORU^R01's first versions, replayed by resource type (perf38a).

    python bench/perf38a_index.py [--messages 50] [--reps 5] [--calls]
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/perf38a_index.py --instructions TYPE   # one type's rows alone

Why: ``bench/ingest.py --instructions`` counts a whole message; index extraction is a sixth of it
and spread over a few resource types. This records the resources the engine indexed while ingesting
``--messages`` lab messages (after ``settle_warm``, as ``--instructions`` does), then replays them
feed-like through a fresh ``Indexer`` of the same parameters: a batch of the warm-up's resources
first (plans compiled, the warm-up's references remembered), then the recorded ones, whose new
references are new to it as they were to the engine's. It prints the time per resource of each
type (best of ``--reps``), and with ``--calls`` how often ``read_reference`` ran and for how many
distinct strings. ``--instructions TYPE`` replays once with only TYPE's resources inside
``operator.call``, for callgrind (divide by the count printed).
"""

from __future__ import annotations

import argparse
import collections
import copy
import operator
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import oru_lab, settle_warm  # noqa: E402


def record(count: int, batch: int = 50) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """(warm-up resources, timed resources, the engine's indexer) as the engine indexed them."""
    from engine.engine import Engine
    from engine.settings import Settings

    warm: list[dict[str, Any]] = []
    timed: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            indexer = engine.repository.indexer
            rows = indexer.rows
            into = warm

            def recording(resource: dict[str, Any]) -> Any:
                into.append(copy.deepcopy(resource))
                return rows(resource)

            indexer.rows = recording  # type: ignore[method-assign]
            settle_warm(engine, batch)
            into = timed
            messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            for start in range(0, count, batch):
                engine.ingestor.process(messages[start : start + batch])
            del indexer.rows
    return warm, timed, indexer


def fresh(like: Any, warm: list[dict[str, Any]]) -> Any:
    """A new Indexer of ``like``'s parameters, its plans compiled and the warm-up's rows made."""
    from engine.repository.indexing import Indexer

    indexer = Indexer(like.params, like.base_url, skip=like.skip)
    for r in warm:
        indexer.rows(r)
    return indexer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", action="store_true")
    parser.add_argument("--instructions", metavar="TYPE", default=None)
    args = parser.parse_args()
    warm, timed, like = record(args.messages)
    by_type = collections.Counter(r["resourceType"] for r in timed)
    print(f"{len(timed)} resources indexed for {args.messages} messages: "
          + ", ".join(f"{t} {n}" for t, n in by_type.most_common()))
    if args.instructions:
        chosen = [r for r in timed if args.instructions in ("all", r["resourceType"])]
        indexer = fresh(like, warm)
        rows = indexer.rows

        def replay() -> None:
            for r in chosen:
                rows(r)

        operator.call(replay)
        print(f"{len(chosen)} {args.instructions} resources: divide the collected instructions by "
              f"{len(chosen)} (a resource) or {args.messages} (a message)")
        return
    if args.calls:
        from engine.repository import indexing

        seen: collections.Counter[str] = collections.Counter()
        real = indexing.read_reference

        def counting(ref: str, base_url: str = "") -> Any:
            seen[ref] += 1
            return real(ref, base_url)

        indexing.read_reference = counting  # type: ignore[assignment]
        indexer = fresh(like, warm)
        seen.clear()
        for r in timed:
            indexer.rows(r)
        indexing.read_reference = real  # type: ignore[assignment]
        print(f"read_reference: {sum(seen.values())} calls for {len(seen)} distinct strings "
              f"({sum(seen.values()) / args.messages:.1f} and {len(seen) / args.messages:.1f} a message)")
        for ref, n in seen.most_common(5):
            print(f"    {n:4d} {ref}")
    best: dict[str, float] = {}
    for _ in range(args.reps):
        indexer = fresh(like, warm)
        spent: collections.Counter[str] = collections.Counter()
        rows = indexer.rows
        clock = time.perf_counter
        for r in timed:
            t0 = clock()
            rows(r)
            spent[r["resourceType"]] += clock() - t0
        for t, s in spent.items():
            best[t] = min(best.get(t, s), s)
    total = sum(best.values())
    print(f"best of {args.reps}: {total / args.messages * 1e6:,.1f} us a message; by type (us a resource, a message):")
    for t, s in sorted(best.items(), key=lambda kv: -kv[1]):
        print(f"    {t:22s} {s / by_type[t] * 1e6:8.2f} {s / args.messages * 1e6:8.1f}")


if __name__ == "__main__":
    main()
