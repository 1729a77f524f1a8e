"""What an ``Engine`` costs to open and close: CPU per open+close on a fresh data directory and on
reopening an existing store, and the SQL statements one open runs (counted by SQLite's trace hook).

    python bench/engine_open.py                 # 20 opens each way, 3 runs
    python bench/engine_open.py -n 40 --runs 5
    python bench/engine_open.py --profile       # also cProfile's cumulative top 45 (fresh opens)
    python bench/engine_open.py --statements    # also the statements of one fresh and one reopen
    python bench/engine_open.py --only fresh -n 12   # only N opens, no figures: for callgrind

Instructions, repeatable on a busy machine: the difference of two callgrind totals (N = 2 and 12)
over 10 is one open+close's count (each run opens one more to warm up):

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/engine_open.py --only fresh -n 2

What is measured (rv44c LOW 6; forty-fourth round, fix44): a node opens ONE Engine per process (``huren
serve``, a CLI command), and that open makes its new store as always -- ``engine.store_template`` copies a
store from a per-process template only from a process's third new store on, a path production never
takes, nor does it find its recognition rules built by an earlier open (``rules.load_rules(shared=True)``).
So the "fresh data dir" figure is taken with the template off (``store_template._off``) and the shared
rules emptied before each open: every open makes its store and builds its rules as a node's start does
(what stays warm, as in any loop in one process: imports, compiled patterns, the site files' parse cache --
a node's first open pays those once more); the reopen figure is a restart's (its rules built anew too).
The test suite, which opens ~5,000 Engines in a few processes, takes the copy and the shared rules:
"fresh, template copy (tests)" is its per-test figure, shown beside (``--only fresh-copy`` for
callgrind). CPU time (``time.process_time``) rather than wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_note  # noqa: E402
from engine import store_template  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.recognition import rules  # noqa: E402
from engine.settings import Settings  # noqa: E402


def settings_in(base: Path) -> Settings:
    return Settings(data_dir=base / "var", http_port=0, mllp_port=0)


def fresh(root: Path) -> Callable[[], None]:
    """Open and close an Engine on a data directory made for it, its store made and its rules built as a
    node's one open makes them (the template off, no rules kept from an earlier open)."""
    def one() -> None:
        store_template._off = True
        rules._BUILT.clear()
        Engine(settings_in(Path(tempfile.mkdtemp(dir=root)))).close()
    return one


def fresh_copy(root: Path) -> Callable[[], None]:
    """The same, its store copied from this process's template as the test suite's opens are (the template
    made by the first two opens, before the measured ones: ``cpu_ms`` warms up with one, this with two)."""
    def one() -> None:
        store_template._off = False
        Engine(settings_in(Path(tempfile.mkdtemp(dir=root)))).close()
    one()
    return one


def reopen(root: Path) -> Callable[[], None]:
    """Open and close an Engine on one data directory an Engine made before (a restart: its rules built anew)."""
    base = Path(tempfile.mkdtemp(dir=root))
    Engine(settings_in(base)).close()

    def one() -> None:
        rules._BUILT.clear()
        Engine(settings_in(base)).close()
    return one


def cpu_ms(fn: Callable[[], None], n: int) -> float:
    fn()  # warm: imports, site files, compiled patterns
    c0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - c0) / n * 1000


@contextmanager
def traced() -> Iterator[list[str]]:
    """Every statement run on a connection opened inside the block (SQLite's trace callback)."""
    seen: list[str] = []
    real = sqlite3.connect

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = real(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(seen.append)
        return conn
    sqlite3.connect = connect  # type: ignore[assignment]
    try:
        yield seen
    finally:
        sqlite3.connect = real


def kind(sql: str) -> str:
    words = sql.split()
    head = " ".join(words[:2]).upper() if words else ""
    if head.startswith("CREATE"):
        return "CREATE " + words[1].upper()
    return words[0].upper() if words else ""


def statements(label: str, fn: Callable[[], None], show: bool) -> None:
    with traced() as seen:
        fn()
    counts = collections.Counter(kind(s) for s in seen)
    print(f"{label:<34} {len(seen):>5} statements  " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    if show:
        for s in seen:
            print("    " + " ".join(s.split())[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="opens per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true", help="print each statement of one open")
    parser.add_argument("--only", choices=("fresh", "fresh-copy", "reopen"),
                        help="only run N opens+closes (no figures)")
    args = parser.parse_args()
    if args.only:
        with tempfile.TemporaryDirectory(prefix="engine-open-") as tmp:
            fn = {"fresh": fresh, "fresh-copy": fresh_copy, "reopen": reopen}[args.only](Path(tmp))
            for _ in range(args.n + 1):
                fn()
        return
    print(load_note())
    with tempfile.TemporaryDirectory(prefix="engine-open-") as tmp:
        root = Path(tmp)
        ways = {"fresh data dir (a node's open)": fresh(root), "reopen existing store": reopen(root),
                "fresh, template copy (tests)": fresh_copy(root)}
        for label, fn in ways.items():
            runs = [cpu_ms(fn, args.n) for _ in range(args.runs)]
            print(f"{label:<34} {statistics.median(runs):6.1f} ms CPU per open+close (median of {args.runs}; "
                  + ", ".join(f"{r:.1f}" for r in runs) + f"; n={args.n})")
        for label, fn in ways.items():
            statements(label, fn, args.statements)
        if args.profile:
            one = fresh(root)
            pr = cProfile.Profile()
            pr.enable()
            for _ in range(args.n):
                one()
            pr.disable()
            pstats.Stats(pr).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
