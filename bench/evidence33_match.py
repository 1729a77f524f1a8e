"""The order-time match (``decision.find_recognisable``) before and after it kept each prior test's
entries for the evidence pairs (evidence33): a liver panel order against 14 days of a person's
panels (a report and its six analyte results a day, two institutions) and a blood count against
its reports. ``--rev`` names the commit to compare against (its decision.py, loaded beside).

    python bench/evidence33_match.py --rev fbe2e7c4 --n 20000
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/evidence33_match.py --which old --rev HEAD --n 201

(the instruction count of a run of --n 1 taken from one of --n 201, over 200, is a match's; ``--which old
--rev HEAD`` loads the current file the same way as the older one, so both are measured alike)
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.recognition import decision  # noqa: E402
from engine.recognition.rules import Institution, load_rules, rule_folders  # noqa: E402

ANALYTES = ("ALT", "AST", "TBIL", "ALB", "ALP", "GGT")


def old_decision(rev: str) -> Any:
    """``engine/recognition/decision.py`` as of ``rev``, loaded as a module of its own."""
    text = subprocess.run(["git", "show", f"{rev}:engine/recognition/decision.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "decision_old.py"
    path.write_text(text, "utf-8")
    spec = importlib.util.spec_from_file_location("decision_old", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["decision_old"] = mod  # dataclasses read their module
    spec.loader.exec_module(mod)
    return mod


def world(mod: Any) -> tuple[Any, list[tuple[Any, list[Any]]]]:
    def member(code: str, grade: str) -> Institution:
        return Institution(code, community="c", qc_passed=frozenset({"all"}), qc_until=date(2099, 12, 31), grade=grade)

    rules = load_rules(rule_folders(None), {"A": member("A", "三级"), "B": member("B", "二级")})
    day0 = date(2026, 3, 20)
    cases = []
    for item, per_day in (("LFT", ANALYTES), ("CBC", ())):
        cands = []
        for back in range(1, 15):
            day = day0 - timedelta(days=back)
            inst = "A" if back % 2 else "B"
            obs = [f"Observation/{item}-{back}-{a}" for a in per_day]
            cands.append(mod.PriorResult(f"DiagnosticReport/{item}-{back}", "P", item, inst, day, "final",
                                         results=tuple(obs)))
            cands += [mod.PriorResult(ref, "P", item, inst, day, "final", analytes=(a,)) for ref, a in zip(obs, per_day, strict=True)]
        order = mod.Order("P", item, "B", day0, ref="ServiceRequest/x", analytes=("ALT", "AST") if per_day else ())
        cases.append((order, cands))
    return rules, cases


def run(mod: Any, n: int, item: str | None = None, sources: bool = False) -> float:
    rules, cases = world(mod)
    cases = [c for c in cases if item is None or c[0].item == item]
    start = time.process_time()
    for _ in range(n):
        for order, cands in cases:
            if sources:  # as a flag's decision asks it (the entries for the evidence pairs)
                mod.find_recognisable(order, cands, rules, {})
            else:
                mod.find_recognisable(order, cands, rules)
    return (time.process_time() - start) / (n * len(cases)) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="fbe2e7c4")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--which", choices=("both", "old", "new"), default="both")
    ap.add_argument("--item", choices=("LFT", "CBC"), help="one case only (default: both)")
    ap.add_argument("--sources", action="store_true", help="now: as a flag's decision asks (with the pairs' entries)")
    args = ap.parse_args()
    if args.which in ("both", "old"):
        print(f"before ({args.rev}): {run(old_decision(args.rev), args.n, args.item):.1f} us a match")
    if args.which in ("both", "new"):
        print(f"now{' (sources)' if args.sources else ''}: {run(decision, args.n, args.item, args.sources):.1f} us a match")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
