"""Benchmark the FHIR repository: prints figures, asserts nothing (see issue 2 for the targets).

First, the storage side of ingest (SQLite): a 12-OBX ORU^R01 lab message through the in-process
pipeline, counting what it leaves in each table (index rows and B-tree entries per message, from
the tables themselves) and the CPU of the storage stages (indexing, backend put, backend reads);
then the index extraction alone on the resources that run indexed, by the compiled plans
(``Indexer.rows``) and by the interpreter they are held to (``Indexer.interpret``), in turn, and
the plans per resource type; the run's puts replayed into a fresh store of the engine's page size
(SQL per table, the put's Python), and that Python part by part.

Then per backend (SQLite always; MongoDB with --mongodb-uri or HUREN_MONGODB_URI):
  * Observation writes/s in transaction Bundles of 100 (PUT, deterministic ids, as ingest sends);
  * p50/p99 of identifier search and of subject+code+latest search at each stored size;
  * Patient/$everything for a patient with 1,000 resources;
  * reads/s over real HTTP (uvicorn + uvloop/httptools in this process, wrk as the load client
    when installed, else a small Python client), every read authenticated and audited.

    python bench/repository.py --quick          # 10k and 30k Observations (a minute or so)
    python bench/repository.py                  # 100k and 1M (long on 2 shared cores)
    python bench/repository.py --ingest-only    # the ingest storage figures alone
    python bench/repository.py --updates-only   # the ingest figures of new versions alone
    python bench/repository.py --growth 600,3000,10000   # pages a batch's commit writes as the store grows
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import load_note  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.repository.ids import deterministic_id  # noqa: E402
from engine.settings import Settings  # noqa: E402

LOINC = "http://loinc.org"
CODES = [f"{1000 + i}-{i % 10}" for i in range(20)]
IDENT = "urn:oid:2.16.156.10011.1.FNXRMYY.lab"
PER_PATIENT = 100


def observation(n: int) -> dict[str, Any]:
    pid = f"pat{n // PER_PATIENT}"
    code = CODES[n % len(CODES)]
    day = 1 + (n // len(CODES)) % 28
    oid = deterministic_id("FNXRMYY", "Observation", f"lab-{n}")
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "identifier": [{"system": IDENT, "value": f"lab-{n}"}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}, {"system": "urn:local:FNXRMYY", "code": f"L{code}"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": f"2024-{1 + (n // 560) % 12:02d}-{day:02d}T08:{n % 60:02d}:00+08:00",
        "issued": "2024-06-01T10:00:00+08:00",
        "performer": [{"reference": "Organization/fnxrmyy"}],
        "valueQuantity": {"value": round(100 + (n % 50) * 1.1, 1), "unit": "g/L",
                          "system": "http://unitsofmeasure.org", "code": "g/L"},
    }


def fill(engine: Engine, start: int, stop: int) -> tuple[float, float]:
    """Write Observations start..stop in transaction Bundles of 100.

    Returns (writes per wall-clock second, writes per CPU-second of this process): on a shared
    machine the second says what the code costs, the first what the machine allowed.
    """
    repo = engine.repository
    t0, c0 = time.perf_counter(), time.process_time()
    for lo in range(start, stop, 100):
        entries = [{"resource": o, "request": {"method": "PUT", "url": f"Observation/{o['id']}"}}
                   for o in (observation(n) for n in range(lo, min(lo + 100, stop)))]
        repo.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    n = stop - start
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def _p(samples: list[float], q: float) -> float:
    samples = sorted(samples)
    return samples[min(len(samples) - 1, int(len(samples) * q))]


def percentiles(wall: list[float], cpu: list[float]) -> str:
    return (f"p50 {statistics.median(wall) * 1000:.2f} ms  p99 {_p(wall, 0.99) * 1000:.2f} ms wall;"
            f"  CPU p50 {statistics.median(cpu) * 1000:.2f} ms  p99 {_p(cpu, 0.99) * 1000:.2f} ms")


def _timed(fn: Any) -> tuple[Any, float, float]:
    t, c = time.perf_counter(), time.thread_time()
    result = fn()
    return result, time.perf_counter() - t, time.thread_time() - c


def searches(engine: Engine, stored: int, rounds: int) -> tuple[str, str]:
    """Wall-clock and CPU (thread) time per search: on a shared machine the wall p99 mostly
    measures who else had the cores; the CPU figure is what the query itself costs."""
    repo = engine.repository
    rnd = random.Random(7)
    ident: tuple[list[float], list[float]] = ([], [])
    latest: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        n = rnd.randrange(stored)
        r, wall, cpu = _timed(lambda n=n: repo.search("Observation", [("identifier", f"{IDENT}|lab-{n}")]))
        ident[0].append(wall)
        ident[1].append(cpu)
        assert r.total == 1
        pid = f"pat{rnd.randrange(stored // PER_PATIENT)}"
        code = rnd.choice(CODES)
        r, wall, cpu = _timed(lambda pid=pid, code=code: repo.search(
            "Observation", [("subject", f"Patient/{pid}"), ("code", f"{LOINC}|{code}"), ("_sort", "-date"),
                            ("_count", "1")]))
        latest[0].append(wall)
        latest[1].append(cpu)
        assert len(r.resources) == 1
    return percentiles(*ident), percentiles(*latest)


def raw_reads(engine: Engine, seconds: float = 2.0) -> str:
    """Reads/s of the repository alone (no HTTP, auth or audit), for comparison with HTTP."""
    repo = engine.repository
    ids = [deterministic_id("FNXRMYY", "Observation", f"lab-{n}") for n in range(1000)]
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        repo.read_raw("Observation", ids[done % 1000])
        done += 1
    return f"{done / seconds:,.0f} reads/s in process"


def everything(engine: Engine) -> str:
    repo = engine.repository
    pid = "everything-patient"
    repo.update({"resourceType": "Patient", "id": pid, "name": [{"family": "测试"}]})
    docs = []
    for i in range(999):
        o = observation(i)
        o["id"] = f"ev-{i}"
        o["identifier"] = [{"system": IDENT, "value": f"ev-{i}"}]
        o["subject"] = {"reference": f"Patient/{pid}"}
        docs.append(o)
    repo.write_many(docs)
    walls, cpus = [], []
    for _ in range(5):
        result, wall, cpu = _timed(lambda: repo.everything(pid))
        walls.append(wall)
        cpus.append(cpu)
        assert len(result.resources) == 1000, len(result.resources)
    return (f"median {statistics.median(walls) * 1000:.1f} ms wall, {statistics.median(cpus) * 1000:.1f} ms CPU "
            "for 1,000 resources")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _router_only(engine: Engine) -> Any:
    """The /fhir router with auth but without the audit middleware, to show what each part costs."""
    from fastapi import FastAPI

    from engine.api import fhir as fhir_api
    from engine.api.outcomes import install_error_handlers

    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)
    app.include_router(fhir_api.router)
    return app


def http_reads(engine: Engine, seconds: float, *, audited: bool = True) -> str:
    import uvicorn

    from engine.api.app import create_app

    port = _free_port()
    app = create_app(engine) if audited else _router_only(engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                            loop="uvloop", http="httptools", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    token = engine.auth.issue_system_token("bench", "system/*.rs")
    oid = deterministic_id("FNXRMYY", "Observation", "lab-1")
    url = f"http://127.0.0.1:{port}/fhir/Observation/{oid}"
    try:
        if shutil.which("wrk"):
            out = subprocess.run(["wrk", "-t1", "-c8", f"-d{int(seconds)}s", "-H", f"Authorization: Bearer {token}",
                                  url], capture_output=True, text=True, check=True).stdout
            rate = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
            non2xx = [line.strip() for line in out.splitlines() if "Non-2xx" in line]
            how = "wrk -t1 -c8" + (f" ({non2xx[0]})" if non2xx else "")
        else:
            import httpx

            done = 0
            end = time.perf_counter() + seconds
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
                while time.perf_counter() < end:
                    assert client.get(url).status_code == 200
                    done += 1
            rate, how = f"{done / seconds:.0f}", "one Python client"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return f"{rate} reads/s ({how}, one uvicorn worker, every request authenticated)"


def _table_rows(engine: Engine) -> dict[str, tuple[int, int]]:
    """Per FHIR table: (rows, B-trees a row goes into: the table plus each of its indexes)."""
    store: Any = engine.store
    out = {}
    for (table,) in store.query("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                "(name LIKE 'ix_%' OR name LIKE 'fhir_%')"):
        indexes = store.query("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,))
        rows = store.query(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - names from sqlite_master
        out[table] = (rows, 1 + indexes[0][0])
    return out


def ingest_storage(count: int, batch: int = 50) -> None:
    """Index rows and B-tree entries per 12-OBX ORU^R01 message, counted in the tables after an
    in-process run of the real pipeline, and the exclusive CPU of the storage stages."""
    from bench.ingest import StageClock, oru_lab

    with tempfile.TemporaryDirectory(prefix="huren-bench-") as tmp, \
            Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as engine:
        warm = [(oru_lab(90_000_000 + i), "bench", "127.0.0.1:1") for i in range(2 * batch)]
        for start in range(0, len(warm), batch):
            engine.ingestor.process(warm[start : start + batch])
        before = _table_rows(engine)
        indexed: list[dict[str, Any]] = []
        indexer = engine.repository.indexer
        compiled = indexer.rows

        def keep(resource: dict[str, Any]) -> Any:
            if threading.current_thread() is threading.main_thread():
                indexed.append(resource)
            return compiled(resource)

        indexer.rows = keep  # type: ignore[method-assign]
        clock = StageClock()
        clock.attach(engine)
        backend: Any = engine.repository.backend
        put_many, puts = backend.put_many, []

        def capture(items: Any) -> Any:  # outside the stage clock: its copies are not charged to the put
            puts.append([(dataclasses.replace(rec), rows, prev) for rec, rows, prev in items])
            return put_many(items)

        backend.put_many = capture
        messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
        for start in range(0, count, batch):
            engine.ingestor.process(messages[start : start + batch])
        backend.put_many = put_many
        after = _table_rows(engine)
        indexer.rows = compiled  # type: ignore[method-assign]
        extraction = _extraction(indexer, indexed, count)
        by_type = _extraction_by_type(indexer, indexed, count)
        page_size = engine.store.query("PRAGMA page_size")[0][0]  # the replay's store as the engine makes its own
        replay = _replay(puts, engine.repository.params, indexer, Path(tmp) / "replay.sqlite3", count,
                         getattr(backend, "_hashers", None), page_size)
        parts = _put_parts(puts, backend, count)
    print(f"== ingest storage, 12-OBX ORU^R01, {count} messages in batches of {batch} ({load_note()})")
    index_rows = entries = 0
    for table, (rows, trees) in sorted(after.items()):
        per = (rows - before.get(table, (0, 0))[0]) / count
        if per:
            print(f"  {table:<14} {per:7.1f} rows/msg  x {trees} B-tree(s) = {per * trees:7.1f} entries/msg")
        if table.startswith("ix_"):
            index_rows += per
        entries += per * trees
    print(f"  index rows {index_rows:.1f}/msg; B-tree entries in all (resources, history, index) {entries:.1f}/msg")
    for stage in ("index rows", "backend put (SQL + hashing)", "backend reads"):
        print(f"  {stage:<30} {clock.seconds.get(stage, 0.0) / count * 1e6:7.0f} us/msg CPU")
    storage = sum(clock.seconds.get(s, 0.0) for s in ("index rows", "backend put (SQL + hashing)", "backend reads"))
    print(f"  storage stages together        {storage / count * 1e6:7.0f} us/msg CPU")
    print(f"  index extraction alone, the run's {len(indexed) / count:.1f} resources/msg again, best of 5 in turn: "
          f"compiled plans {extraction['rows']:.0f} us/msg, interpreter {extraction['interpret']:.0f} us/msg")
    print("    compiled plans by resource type, us/msg (resources/msg x us each): "
          + ", ".join(f"{t} {v:.0f} ({n:.1f} x {v / n:.1f})" for t, (n, v) in by_type.items()))
    print(f"  the run's backend puts replayed into a fresh store ({page_size // 1024} KiB pages, best of 3), CPU us/msg: "
          + ", ".join(f"{k} {v:.0f}" for k, v in replay["cpu"].items()))
    print(f"    {replay['calls']:.1f} put_many calls/msg, {replay['statements']:.1f} SQL statements/msg; bytes/msg: "
          + ", ".join(f"{k} {v:,.0f}" for k, v in replay["bytes"].items()))
    print("    the Python of the put by part, each alone over the run's puts (best of 3), us/msg: "
          + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))
    print("    index rows/msg by resource type and parameter (the enabled list decides them): "
          + ", ".join(f"{k} {v:.1f}" for k, v in replay["rows"].items() if v >= 0.95))
    hashed = sum(v for k, v in replay["new keys"].items() if not k.endswith("(by rid)"))
    print(f"    equality values new to the store/msg (hashed: {hashed:.1f}, each a random ix_hash page once the index "
          "outgrows a batch; by rid: appended): "
          + ", ".join(f"{k} {v:.2f}" for k, v in replay["new keys"].items() if v >= 0.1))


def _wal_pages(wal: Path, page_size: int) -> list[int]:
    """The page number of each frame in a WAL file (its 32-byte header, then frames of a 24-byte
    header, the first 4 bytes the page number, and the page)."""
    data = wal.read_bytes() if wal.exists() else b""
    step = 24 + page_size
    return [int.from_bytes(data[at : at + 4], "big") for at in range(32, len(data) - step + 1, step)]


def commit_growth(sizes: list[int], batch: int = 50, measured: int = 3) -> None:
    """Pages the COMMIT of one batch of 50 lab messages writes, by B-tree, as the database grows:
    the WAL is checkpointed and emptied before each measured batch, and its frames after the
    batch are mapped to their tables and indexes by ``dbstat``. Scattered keys (hashes, random
    ids) dirty a page per row once a B-tree outgrows a batch; appended keys share their pages.
    Each message is a resident of its own: returning residents add the identity hook's links to
    their earlier records (new versions), which is the patient index's growth, not the layout's."""
    from bench.ingest import oru_lab

    print(f"== commit growth, 12-OBX ORU^R01 in batches of {batch} ({load_note()})")
    with tempfile.TemporaryDirectory(prefix="huren-bench-") as tmp, \
            Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as engine:
        store: Any = engine.store
        conn = store.conn
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        wal = Path(f"{store.path}-wal")
        stored = 0

        def ingest() -> None:
            nonlocal stored
            engine.ingestor.process([(oru_lab(70_000_000 + stored + i, own_person=True), "bench", "127.0.0.1:1")
                                     for i in range(batch)])
            stored += batch

        for size in sizes:
            while stored < size:
                ingest()
            pages: dict[str, int] = {}
            frames = cpu = 0.0
            with store.lock:
                auto = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
                conn.execute("PRAGMA wal_autocheckpoint=0")
            for _ in range(measured):
                with store.lock:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                c0 = time.process_time()
                ingest()
                cpu += time.process_time() - c0
                with store.lock:
                    written = _wal_pages(wal, page_size)
                    owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
                frames += len(written)
                for page in set(written):
                    name = owner.get(page, "(free)")
                    pages[name] = pages.get(name, 0) + 1
            with store.lock:
                conn.execute(f"PRAGMA wal_autocheckpoint={auto}")
                size_mb = conn.execute("PRAGMA page_count").fetchone()[0] * page_size / 1e6
            top = sorted(pages.items(), key=lambda kv: -kv[1])
            print(f"  {size:>6} stored ({size_mb:,.0f} MB): {sum(pages.values()) / measured:6.0f} pages of "
                  f"{page_size // 1024} KiB a batch ({frames / measured:.0f} WAL frames), process CPU "
                  f"{cpu / measured / batch * 1e6:,.0f} us/msg; by B-tree: "
                  + ", ".join(f"{name} {n / measured:.0f}" for name, n in top if n / measured >= 1))


def resent_lab(message: bytes, control: str, status: str, stamp: str) -> bytes:
    """``message`` (``bench.ingest.oru_lab``) sent again: another control id and time, its
    results' and report's status ``status`` (P preliminary, F final)."""
    text = message.decode("utf-8")
    head, rest = text.split("\r", 1)
    fields = head.split("|")
    fields[6], fields[9] = stamp, control
    rest = rest.replace("|N|||F|||", f"|N|||{status}|||").replace("|||F\r", f"|||{status}\r")
    return ("|".join(fields) + "\r" + rest).encode("utf-8")


def another_order(message: bytes, n: int) -> bytes:
    """``oru_lab(n)`` for another order of the same patient."""
    return message.replace(f"ORD{n:09d}".encode(), f"ORD{n + 1:09d}X".encode()).replace(
        f"LAB{n:09d}".encode(), f"LAB{n + 1:09d}X".encode())


def ingest_updates(count: int, batch: int = 50) -> None:
    """The new versions ingest writes most, each case its own run of ``count`` messages through
    the in-process pipeline after the messages that stored the versions before: the final
    result of an order sent before as preliminary (a new version of the report, its results and
    the order, each a status changed), and the same person's result from another hospital (the
    patient index links the earlier Patient record: its new version differs by a link; the
    rest are first versions). Prints the CPU of the storage stages per message and the rows
    the whole store changed (inserted, updated, deleted; every table)."""
    from bench.ingest import StageClock, oru_lab

    cases = {
        "final after preliminary (same order)": (
            lambda n: resent_lab(oru_lab(n), f"PRE{n:09d}", "P", "20261101091500"),
            lambda n: resent_lab(oru_lab(n), f"FIN{n:09d}", "F", "20261101101500")),
        "the person again at another hospital (the earlier Patient record: a link more)": (
            lambda n: oru_lab(n),
            lambda n: resent_lab(another_order(oru_lab(n), n).replace(b"FNXRMYY", b"FNZYY"), f"RET{n:09d}", "F",
                              "20261102091500")),
    }
    print(f"== ingest new versions, 12-OBX ORU^R01, {count} messages per case in batches of {batch} ({load_note()})")
    for label, (first, second) in cases.items():
        with tempfile.TemporaryDirectory(prefix="huren-bench-") as tmp, \
                Engine(Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)) as engine:
            warm = [(oru_lab(90_000_000 + i), "bench", "127.0.0.1:1") for i in range(2 * batch)]
            for start in range(0, len(warm), batch):
                engine.ingestor.process(warm[start : start + batch])
            before = [(first(60_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            for start in range(0, count, batch):
                engine.ingestor.process(before[start : start + batch])
            rows = _table_rows(engine)
            clock = StageClock()
            clock.attach(engine)
            messages = [(second(60_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            store: Any = engine.store
            changes = store.conn.total_changes
            for start in range(0, count, batch):
                engine.ingestor.process(messages[start : start + batch])
            changes = store.conn.total_changes - changes
            after = _table_rows(engine)
        stages = ("index rows", "backend put (SQL + hashing)", "backend reads")
        cpu = {s: clock.seconds.get(s, 0.0) / count * 1e6 for s in stages}
        grown = {t: (after[t][0] - rows.get(t, (0, 0))[0]) / count for t in after}
        print(f"  {label}: " + ", ".join(f"{s} {v:.0f}" for s, v in cpu.items())
              + f", together {sum(cpu.values()):.0f} us/msg CPU; history rows {grown.get('fhir_history', 0):.1f}/msg, "
              f"rows changed in the store (every table) {changes / count:.0f}/msg")


class _TimedConnection:
    """The replay store's connection, timing each statement by the table it writes or reads."""

    def __init__(self, conn: Any, cpu: dict[str, float]) -> None:
        self.conn, self.cpu, self.statements = conn, cpu, 0

    def _timed(self, method: str, sql: str, *args: Any) -> Any:
        words = sql.replace("(", " ").split()
        table = next((w for w in words if w.startswith(("ix_", "fhir_"))), words[0])
        started = time.thread_time()
        try:
            return getattr(self.conn, method)(sql, *args)
        finally:
            key = f"SQL {table}"
            self.cpu[key] = self.cpu.get(key, 0.0) + time.thread_time() - started
            self.statements += 1

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed("execute", sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed("executemany", sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _replay(puts: list[Any], params: Any, indexer: Any, path: Path, count: int, hashers: Any,
            page_size: int | None = None) -> dict[str, Any]:
    """The run's ``put_many`` calls again into a fresh store, batches of 50 messages per commit as
    in the run: the SQL each table costs (thread CPU around each statement) against the Python of
    the put (hashing, row tuples, sort keys), the statements, the bytes and the rows per
    parameter. A replaced version whose row the replay does not hold is written as new; the row
    hashers are the run's (``hashers``), warm as they were at its end."""
    from collections import Counter

    from engine.repository.sqlite_rows import BY_TARGET
    from engine.repository.sqlite_store import SqliteStore

    best: dict[str, float] = {}
    statements = 0
    for _round in range(3):
        store = SqliteStore(path.with_suffix(f".{_round}"), page_size=page_size)
        backend = store.fhir
        backend.bind(params, indexer)
        if hashers is not None:
            backend._hashers = hashers
        cpu: dict[str, float] = {}
        timed = _TimedConnection(store.conn, cpu)
        store._conn = timed  # type: ignore[assignment]  # (``conn`` is a property)
        total = python = 0.0
        per_commit = max(1, len(puts) * 50 // count)  # the calls of 50 messages
        for start in range(0, len(puts), per_commit):
            with store.transaction():
                for call in puts[start : start + per_commit]:
                    items = []
                    for rec, rows, prev in call:
                        key = None
                        if prev is not None:
                            found = backend.current(prev.type, prev.id)  # (outside the put's clock)
                            key = found.key if found else None
                        items.append((dataclasses.replace(rec), rows,
                                      dataclasses.replace(prev, key=key) if key is not None else None))
                    sql_before = sum(cpu.values())
                    started = time.thread_time()
                    backend.put_many(items)
                    elapsed = time.thread_time() - started
                    total += elapsed
                    python += elapsed - (sum(cpu.values()) - sql_before)
        cpu["Python of the put"] = python
        cpu["put in all"] = total
        statements = timed.statements
        for k, v in cpu.items():
            best[k] = min(best.get(k, float("inf")), v / count * 1e6)
        store._conn = timed.conn  # type: ignore[assignment]
        store.close()
    rows: Counter[str] = Counter()
    size: Counter[str] = Counter()
    # equality values new to the store (first met in the run): each an ``ix_hash`` key of its own,
    # which lands on a page of its own once the index outgrows what a batch touches; a by-target
    # parameter's reference to a non-Patient resource is keyed by the target's rid (appended)
    seen: set[tuple[str, ...]] = set()
    new: Counter[str] = Counter()
    for call in puts:
        for rec, index, _prev in call:
            size["bodies"] += len(rec.body or b"")
            if index is None:
                continue
            size["sort keys"] += len(fhirjson_dumps(index.sort))
            narrowed = params.narrowed(rec.type)
            for kind in ("tokens", "refs", "dates", "strings", "quantities", "uris"):
                for row in getattr(index, kind):
                    if kind == "refs" and row[0] in narrowed and narrowed[row[0]][1] == row[1]:
                        continue  # kept once, under the wider parameter
                    rows[f"{rec.type}.{row[0]}"] += 1
                    if kind in ("tokens", "refs", "uris"):
                        key = (rec.type, kind, *map(str, row))
                        if key not in seen:
                            seen.add(key)
                            by_rid = (kind == "refs" and row[0] in BY_TARGET.get(rec.type, ())
                                      and row[1] != "Patient")
                            new[f"{rec.type}.{row[0]}" + (" (by rid)" if by_rid else "")] += 1
    ordered = sorted(best.items(), key=lambda kv: -kv[1] if kv[0] != "put in all" else float("inf"))
    return {"cpu": dict(ordered), "calls": len(puts) / count, "statements": statements / count,
            "bytes": {k: v / count for k, v in size.items()},
            "rows": {k: v / count for k, v in rows.most_common()},
            "new keys": {k: v / count for k, v in new.most_common()}}


def fhirjson_dumps(value: Any) -> bytes:
    from engine import fhirjson

    return fhirjson.dumps(value)


def _extraction(indexer: Any, resources: list[dict[str, Any]], count: int) -> dict[str, float]:
    """Thread CPU per message of each way of extracting the index rows, taken in turn."""
    best = {"rows": float("inf"), "interpret": float("inf")}
    for _round in range(5):
        for name in best:
            fn = getattr(indexer, name)
            started = time.thread_time()
            for resource in resources:
                fn(resource)
            best[name] = min(best[name], (time.thread_time() - started) / count * 1e6)
    return best


def _extraction_by_type(indexer: Any, resources: list[dict[str, Any]], count: int) -> dict[str, tuple[float, float]]:
    """Per resource type: (resources per message, thread CPU per message of its compiled plans),
    best of 3 over the run's resources in the order the run indexed them (so the plans' caches
    miss as in the run: each message names a new patient, specimen and results)."""
    from collections import Counter

    seen = Counter(r["resourceType"] for r in resources)
    best: dict[str, float] = {}
    rows, clock = indexer.rows, time.thread_time
    for _round in range(3):
        spent: dict[str, float] = dict.fromkeys(seen, 0.0)
        for resource in resources:
            started = clock()
            rows(resource)
            spent[resource["resourceType"]] += clock() - started
        for rtype, seconds in spent.items():
            best[rtype] = min(best.get(rtype, float("inf")), seconds / count * 1e6)
    ordered = sorted(best.items(), key=lambda kv: -kv[1])
    return {rtype: (seen[rtype] / count, us) for rtype, us in ordered if seen[rtype] / count >= 0.05}


def _put_parts(puts: list[Any], backend: Any, count: int) -> dict[str, float]:
    """The Python of the SQLite put, part by part, each run alone over the run's puts with the
    run's (warm) row hashers: sort keys as JSON, the ``(h, q)`` of each equality row
    (``RowHasher.keys``), the ``ix_hash`` tuples, ``hkeys`` packed, the range rows with their
    ``ranges`` JSON, the ``idh`` of each new resource. What one walk or fewer rows could take."""
    from engine import fhirjson
    from engine.repository import sqlite_rows

    if not hasattr(backend, "_hasher"):
        return {}
    items = [(rec, rows) for call in puts for rec, rows, _prev in call if rows is not None]
    keys = [backend._hasher(rec.type).keys(rows) for rec, rows in items]
    parts: dict[str, Any] = {
        "sort keys": lambda: [fhirjson.dumps(rows.sort).decode() for _rec, rows in items],
        "row keys": lambda: [backend._hasher(rec.type).keys(rows) for rec, rows in items],
        "ix_hash tuples": lambda: [[(h, 1, q) for h, q in k] for k in keys],
        "hkeys packed": lambda: [sqlite_rows._pack(k) for k in keys],
        "range rows and ranges": lambda: [backend._collect(backend._empty_tables(), 1, rec.type, rows)
                                          for rec, rows in items],
        "idh": lambda: [sqlite_rows.id_hash(rec.type, rec.id) for rec, _rows in items],
    }
    best: dict[str, float] = {}
    for _round in range(3):
        for name, part in parts.items():
            started = time.thread_time()
            part()
            best[name] = min(best.get(name, float("inf")), (time.thread_time() - started) / count * 1e6)
    return best


def run(settings: Settings, label: str, sizes: list[int], rounds: int, http_seconds: float) -> None:
    print(f"== {label} ({load_note()})")
    with Engine(settings) as engine:
        engine.repository.update({"resourceType": "Organization", "id": "fnxrmyy", "name": "阜宁县人民医院"})
        stored = 0
        for size in sizes:
            wall, cpu = fill(engine, stored, size)
            stored = size
            print(f"  writes: {wall:,.0f} Observations/s wall, {cpu:,.0f} per CPU-second "
                  f"(transaction Bundles of 100, {size:,} stored)")
            ident, latest = searches(engine, stored, rounds)
            print(f"  identifier search at {stored:,}: {ident}")
            print(f"  subject+code+latest at {stored:,}: {latest}")
        print(f"  $everything: {everything(engine)}")
        print(f"  repository read: {raw_reads(engine)}")
        print(f"  HTTP read, full app: {http_reads(engine, http_seconds)}")
        print(f"  HTTP read, /fhir router + auth, no audit middleware: "
              f"{http_reads(engine, http_seconds, audited=False)}")
        print(f"  ({load_note()} at the end)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (10k, 30k) for CI and shared machines")
    parser.add_argument("--sizes", help="comma-separated stored sizes, e.g. 100000,1000000")
    parser.add_argument("--mongodb-uri", default=os.environ.get("HUREN_MONGODB_URI"))
    parser.add_argument("--ingest-only", action="store_true", help="only the ingest storage figures")
    parser.add_argument("--messages", type=int, help="messages for the ingest storage figures (default 300, quick 150)")
    parser.add_argument("--updates-only", action="store_true",
                        help="only the ingest figures of new versions (final after preliminary, returning patient)")
    parser.add_argument("--growth", metavar="SIZES",
                        help="only the pages a batch's commit writes at these stored sizes, e.g. 600,3000,10000")
    args = parser.parse_args(argv)
    if args.growth:
        commit_growth([int(s) for s in args.growth.split(",")])
        return 0
    if not args.updates_only:
        ingest_storage(args.messages or (150 if args.quick else 300))
    ingest_updates(args.messages or (150 if args.quick else 300))
    if args.ingest_only or args.updates_only:
        return 0
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [10_000, 30_000] if args.quick else [100_000, 1_000_000])
    rounds = 200 if args.quick else 1000
    http_seconds = 3 if args.quick else 10
    with tempfile.TemporaryDirectory(prefix="huren-bench-") as tmp:
        base = Settings(data_dir=Path(tmp), http_port=0, mllp_port=0)
        run(base, "SQLite (WAL)", sizes, rounds, http_seconds)
        if args.mongodb_uri:
            db = f"huren_bench_{os.getpid()}"
            try:
                run(base.with_(data_dir=Path(tmp) / "mongo", mongodb_uri=args.mongodb_uri, mongodb_db=db),
                    "MongoDB", sizes, rounds, http_seconds)
            finally:
                import pymongo

                pymongo.MongoClient(args.mongodb_uri).drop_database(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
