"""What the second pass of a SQLite put costs: the index plans' rows (``Indexer.rows``) against the
keys hashed from them (``RowHasher.keys``), per 12-OBX lab message, so the fused pass (plans
emitting ``ix_hash``'s ``(h, q)`` directly, issue 15) is judged by its ceiling before it is built.

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/hashix34_fused.py --part keys|rows|none [--messages 100]

Runs ``bench/ingest.py``'s warm-up, then ingests ``--messages`` lab messages (batches of 50) with the
SQLite backend's ``put_many`` recording what it was given. Replays, inside one ``operator.call``
(callgrind's toggle), one part of the put over those items as the put met them: ``rows`` the plans
over each stored body, ``keys`` the hashing of each resource's rows (with its batch's target rids,
fresh hashers warmed by the first batch so a message's new ids are new to them), ``floor`` the least a
fused plan must still do per row (every key computed beforehand: a lookup and a set a row),
``none`` nothing (the toggle's own floor). Divide the collected instructions by ``--messages``.
"""

from __future__ import annotations

import argparse
import operator
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import oru_lab, settle_warm  # noqa: E402


def capture(engine: Any, first: int, count: int, batch: int) -> list[list[tuple[Any, Any]]]:
    """The put's ``(record, rows)`` items, one list per put, of ``count`` lab messages."""
    from engine.repository.sqlite_fhir import SqliteFhirBackend

    puts: list[list[tuple[Any, Any]]] = []
    original = SqliteFhirBackend.put_many

    def recording(self: Any, items: Any) -> None:
        puts.append([(rec, rows) for rec, rows, _prev in items if rows is not None])
        original(self, items)

    SqliteFhirBackend.put_many = recording  # type: ignore[method-assign]
    try:
        messages = [(oru_lab(first + i), "bench", "127.0.0.1:1") for i in range(count)]
        for start in range(0, count, batch):
            engine.ingestor.process(messages[start : start + batch])
    finally:
        SqliteFhirBackend.put_many = original  # type: ignore[method-assign]
    return puts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("keys", "floor", "rows", "none"), default="keys")
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    from engine import fhirjson
    from engine.engine import Engine
    from engine.repository.sqlite_rows import RowHasher
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine, args.batch)
            warm = capture(engine, 40_000_000, args.batch, args.batch)
            puts = capture(engine, 50_000_000, args.messages, args.batch)
            repo = engine.repository
            backend = repo.backend
            backend = getattr(backend, "main", backend)
            indexer = repo.indexer
            narrowed = {t: backend._hasher(t).narrowed for put in warm + puts for rec, _r in put for t in [rec.type]}
            hashers = {t: RowHasher(t, n) for t, n in narrowed.items()}
            bodies = [[fhirjson.loads(rec.body) for rec, _r in put] for put in puts]

            def rids_of(put: list[tuple[Any, Any]]) -> dict[tuple[str, str], int]:
                return {(rec.type, rec.id): 1_000_000 + i for i, (rec, _r) in enumerate(put)}

            for put in warm:
                rids = rids_of(put)
                for rec, rows in put:
                    hashers[rec.type].keys(rows, rids)
            prepared = [(rids_of(put), put) for put in puts]

            def keys() -> None:
                for rids, put in prepared:
                    for rec, rows in put:
                        hashers[rec.type].keys(rows, rids)

            # every row's key computed beforehand: what is left is the least a fused plan still
            # does per row (a lookup of the row's key and a set into the resource's keys)
            known: dict[Any, Any] = {}
            for rids, put in prepared if args.part == "floor" else ():
                for rec, rows_ in put:
                    hasher = hashers[rec.type]
                    hasher.keys(rows_, rids)
                    for row in rows_.tokens:
                        known[row] = hasher._tokens[row]
                    for row in rows_.refs:
                        # a by-target row (keyed by the target's rid, not remembered): a key all the same
                        known[row] = hasher._refs.get(row, (hash(row), 0))

            def floor() -> None:
                for _rids, put in prepared:
                    for _rec, rows_ in put:
                        out: dict[Any, None] = {}
                        for row in rows_.tokens:
                            out[known[row]] = None
                        for row in rows_.refs:
                            key = known[row]
                            if key is not None:
                                out[key] = None

            def rows() -> None:
                plan = indexer.rows
                for put in bodies:
                    for body in put:
                        plan(body)

            part = {"keys": keys, "floor": floor, "rows": rows, "none": lambda: None}[args.part]
            cpu0 = time.process_time()
            operator.call(part)
            spent = time.process_time() - cpu0
    n = sum(len(p) for p in puts)
    print(f"{args.part}: {args.messages} messages, {len(puts)} puts, {n} resources with rows; "
          f"{spent / args.messages * 1e6:,.1f} us/msg of CPU; divide the collected instructions by {args.messages}")


if __name__ == "__main__":
    main()
