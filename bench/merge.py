"""Merge-rules benchmark: what combining each incoming version with the stored one costs at ingest.

    python bench/merge.py [--quick] [--orders N] [--rounds R] [--write-path N]

Feeds, through the real ingestor (parse, convert, repository on SQLite, patient index, recognition,
audit), for N orders: the HIS order (ORM^O01 with ORC-16 reason and ORC-9 order time), the LIS
result for the same order (ORU^R01, 3 OBX, same placer/filler numbers) and a re-sent ADT^A08 of the
patient. Prints

  (a) the CPU time spent inside ``MergeRules.combine`` per message (µs), timed on the real path;
  (b) the whole ingest CPU time per message with the shipped rules versus rules that replace
      everything (the merge's fast path, i.e. the behaviour before merge rules), in alternating
      rounds on fresh data directories, median of the rounds;
  (c) the repository's write path for the 12-OBX lab result of ``bench/ingest.py`` (in-process
      batches of 50, as group commit forms them): the exclusive CPU of "merge + version" and of
      "write_many (rest)" per message by ``bench/ingest.py``'s stage clock (the hooks' statements
      and guards, which run inside the first, timed apart), with the calls per
      message that the path makes (the backend's current-version reads, the timed calls whose
      clock reads the figures include) and the whole CPU per message. ``--write-path N`` runs
      only (c), over N messages. ``--repeats``: each of the N messages is a returning person's
      (a new record number, the same national ID) repeated test, sent after the person's first
      one (not timed): each stores the derived writes of the hooks, a DetectedIssue and a new
      version of the person's earlier record, which (c) then counts per message too;
  (d) ``--per-version N``: the repository's write path alone (no write hooks, marks or statements;
      the shipped merge rules and validator, SQLite), per stored version, for N 12-OBX messages
      written as ingest writes them (``write_many`` per message, batches of 50 in one transaction,
      each batch converted just before its writes, as ingest converts it):
      first versions, then the same resources with every result's value changed (new versions:
      the stored version parsed, merged, compared), then sent again unchanged. Thread CPU per
      version of ``write_many`` in all and without the index rows and the backend's put.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.engine import Engine  # noqa: E402
from engine.identity.nationalid import check_character  # noqa: E402
from engine.merge_rules import MergeRules, shipped  # noqa: E402
from engine.settings import Settings  # noqa: E402

REPLACE_ALL = {"sources": {"api": ["api"]}, "defaults": {"modes": {"other": "replace", "api": "replace"},
                                                      "conflict": {"other": "warn"}}, "resources": {}}


def person(n: int) -> str:
    body = f"320923198504{(n % 28) + 1:02d}{(n % 400) * 2 + 1:03d}"
    return body + check_character(body)


def messages(n: int) -> list[bytes]:
    nid, day = person(n), f"{(n % 28) + 1:02d}"
    pid = f"PID|1||{nid}^^^公安部^NNCHN~MZ{n:06d}^^^FNZYY^MR||王^建国||198504{day}|M|||||1380000{n % 10000:04d}\r"
    head = "|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
    orm = (f"MSH|^~\\&|HIS|FNZYY|HUREN|FUNING|20260314080000||ORM^O01^ORM_O01|ORM{n:07d}{head}" + pid
           + f"ORC|NW|P{n}^HIS|||||||20260314080000|||D1^医^生||||R01^病情变化^HUREN\r"
           + f"OBR|1|P{n}^HIS||1020^肝功能八项^L|||20260314080000\r")
    oru = (f"MSH|^~\\&|LIS|FNZYY|HUREN|FUNING|20260314093000||ORU^R01^ORU_R01|ORU{n:07d}{head}" + pid
           + f"ORC|RE|P{n}^HIS|F{n}^LIS||CM\r"
           + f"OBR|1|P{n}^HIS|F{n}^LIS|1020^肝功能八项^L|||20260314093000|||||||||D1^医^生||||||20260314093000|||F\r"
           + "".join(f"OBX|{i}|NM|{c}^{c}^L||{v}|U/L|9-50|N|||F|||20260314093000\r"
                     for i, (c, v) in enumerate((("ALT", "35"), ("AST", "30"), ("GGT", "40")), 1)))
    adt = (f"MSH|^~\\&|HIS|FNZYY|HUREN|FUNING|20260314100000||ADT^A08^ADT_A01|ADT{n:07d}{head}"
           + "EVN|A08|20260314100000\r" + pid + "PV1|1|O|内科门诊^^^FNZYY\r")
    return [m.encode("utf-8") for m in (orm, oru, adt)]


class Timed:
    """``MergeRules`` whose ``combine`` adds its CPU time to a counter (everything else delegated)."""

    def __init__(self, rules: MergeRules) -> None:
        self.rules, self.seconds, self.calls = rules, 0.0, 0

    def combine(self, stored: Any, incoming: Any, source: str) -> Any:
        t0 = time.thread_time()  # this thread only: the audit and ingest threads run beside it
        try:
            return self.rules.combine(stored, incoming, source)
        finally:
            self.seconds += time.thread_time() - t0
            self.calls += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rules, name)


def run(orders: int, rules: MergeRules, timed: bool) -> tuple[float, float, int, int]:
    """(ingest CPU s per message, combine CPU s per message, messages, combine calls)."""
    batch = [(m, "bench", "127.0.0.1") for n in range(orders) for m in messages(n)]
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as eng:
        probe = Timed(rules) if timed else None
        eng.repository.merge = probe or rules  # type: ignore[assignment]
        for raw in messages(10**6):  # warm-up (plans compiled, schema read once per process): not counted
            eng.ingestor.process([(raw, "bench", "127.0.0.1")])
        if probe is not None:
            probe.seconds, probe.calls = 0.0, 0
        t0 = time.process_time()
        for raw in batch:  # one message at a time, as a sender waiting for each ACK
            [out] = eng.ingestor.process([raw])
            assert out.code == "AA", out.ack
        total = time.process_time() - t0
    return total / len(batch), (probe.seconds / len(batch)) if probe else 0.0, len(batch), (probe.calls if probe else 0)


RETURNS = 499_000  # oru_lab(n) and oru_lab(n + RETURNS): the same person (national ID), another record


def write_path(count: int, batch: int = 50, repeats: bool = False) -> None:
    """(c): see the module docstring."""
    from bench.ingest import StageClock, oru_lab, settle_warm

    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as eng:
        settle_warm(eng, batch)
        if repeats:  # each person's first result, before the clock starts
            first = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            for start in range(0, count, batch):
                eng.ingestor.process(first[start : start + batch])
        clock = StageClock()
        clock.attach(eng)
        repo = eng.repository  # the statements and guards are the hooks' code: timed apart from the path
        repo._statements[:] = [clock.wrap(f, "statements and guards") for f in repo._statements]
        repo._guards[:] = [clock.wrap(f, "statements and guards") for f in repo._guards]
        reads = {"current_many": 0, "current": 0}
        backend = eng.repository.backend
        for name in reads:
            def counted(*args: Any, _fn: Any = getattr(backend, name), _name: str = name) -> Any:
                reads[_name] += 1
                return _fn(*args)
            setattr(backend, name, counted)
        derived0 = derived_count(eng)
        base = 50_000_000 + (RETURNS if repeats else 0)
        messages = [(oru_lab(base + i), "bench", "127.0.0.1:1") for i in range(count)]
        cpu0 = time.process_time()
        for start in range(0, count, batch):
            for out in eng.ingestor.process(messages[start : start + batch]):
                assert out.code == "AA", out.ack
        total = time.process_time() - cpu0
        derived = derived_count(eng) - derived0
    seconds, measured = clock.corrected()  # the measurement's own clock reads taken out of each stage
    per = {k: v / count * 1e6 for k, v in seconds.items()}
    mine = ("merge + version (repository)", "· repository write_many (rest)")
    print(f"(c) write path, ORU^R01 12 OBX{', repeats of returning people' if repeats else ''}, {count} messages "
          f"in batches of {batch}, {derived / count:.2f} derived versions per message: "
          + ", ".join(f"{name.lstrip('· ').split(' (')[0]} {per.get(name, 0.0):.0f} µs" for name in mine)
          + f" (together {sum(per.get(name, 0.0) for name in mine):.0f} µs/msg; the hooks' statements and "
          f"guards apart: {per.get('statements and guards', 0.0):.0f} µs/msg); backend reads "
          f"{per.get('backend reads', 0.0):.0f} µs/msg in {reads['current_many'] / count:.2f} current_many + "
          f"{reads['current'] / count:.2f} current calls per message; {clock.calls / count:.0f} timed calls per "
          f"message ({measured / count * 1e6:.0f} µs/msg of clock, taken out of the stages); whole ingest "
          f"{total / count * 1e6:,.0f} µs CPU per message")


def per_version(count: int, batch: int = 50) -> None:
    """(d): see the module docstring."""

    from adapters.convert import convert
    from adapters.hl7v2.parser import parse
    from bench.ingest import oru_lab
    from conformance.validate import Validator
    from engine.repository import open_store
    from engine.repository.fhir import FhirRepository
    from mappings.site import Site

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        settings.data_dir.mkdir(parents=True)
        site = Site.load(settings)
        store = open_store(settings)
        repo = FhirRepository(store, validator=Validator.from_settings(settings), merge=MergeRules.from_site(site))
        spent = {"rows": 0.0, "put": 0.0}

        clock = time.thread_time
        reads = 20_000
        t0 = clock()
        for _ in range(reads):
            clock()
        read_cost = (clock() - t0) / reads  # one read of the thread's CPU clock (a system call here)
        timers = {"rows": 0, "put": 0}

        def timed(fn: Any, name: str) -> Any:
            def call(*args: Any) -> Any:
                timers[name] += 1
                t0 = clock()
                try:
                    return fn(*args)
                finally:
                    spent[name] += clock() - t0
            return call

        repo.indexer.rows = timed(repo.indexer.rows, "rows")  # type: ignore[method-assign]
        repo.backend.put_many = timed(repo.backend.put_many, "put")  # type: ignore[method-assign]

        def converted(i: int) -> list[dict[str, Any]]:
            return [e["resource"] for e in convert(parse(oru_lab(60_000_000 + i).decode()), site,
                                                   institution="FNXRMYY").bundle["entry"]]

        def changed(i: int) -> list[dict[str, Any]]:
            group = converted(i)
            for r in group:
                if r["resourceType"] == "Observation" and isinstance(r.get("valueQuantity"), dict):
                    r["valueQuantity"]["value"] = r["valueQuantity"]["value"] + 1
            return group

        def write(kind: str, make: Any, n: int) -> None:
            """Per batch, as ingest: its messages' resources made (converted; not timed), then the
            batch written in one block (the resources a batch old, as cold as ingest's)."""
            for name in spent:
                spent[name], timers[name] = 0.0, 0
            versions = calls = 0
            total = 0.0
            for start in range(0, n, batch):
                part = []
                for i in range(start, min(start + batch, n)):
                    part.append(make(i))
                with store.transaction(), repo.known_current([(r["resourceType"], r["id"]) for g in part for r in g]):
                    for group in part:
                        t0 = clock()
                        results = repo.write_many(group, source="ORU", validated=True)
                        total += clock() - t0
                        versions += sum(r.changed for r in results)
                        calls += len(results)
            # each timed call: two clock reads, one inside its own figure and one in write_many's
            rows, put = (spent[k] - timers[k] * read_cost for k in ("rows", "put"))
            total -= (n + sum(timers.values())) * read_cost * 2
            own = total - rows - put
            if not versions:
                print(f"(d) {kind}: {calls / n:.1f} resources a message, no new version: write_many "
                      f"{total / n * 1e6:,.0f} us a message, {total / calls * 1e6:.1f} us a resource")
                return
            print(f"(d) {kind}: {calls / n:.1f} resources a message, {versions / n:.1f} new versions; write_many "
                  f"{total / n * 1e6:,.0f} us a message: index rows {rows / n * 1e6:.0f}, backend put "
                  f"{put / n * 1e6:.0f}, the repository's own {own / n * 1e6:.0f} ({own / versions * 1e6:.1f} us "
                  f"per new version)")

        write("first versions (warm-up)", converted, 2)  # warm-up: the validator's and the index plans' first use
        write("first versions", lambda i: converted(i + 2), count)
        write("new versions (every result's value changed)", lambda i: changed(i + 2), count)
        write("unchanged (sent again as stored)", lambda i: changed(i + 2), count)
        store.close()


def derived_count(eng: Any) -> int:
    """DetectedIssue versions and Patient versions after the first: what the hooks derived."""
    repo = eng.repository
    issues = repo.search("DetectedIssue", [("_summary", "count")]).total or 0
    rows = eng.store.query("SELECT count(*) FROM fhir_history WHERE type = 'Patient'") if hasattr(eng.store, "query") else [[0]]
    return issues + rows[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (make bench)")
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write-path", type=int, default=0, metavar="N", help="only (c), over N messages")
    parser.add_argument("--repeats", action="store_true", help="(c) on returning people's repeated tests")
    parser.add_argument("--per-version", type=int, default=0, metavar="N",
                        help="only (d): the repository's write path per version, over N messages")
    args = parser.parse_args()
    if args.per_version:
        per_version(args.per_version)
        return
    if args.write_path:
        write_path(args.write_path, repeats=args.repeats)
        return
    orders, rounds = (40, 2) if args.quick else (args.orders, args.rounds)

    per_msg, merge_cost, count, calls = run(orders, shipped(), timed=True)
    print(f"(a) {count} messages (ORM + ORU + ADT A08 per order), {calls / count:.1f} combines per message: "
          f"combine {merge_cost * 1e6:.1f} µs CPU per message ({merge_cost / per_msg:.1%} of ingest CPU "
          f"{per_msg * 1e6:.0f} µs/message; the timer's own cost included)")

    with_rules, replace_all = [], []
    plain = MergeRules(REPLACE_ALL, "replace-all")
    for _ in range(rounds):
        with_rules.append(run(orders, shipped(), timed=False)[0])
        replace_all.append(run(orders, plain, timed=False)[0])
    a, b = statistics.median(with_rules), statistics.median(replace_all)
    print(f"(b) ingest CPU per message, median of {rounds} alternating rounds: shipped rules {a * 1e6:.0f} µs, "
          f"replace-all {b * 1e6:.0f} µs, difference {(a - b) * 1e6:+.0f} µs ({a / b - 1:+.1%})")
    write_path(100 if args.quick else 600)


if __name__ == "__main__":
    main()
