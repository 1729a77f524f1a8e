"""One audited request's append alone: ``AuditLog.try_record_many([record], keep=True)`` on the real SQLite
log and its segment file, as the event loop calls it in lone mode (one caller), counted under callgrind
without the read, the middleware or the record's making around it. Thirty-fifth round (audit35): the
per-append figure the redesign of the append's state into one object was judged by; whole reads
(``bench/asgi_reads.py``) move by more than a cut this size with how many of their records went
through a group instead of lone mode, this count does not.

    CALLGRIND=1 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/shm/ap.out \\
        python bench/audit35_append.py 2000
    python bench/audc34_mypyc.py count /dev/shm/ap.out-01 2000     # k instructions an append

The records are request records as the middleware seals them (``engine.audit.record.seal``), one a
group; the log has no background thread and no checkpoint by count (``audit_checkpoint_every=0``), so
each call is the segment's path: the lock kept between calls, one ``write()``. Without ``CALLGRIND``
it prints the process CPU a call. Comparing two trees: run each tree's copy, both byte-compiled.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sealed(i: int) -> object:
    """A request's record, as the audit middleware seals it: a read of one Observation by a system."""
    from engine.audit.record import seal

    doc = {"f": 2, "act": "read", "at": "2026-01-01T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
           None, None, None, None], "node": "bench", "out": "0", "pat": [f"p{i}"], "res": ["Observation/o1"]}
    return seal(doc, (f"p:p{i}",), "2026-01-01T00:00:00.000Z")


def main() -> None:
    from engine.audit.keys import AuditKeys
    from engine.audit.log import AuditLog
    from engine.repository import open_store
    from engine.settings import Settings

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", audit_checkpoint_every=0)
        store = open_store(settings)
        log = AuditLog(store, settings, AuditKeys.load(settings))  # (not started: the appends alone)
        groups = [[sealed(i)] for i in range(n + 50)]
        for group in groups[:50]:  # warm: the lock kept, the code's specialisations made
            log.try_record_many(group, keep=True)
        timed = groups[50:]

        def run() -> None:
            append = log.try_record_many
            for group in timed:
                if append(group, keep=True) is None:
                    raise SystemExit("the log was busy: nothing else should hold it here")

        start = time.process_time()
        if os.environ.get("CALLGRIND"):
            sys.call_tracing(run, ())  # collected alone (``--toggle-collect=sys_call_tracing``)
        else:
            run()
        cpu = time.process_time() - start
        print(f"{n} lone appends: {cpu / n * 1e6:.1f} µs CPU a call; log size {log.size}")
        log.close()
        store.close()


if __name__ == "__main__":
    main()
