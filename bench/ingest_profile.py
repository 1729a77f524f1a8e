"""cProfile of the in-process ingest path, by layer: where a 12-OBX ORU^R01's CPU goes.

    python bench/ingest_profile.py [--messages 500] [--batch 50] [--top 40] [--gc] [--clock wall|thread]
        [--callers NAME ...]

Why: callgrind's stage split (``bench/ingest.py --instructions --by-stage``) counts what the
stage clock's collaborators cost, but not which functions inside a stage; this profiles the same
timed messages (``bench/ingest.py``'s ``settle_warm`` first, then ``--messages`` lab messages in
batches as group commit forms them, the collector paused as ingest pauses it unless ``--gc``) and
prints (a) the own time of every function summed by the layer its module belongs to (the layers
issue 15 names: parse, convert, validation, index extraction, the store's Python, SQLite, JSON,
recognition, identity, audit, the pipeline) and (b) the functions with the most own time. The
profiler's own cost inflates small Python functions, so read shares, not microseconds, and
compare trees with callgrind. ``--clock thread`` times by the thread's CPU (a wall clock counts
what other processes took of this one's turn on a loaded machine) but each reading is a system
call (~0.5-1 us), which more than doubles the run and inflates the cheapest functions most;
``wall`` (the default) is cheap to read and right on an idle machine.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import load_note  # noqa: E402
from bench.ingest import oru_lab, settle_warm  # noqa: E402

# (module path fragment or builtin name fragment, layer): the first that matches names the layer
LAYERS: tuple[tuple[str, str], ...] = (
    ("adapters/hl7v2", "parse (adapters.hl7v2)"),
    ("adapters/convert", "convert (adapters.convert)"),
    ("conformance/", "validation (conformance)"),
    ("jsonschema_rs", "validation (conformance)"),
    ("engine/repository/index_plan", "index extraction"),
    ("engine/repository/indexing", "index extraction"),
    ("<huren-index-plan", "index extraction"),
    ("engine/repository/sqlite_rows", "store Python (put, keys)"),
    ("engine/repository/sqlite_fhir", "store Python (put, keys)"),
    ("engine/repository/sqlite_store", "store Python (put, keys)"),
    ("sqlite3.Connection", "SQLite (statements, commit)"),
    ("sqlite3.Cursor", "SQLite (statements, commit)"),
    ("engine/repository/", "repository (write path, versioning, hooks)"),
    ("engine/merge_rules", "merge rules"),
    ("engine/fhirjson", "JSON (fhirjson, orjson, msgspec)"),
    ("orjson", "JSON (fhirjson, orjson, msgspec)"),
    ("msgspec", "JSON (fhirjson, orjson, msgspec)"),
    ("engine/recognition", "recognition"),
    ("engine/identity", "identity"),
    ("engine/audit", "audit"),
    ("_hashlib", "hashing (SHA-256, BLAKE2b)"),
    ("_blake2", "hashing (SHA-256, BLAKE2b)"),
    ("engine/ingest", "pipeline (engine.ingest)"),
    ("engine/messages", "pipeline (engine.ingest)"),
    ("engine/", "engine, other"),
)


def layer_of(func: tuple[str, int, str]) -> str:
    filename, _line, name = func
    where = f"{filename}:{name}"
    for fragment, layer in LAYERS:
        if fragment in where:
            return layer
    if filename == "~":
        return "builtins, other"
    return "other Python (stdlib, libraries)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--gc", action="store_true", help="leave the collector as it is")
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall")
    parser.add_argument("--callers", action="append", default=[], metavar="NAME",
                        help="also print who calls the functions whose name holds NAME (repeatable)")
    args = parser.parse_args()

    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine, args.batch)
            messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(args.messages)]
            profile = cProfile.Profile(time.thread_time if args.clock == "thread" else time.perf_counter)
            if not args.gc:
                gc.disable()
            cpu0 = time.process_time()
            profile.enable()
            for start in range(0, args.messages, args.batch):
                engine.ingestor.process(messages[start : start + args.batch])
            profile.disable()
            spent = time.process_time() - cpu0
            gc.enable()
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    by_layer: dict[str, float] = {}
    for func, (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_layer[layer_of(func)] = by_layer.get(layer_of(func), 0.0) + own
    n = args.messages
    # the profiler's own times scaled to the run's CPU (a wall clock on a loaded machine counts
    # other processes' turns too): shares as measured, microseconds as this process spent them
    scale = spent / total if total else 1.0
    print(f"{n} lab messages (12 OBX), batches of {args.batch}: {spent / n * 1e6:,.0f} us/msg of CPU under the "
          f"profiler ({args.clock} clock, {load_note()}); own time by layer (us/msg scaled to that CPU, share):")
    for layer, own in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<45} {own * scale / n * 1e6:8,.0f}  {own / total:6.1%}")
    print(f"\nthe {args.top} functions with the most own time (us/msg scaled as above, calls/msg):")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, nc, own, cum, _callers) in rows:
        short = filename.replace(str(ROOT) + "/", "")
        print(f"  {own * scale / n * 1e6:7,.1f} own {cum * scale / n * 1e6:8,.1f} cum {nc / n:7.1f}x  {short}:{line} {name}")
    for wanted in args.callers:
        for (filename, line, name), (_cc, nc, own, _cum, callers) in stats.stats.items():  # type: ignore[attr-defined]
            if wanted not in name:
                continue
            print(f"\ncallers of {filename}:{line} {name} ({nc / n:.1f}x/msg, {own * scale / n * 1e6:,.1f} us own/msg):")
            for (cf, cl, cn), (_c2, cnc, cown, _ccum) in sorted(callers.items(), key=lambda kv: -kv[1][2]):
                print(f"  {cnc / n:7.1f}x {cown * scale / n * 1e6:8,.1f} us  {cf.replace(str(ROOT) + '/', '')}:{cl} {cn}")


if __name__ == "__main__":
    main()
