"""What deciding a recognition flag at read time costs a clinician's flag search (labelsmend19).

    python bench/flag_search.py             # 300 flags, 200 searches per figure
    python bench/flag_search.py --flags 1000 --n 50

In process, on the real SQLite store (a temporary data directory): ``--flags`` DetectedIssues,
each citing its order, repeated result and prior result (three records) as the recognition hook
writes them, ``--labelled`` of the prior results labelled R. Prints process CPU time per search
for a system caller (shown every label: nothing decided) and a clinician (labels R and V
withheld: each flag is admitted only when no record it cites is labelled so, the cited records
read by primary key), for a first page (``_count=50``, the total counted), ``_summary=count``,
and one flag read by id. Run the two codes in turn for paired figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.auth.caller import Caller  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.repository.scoped import ScopedRepository  # noqa: E402
from engine.settings import Settings  # noqa: E402

CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def seed(engine: Engine, flags: int, labelled: int) -> None:
    repo = engine.repository
    repo.update({"resourceType": "Patient", "id": "alice"})
    for n in range(flags):
        for kind in ("prior", "repeat"):
            report = {"resourceType": "DiagnosticReport", "id": f"{kind}-{n}", "status": "final",
                      "code": {"text": "血常规"}, "subject": {"reference": "Patient/alice"}}
            if kind == "prior" and n < labelled:
                report["meta"] = {"security": [{"system": CONF, "code": "R"}]}
            repo.update(report)
        repo.update({"resourceType": "ServiceRequest", "id": f"order-{n}", "status": "active", "intent": "order", "code": {"text": "血常规"},
                     "subject": {"reference": "Patient/alice"}})
        repo.update({"resourceType": "DetectedIssue", "id": f"dup-{n}", "status": "final",
                     "patient": {"reference": "Patient/alice"},
                     "implicated": [{"reference": f"ServiceRequest/order-{n}"},
                                    {"reference": f"DiagnosticReport/repeat-{n}"},
                                    {"reference": f"DiagnosticReport/prior-{n}"}],
                     "evidence": [{"detail": [{"reference": f"DiagnosticReport/prior-{n}"}]},
                                  {"detail": [{"reference": f"DiagnosticReport/repeat-{n}"}]}],
                     "detail": "血常规 repeated at FNZYY, 2 days after a recognisable result of FNXRMYY"})


def cpu_per_call(fn: Callable[[], object], n: int, rounds: int = 3) -> float:
    """Best of ``rounds`` of ``n`` calls: process CPU µs per call."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - c0) / n * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flags", type=int, default=300)
    ap.add_argument("--labelled", type=int, default=10)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0))
        try:
            seed(engine, args.flags, args.labelled)
            callers = {
                "system": Caller(kind="system", subject="his", client_id="his", scopes=("system/*.rs",)),
                "clinician": Caller(kind="user", subject="dr", client_id="ward",
                                    scopes=("user/DetectedIssue.rs", "user/DiagnosticReport.rs")),
            }
            print(f"{args.flags} flags, {args.labelled} citing an R result; CPU µs per call (best of 3)")
            for name, caller in callers.items():
                def page(c: Caller = caller) -> object:
                    return ScopedRepository(engine.repository, c).search("DetectedIssue", [("_count", "50")])

                def count(c: Caller = caller) -> object:
                    return ScopedRepository(engine.repository, c).search("DetectedIssue", [("_summary", "count")])

                def read(c: Caller = caller) -> object:
                    return ScopedRepository(engine.repository, c).read("DetectedIssue", f"dup-{args.flags - 1}")

                shown = page().total  # type: ignore[attr-defined]
                print(f"  {name:<10} page of 50 (total {shown}): {cpu_per_call(page, args.n // 4):>9,.0f}   "
                      f"_summary=count: {cpu_per_call(count, args.n // 4):>9,.0f}   "
                      f"read: {cpu_per_call(read, args.n):>7,.0f}")
        finally:
            engine.close()


if __name__ == "__main__":
    main()
