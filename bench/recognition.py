"""Benchmark of mutual recognition: order-time check latency, result-time flag overhead, report time.

    python bench/recognition.py --quick     # 100k stored results, 10k people (seconds)
    python bench/recognition.py             # 1M results, 100k people
    python bench/recognition.py --full      # 10M results, 100k people, report over ~2M results' flags
    python bench/recognition.py --messages 600   # only the pipeline figures (the write hooks per message)
    valgrind --tool=callgrind python bench/recognition.py --hook-instructions 200  # the hook's instructions

Results are put straight into the recognition index (the compact collection the check reads),
in bulk; orders and results whose hook time is measured go through the real repository write
path on SQLite. Then 12-OBX lab messages (the ingest bench's) go through the real ingest pipeline
in batches of 50: the CPU of the recognition hook (one call per message's write group, its own
writes included) and of the HR mark per message, and what the hook asks of its collections per
message. Prints its figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import oru_lab, warm_validators  # noqa: E402
from engine import heap  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.identity.nationalid import check_character  # noqa: E402
from engine.recognition.decision import Order  # noqa: E402
from engine.recognition.reports import ReportFilter, duplicates_report  # noqa: E402
from engine.repository.ids import deterministic_id  # noqa: E402
from engine.settings import Settings  # noqa: E402

INSTITUTIONS = ["FNXRMYY", "FNZYY", "FNYLWSY"]
TODAY = date(2026, 6, 30)


def national_id(n: int) -> str:
    born = date(1950, 1, 1) + timedelta(days=n % 20000)
    seventeen = f"320923{born:%Y%m%d}{n % 1000:03d}"
    return seventeen + check_character(seventeen)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fill_index(engine: Engine, results: int, people: int, items: list[str], rng: random.Random) -> float:
    coll = engine.recognition.index.coll
    started = time.perf_counter()
    batch: list[dict] = []
    for i in range(results):
        person = national_id(rng.randrange(people))
        inst = rng.choice(INSTITUTIONS)
        batch.append({"_id": f"DiagnosticReport/b{i}", "person": person, "patient": f"Patient/{inst}-{person}",
                      "item": rng.choice(items), "inst": inst,
                      "day": (TODAY - timedelta(days=rng.randrange(365))).isoformat(),
                      "status": "final" if rng.random() < 0.97 else "preliminary", "order": None})
        if len(batch) == 20000:
            coll.insert_many(batch)
            batch.clear()
    if batch:
        coll.insert_many(batch)
    return time.perf_counter() - started


def bench_check(engine: Engine, people: int, items: list[str], rng: random.Random, n: int) -> tuple[list[float], int]:
    rec = engine.recognition
    times = []
    hits = 0
    for _ in range(n):
        order = Order(person=national_id(rng.randrange(people)), item=rng.choice(items), institution=rng.choice(INSTITUTIONS),
                      day=TODAY - timedelta(days=rng.randrange(30)))
        t0 = time.perf_counter()
        found = rec.check(order)
        times.append((time.perf_counter() - t0) * 1000)
        hits += bool(found)
    return times, hits


def patient(engine: Engine, inst: str, n: int) -> str:
    person = national_id(n)
    pid = deterministic_id(inst, "Patient", f"M{n}")
    engine.repository.update({"resourceType": "Patient", "id": pid, "identifier": [
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
         "system": "urn:oid:2.16.156.10011.1.1", "value": person}]})
    return f"Patient/{pid}"


def code(item_loinc: str) -> dict:
    return {"coding": [{"system": "http://loinc.org", "code": item_loinc}]}


def bench_writes(engine: Engine, people: int, rng: random.Random, n: int) -> dict[str, float]:
    """Orders and results through the repository (validation, versioning, index rows, hook)."""
    org = deterministic_id("FNZYY", "Organization", "FNZYY")
    engine.repository.update({"resourceType": "Organization", "id": org, "name": "FNZYY",
                              "identifier": [{"system": "urn:huren:institution", "value": "FNZYY"}]})
    loincs = ["58410-2", "24325-3", "24362-6", "24356-8"]
    order_ms, result_ms, hook_ms = [], [], []
    rec = engine.recognition
    for i in range(n):
        p = patient(engine, "FNZYY", rng.randrange(people))
        day = TODAY - timedelta(days=rng.randrange(10))
        sr = {"resourceType": "ServiceRequest", "id": deterministic_id("FNZYY", "ServiceRequest", f"O{i}"),
              "status": "active", "intent": "order", "code": code(rng.choice(loincs)), "subject": {"reference": p},
              "authoredOn": f"{day.isoformat()}T08:00:00+08:00", "requester": {"reference": f"Organization/{org}"}}
        t0 = time.perf_counter()
        engine.repository.update(sr)
        order_ms.append((time.perf_counter() - t0) * 1000)
        dr = {"resourceType": "DiagnosticReport", "id": deterministic_id("FNZYY", "DiagnosticReport", f"R{i}"),
              "status": "final", "code": sr["code"], "subject": {"reference": p},
              "effectiveDateTime": f"{day.isoformat()}T09:00:00+08:00", "basedOn": [{"reference": f"ServiceRequest/{sr['id']}"}],
              "performer": [{"reference": f"Organization/{org}"}]}
        t0 = time.perf_counter()
        stored = engine.repository.update(dr).resource
        result_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with engine.store.transaction():
            rec.on_result(stored)  # the hook alone, again (idempotent)
        hook_ms.append((time.perf_counter() - t0) * 1000)
    return {"order_p50": pct(order_ms, .5), "order_p99": pct(order_ms, .99), "result_p50": pct(result_ms, .5),
            "result_p99": pct(result_ms, .99), "hook_mean": statistics.fmean(hook_ms), "hook_p99": pct(hook_ms, .99)}


def bench_messages(engine: Engine, count: int, batch: int = 50) -> dict[str, float]:
    """12-OBX ORU^R01 messages through the ingest pipeline: thread CPU per message in the
    recognition hook and in the HR mark, in the patient index's statement and hook and in the
    referral hook (each with the writes it makes itself: a DetectedIssue, a linked record's new
    version), and the recognition and patient index collections' calls per message."""
    repo, rec, mpi = engine.repository, engine.recognition, engine.identity
    spent = {"hook": 0.0, "mark": 0.0, "identity": 0.0, "statement": 0.0, "referral": 0.0}
    depth = threading.local()

    def timed(fn: Any, key: str) -> Any:
        def run(*args: Any) -> Any:
            outer = getattr(depth, key, 0)
            setattr(depth, key, outer + 1)
            t0 = time.thread_time()
            try:
                return fn(*args)
            finally:
                setattr(depth, key, outer)
                if not outer:  # a write the hook makes runs the hook again, inside it
                    spent[key] += time.thread_time() - t0
        return run

    def timed_scope(make: Any, key: str) -> Any:
        @contextlib.contextmanager
        def scope(*args: Any) -> Any:
            t0 = time.thread_time()
            cm = make(*args)
            cm.__enter__()
            spent[key] += time.thread_time() - t0
            try:
                yield
            except BaseException as exc:
                if not cm.__exit__(type(exc), exc, exc.__traceback__):
                    raise
            else:
                t0 = time.thread_time()
                cm.__exit__(None, None, None)
                spent[key] += time.thread_time() - t0
        return scope

    calls = 0
    for coll in (rec.index.coll, rec.checks.coll, rec.flags.coll, rec.charges, rec.flag_days, rec.check_days,
                 mpi.links.coll):
        for op in ("get", "find", "replace", "update", "delete", "insert", "insert_many"):
            real = getattr(coll, op, None)
            if real is None:
                continue

            def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                return _real(*args, **kwargs)

            setattr(coll, op, spy)
    def key(fn: Any, own: str) -> str | None:
        owner = getattr(fn, "__self__", None)
        return own if owner is rec else "identity" if owner is mpi else "referral" if owner is engine.referrals else None

    repo._batch_hooks[:] = [timed(h, k) if (k := key(h, "hook")) else h for h in repo._batch_hooks]
    repo._hooks[:] = [timed(h, k) if (k := key(h, "hook")) else h for h in repo._hooks]
    repo._marks[:] = [timed(m, "mark") if getattr(m, "__self__", None) is rec else m for m in repo._marks]
    repo._statements[:] = [timed(s, "statement") if getattr(s, "__self__", None) is mpi else s for s in repo._statements]
    # the hooks' per-batch scopes (the batch's reads first, its writes at the end) count as their hooks
    engine.ingestor.batch_scopes = tuple(
        timed_scope(s, k) if (k := key(s, "hook")) else s for s in engine.ingestor.batch_scopes)
    # how the tests of recognition items were decided: alone in their order's window (no prior
    # result possible: decided from the order's check row) or in full (order, candidates, decision)
    alone = rec._alone_in_window
    decided = {"alone": 0, "full": 0}

    def counted(*args: Any) -> bool:
        found = alone(*args)
        decided["alone" if found else "full"] += 1
        return found

    rec._alone_in_window = counted  # type: ignore[method-assign]
    messages = [(oru_lab(70_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
    for start in range(0, count, batch):
        engine.ingestor.process(messages[start:start + batch])
    del rec._alone_in_window
    out = {f"{k}_us": v / count * 1e6 for k, v in spent.items()}
    out["calls"] = calls / count
    out["alone"], out["full"] = decided["alone"] / count, decided["full"] / count
    return out


def fill_flags(engine: Engine, month_results: int, rng: random.Random) -> None:
    """A month of a county: ~3% of results are repeats inside a window (flags), ~6% of orders had a
    recognisable prior result (checks)."""
    rec = engine.recognition
    items = list(rec.rules.items.values())
    flags, checks = [], []
    for i in range(int(month_results * 0.03)):
        it = rng.choice(items)
        day = date(2026, 5, 1) + timedelta(days=rng.randrange(31))
        flags.append({"_id": f"dup-{i}", "status": rng.choice(["flagged"] * 6 + ["upheld", "overturned", "justified"]),
                      "key": str(i), "order": f"ServiceRequest/o{i}", "result": f"DiagnosticReport/r{i}",
                      "prior": f"DiagnosticReport/p{i}", "person": national_id(i), "patient": f"Patient/x{i}",
                      "item": it.code, "item_name": it.name, "category": it.category, "inst": rng.choice(INSTITUTIONS),
                      "prior_inst": rng.choice(INSTITUTIONS), "day": day.isoformat(), "order_day": day.isoformat(),
                      "prior_day": (day - timedelta(days=2)).isoformat(), "window": it.window_days,
                      "price": rec.rules.price(it.code, None), "currency": "CNY", "reason": None, "reason_text": None,
                      "reviews": [], "identified": "2026-05-01T00:00:00Z"})
    for i in range(int(month_results * 0.06)):
        it = rng.choice(items)
        day = date(2026, 5, 1) + timedelta(days=rng.randrange(31))
        checks.append({"_id": f"ServiceRequest/c{i}", "source": "order", "person": national_id(i), "item": it.code,
                       "category": it.category, "inst": rng.choice(INSTITUTIONS), "day": day.isoformat(),
                       "recognisable": [f"DiagnosticReport/p{i}"], "reason": None, "reason_effect": None,
                       "outcome": rng.choice(["recognised", "recognised", "duplicate", "pending"]), "issue": None})
    for start in range(0, len(flags), 20000):
        rec.flags.insert_many(flags[start:start + 20000])
    for start in range(0, len(checks), 20000):
        rec.checks.insert_many(checks[start:start + 20000])


def pipeline_only(count: int) -> int:
    """The pipeline figures alone, on a fresh store warmed with two batches (as the ingest
    bench's per-stage lines are taken): for paired runs against another version of the code."""
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        for start in range(0, 100, 50):
            engine.ingestor.process([(oru_lab(90_000_000 + i), "bench", "127.0.0.1:1") for i in range(start, start + 50)])
        warm_validators(engine)
        heap.settle()
        cpu0 = time.process_time()
        m = bench_messages(engine, count)
        whole = (time.process_time() - cpu0) / count * 1e6
    print(f"12-OBX ORU^R01, {count} messages in batches of 50, thread CPU per message (us): "
          + ", ".join(f"{k[:-3]} {v:.0f}" for k, v in m.items() if k.endswith("_us"))
          + f"; the whole message {whole:,.0f}; {m['calls']:.1f} store calls; tests decided per message: "
          f"{m['alone']:.2f} alone in their window, {m['full']:.2f} in full")
    return 0


def hook_inside(engine: Engine) -> dict[str, bool]:
    """Wrap ``engine``'s recognition hook and its batch scope so that every call of them runs inside a
    ctypes callback while the returned switch's ``"on"`` is true (from the start), and nothing else
    does: the inclusive cost of ``_CallPythonObject`` in ``callgrind_annotate --inclusive=yes`` is
    then the hook's own instructions (``hook_instructions``; ``bench/relink36_corrections.py`` turns
    it on for a second pass only)."""
    import ctypes

    box: dict[str, Any] = {}
    switch = {"on": True}

    def run() -> int:
        try:
            box["out"] = box["fn"]()
        except BaseException as exc:  # noqa: BLE001 -- raised again outside the callback
            box["exc"] = exc
        return 0

    trampoline = ctypes.CFUNCTYPE(ctypes.c_int)(run)

    def inside(fn: Any) -> Any:
        if not switch["on"]:
            return fn()
        box.clear()
        box["fn"] = fn
        trampoline()
        if "exc" in box:
            raise box["exc"]
        return box.get("out")

    rec, repo, ingestor = engine.recognition, engine.repository, engine.ingestor
    repo._batch_hooks[:] = [(lambda *a, _h=h, **k: inside(lambda: _h(*a, **k)))
                            if getattr(h, "__self__", None) is rec else h for h in repo._batch_hooks]

    def scoped(make: Any) -> Any:
        @contextlib.contextmanager
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            cm = inside(lambda: make(*args, **kwargs))
            inside(cm.__enter__)
            try:
                yield
            except BaseException:
                exc = sys.exc_info()
                inside(lambda: cm.__exit__(*exc))
                raise
            inside(lambda: cm.__exit__(None, None, None))
        return wrapped

    ingestor.batch_scopes = tuple(scoped(s) if getattr(s, "__self__", None) is rec else s
                                  for s in ingestor.batch_scopes)
    return switch


def hook_instructions(count: int) -> int:
    """A fixed run for callgrind (``--hook-instructions N``): a fresh store settled as the ingest
    bench settles it, then ``count`` 12-OBX lab messages in batches of 50; every call of the
    recognition hook and of its batch scope runs inside a ctypes callback (``hook_inside``), and
    nothing else does, so the inclusive cost of ``_CallPythonObject`` in ``callgrind_annotate
    --inclusive=yes`` is the hook's own instructions (its writes included), free of the load on the
    machine. Run with ``PYTHONHASHSEED=0``."""
    from bench.ingest import settle_warm

    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        settle_warm(engine, 50)
        hook_inside(engine)
        messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
        for start in range(0, count, 50):
            engine.ingestor.process(messages[start : start + 50])
    print(f"{count} 12-OBX messages through the hook inside _CallPythonObject (read its inclusive Ir)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k results, 10k people")
    ap.add_argument("--full", action="store_true", help="10M results (minutes, several GB of disk)")
    ap.add_argument("--messages", type=int, default=0, metavar="N",
                    help="only the pipeline figures: N 12-OBX messages on a fresh store (seconds)")
    ap.add_argument("--hook-instructions", type=int, default=0, metavar="N",
                    help="a fixed run of N lab messages for callgrind: the hook inside _CallPythonObject")
    args = ap.parse_args()
    if args.hook_instructions:
        return hook_instructions(args.hook_instructions)
    if args.messages:
        return pipeline_only(args.messages)
    results, people, month = (100_000, 10_000, 200_000) if args.quick else (
        (10_000_000, 100_000, 2_000_000) if args.full else (1_000_000, 100_000, 2_000_000))
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        items = list(engine.recognition.rules.items)
        load_s = fill_index(engine, results, people, items, rng)
        print(f"recognition index: {results:,} results of {people:,} people loaded in {load_s:.1f}s "
              f"({results / load_s:,.0f}/s)")
        bench_check(engine, people, items, rng, 200)  # warm the page cache
        times, hits = bench_check(engine, people, items, rng, 2000 if not args.quick else 1000)
        print(f"order-time check (index range query + decision) at {results:,} results: "
              f"p50 {pct(times, .5):.3f} ms  p99 {pct(times, .99):.3f} ms  max {max(times):.3f} ms "
              f"({hits}/{len(times)} orders had a recognisable result)")
        w = bench_writes(engine, people, rng, 100 if args.quick else 300)
        print(f"order write through the repository incl. check + DetectedIssue: p50 {w['order_p50']:.2f} ms  "
              f"p99 {w['order_p99']:.2f} ms")
        print(f"result write through the repository incl. flag: p50 {w['result_p50']:.2f} ms  p99 {w['result_p99']:.2f} ms; "
              f"flag hook alone: mean {w['hook_mean']:.2f} ms  p99 {w['hook_p99']:.2f} ms per result")
        m = bench_messages(engine, 200 if args.quick else 600)
        print(f"12-OBX ORU^R01 through the ingest pipeline (batches of 50): thread CPU per message, each with "
              f"the writes it makes: recognition hook {m['hook_us']:.0f} us, HR mark {m['mark_us']:.0f} us, "
              f"patient index statement {m['statement_us']:.0f} us and hook {m['identity_us']:.0f} us, "
              f"referral hook {m['referral_us']:.0f} us; "
              f"{m['calls']:.1f} recognition and patient index store calls per message; tests decided per "
              f"message: {m['alone']:.2f} alone in their window, {m['full']:.2f} in full")
        fill_flags(engine, month, rng)
        t0 = time.perf_counter()
        engine.recognition.rebuild_tallies()  # bulk-loaded flags: tallies from scratch (normally kept per write)
        rebuild_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = duplicates_report(engine.recognition, ReportFilter(start=date(2026, 5, 1), end=date(2026, 5, 31)), limit=100)
        report_s = time.perf_counter() - t0
        print(f"duplicates report for a month of {month:,} results ({sum(rep['totals']['by_status'].values()):,} flags, "
              f"{int(month * 0.06):,} checked orders for the rate): {report_s:.3f} s (first page of 100 rows); "
              f"money at stake CNY {rep['totals']['money_at_stake']:,.2f}; tallies rebuilt from scratch in {rebuild_s:.1f} s")
        t0 = time.perf_counter()
        rep = duplicates_report(engine.recognition, ReportFilter(start=date(2026, 5, 1), end=date(2026, 5, 31)), limit=None)
        print(f"full export (every row of the month, as the CSV does): {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
