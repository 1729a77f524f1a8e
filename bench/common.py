"""What several benchmarks print the same way: the machine's load beside each figure, and a
warm-then-time loop reporting calls per second with wall and CPU time per call."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def load_note() -> str:
    """Figures on a shared machine mean little without the load they were taken under."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "load average n/a"


def rate(label: str, n: int, fn: Callable[[], object], width: int = 58) -> None:
    """Call ``fn`` once to warm caches, then ``n`` times; print calls/s, wall and CPU µs per call."""
    fn()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{label:<{width}} {n / dt:>9,.0f} /s   ({dt / n * 1e6:,.1f} µs wall, {cpu / n * 1e6:,.1f} µs CPU each, n={n})")


def cpu_per_call(fn: Callable[[], object], n: int, scale: float = 1e6) -> float:
    """The median over 5 rounds of ``n`` calls of ``fn``'s process CPU time per call, times ``scale``
    (1e6: µs; 1e3: ms). The median, not the best: a figure on a shared machine is one of five."""
    rounds = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        rounds.append((time.process_time() - t0) / n * scale)
    return statistics.median(rounds)
