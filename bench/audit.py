"""Audit trail benchmark: append, checkpoint signing, verification, proofs, HTTP overhead.

    python bench/audit.py --quick          # what `make bench` runs (~1 min on 2 cores)
    python bench/audit.py                  # larger sizes
    python bench/audit.py --compare-pymerkle   # also time pymerkle's in-memory tree (if installed)
    python bench/audit.py --read-path      # only where an audited read's audit CPU goes
    python bench/audit.py --record-build 10000   # a read's record built N times, inside sys.call_tracing

``--record-build``: callgrind counts the builds alone (twenty-first round: 34.8 k -> 26.6 k
instructions a record with the template; the difference of two counts, N = 2,000 and 12,000, over
10,000 is the instructions of one record):

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        python bench/audit.py --record-build 12000

Prints one line per figure. Everything runs on the real SQLite store in a temporary directory.
The verification log is bulk-loaded with the same leaf/node layout ``AuditLog.record`` writes (the
per-request append path is timed separately), so the verification and proof figures reach sizes
an append loop could not build in a short run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from engine.audit import merkle  # noqa: E402
from engine.audit.canonical import canonical  # noqa: E402
from engine.audit.checkpoint import sign_checkpoint  # noqa: E402
from engine.audit.events import build_event, requestor_agent  # noqa: E402
from engine.audit.keys import AuditKeys  # noqa: E402
from engine.audit.log import AuditLog, event_id, seq_key  # noqa: E402
from engine.audit.store import open_audit_store  # noqa: E402
from engine.audit.verify import Verifier, verify_online  # noqa: E402
from engine.settings import Settings  # noqa: E402


def event(i: int) -> dict:
    return build_event(action="read", origin="bench/audit",
                       agents=requestor_agent(kind="system", subject=f"his-{i % 7}", address="10.1.2.3"),
                       patient_ids=[f"p{i % 1000}"], resources=[f"Observation/o{i}/_history/1"])


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def bench_append(settings: Settings, n: int) -> AuditLog:
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    events = [event(i) for i in range(n)]
    t = time.perf_counter()
    for ev in events:
        log.record(ev)
    dt = time.perf_counter() - t
    print(f"append (AuditLog.record, SQLite, one transaction each): {n} records in {dt:.2f}s = {rate(n, dt)}"
          f" ({dt / n * 1e6:.0f} µs/record)")
    return log


def bench_views(settings: Settings, n: int, patients: int = 1000) -> None:
    """The per-patient FHIR views, derived on read (``engine.audit.derived``): nothing is written
    per record beyond the log and its keys, so what is timed is the reading side: one resident's
    ``AuditEvent?patient=`` (through "who looked at my record") and an auditor's search by agent,
    at ``n`` records over ``patients`` patients (one record in ten is a search over two)."""
    from engine.audit.who_looked import who_looked
    from engine.engine import Engine

    engine = Engine(settings)
    system = requestor_agent(kind="system", subject="his-a", address="10.1.2.3")
    events = []
    days = 30  # the records spread over a month, so a search by one day has days to skip
    start_at = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        pid = f"p{i % patients}"
        recorded = (start_at + timedelta(days=days * i / n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if i % 10:
            events.append(build_event(action="read", origin="bench/audit", agents=system, patient_ids=[pid],
                                      resources=[f"Observation/o{i}/_history/1"],
                                      owners={f"Observation/o{i}/_history/1": [pid]}, recorded=recorded))
        else:
            other = f"p{(i + 1) % patients}"
            events.append(build_event(action="search", origin="bench/audit", agents=system,
                                      patient_ids=[pid, other], query="Observation?code=718-7",
                                      resources=[f"Observation/o{i}", f"Observation/x{i}"],
                                      owners={f"Observation/o{i}": [pid], f"Observation/x{i}": [other]},
                                      recorded=recorded))
    for start in range(0, n, 8):  # groups of 8, as the group commit makes them under load
        engine.audit.record_many(events[start:start + 8])
    times = []
    for k in range(50):
        t = time.perf_counter()
        found = who_looked(engine.repository, {f"p{k * 7 % patients}"})
        times.append(time.perf_counter() - t)
    print(f"who looked at my record (views derived on read; {n:,} records, {patients} patients, {len(found)} "
          f"entries): median {statistics.median(times) * 1e3:.2f} ms")
    t = time.perf_counter()
    page = engine.repository.search("AuditEvent", [("agent:identifier", "urn:huren:client|his-a"),
                                                   ("_sort", "-date"), ("_count", "50")])
    print(f"auditor search AuditEvent?agent:identifier=...&_sort=-date&_count=50 over {n:,} records "
          f"({page.total:,} matches): {(time.perf_counter() - t) * 1e3:.0f} ms")
    t = time.perf_counter()
    page = engine.repository.search("AuditEvent", [("date", "2026-11-15"), ("_count", "50")])
    print(f"auditor search AuditEvent?date=2026-11-15&_count=50 over {n:,} records of {days} days "
          f"({page.total:,} matches; the day keys read that day's records only): {(time.perf_counter() - t) * 1e3:.0f} ms")
    engine.close()


def bench_sign(keys: AuditKeys, n: int) -> None:
    root = merkle.leaf_hash(b"x")
    t = time.perf_counter()
    for i in range(n):
        sign_checkpoint(keys, "bench/audit", i + 1, root, i)
    dt = time.perf_counter() - t
    print(f"checkpoint signing (Ed25519, C2SP note): {rate(n, dt)} ({dt / n * 1e6:.0f} µs each)")


def bulk_load(log: AuditLog, n: int, batch: int = 20000) -> None:
    """Fill an empty log with ``n`` canonical AuditEvents: same documents as ``record`` writes."""
    frontier = merkle.Frontier()
    template = event(0)
    for start in range(0, n, batch):
        leaves = []
        for seq in range(start, min(n, start + batch)):
            data = canonical({**template, "id": event_id(seq)})
            h = merkle.leaf_hash(data)
            doc = {"_id": seq_key(seq), "seq": seq, "hash": h.hex(), "data": data.decode()}
            made = frontier.append(h)
            if made:  # the nodes this leaf completes, kept with it (AuditLog.stored_nodes)
                doc["nodes"] = [nh.hex() for _lv, _ix, nh in made]
            leaves.append(doc)
        with log.store.transaction():
            log.leaves.insert_many(leaves)
    log._reload()
    log.checkpoint(force=True)


def bench_verify(log: AuditLog, n: int) -> None:
    docs = log.leaves.find(sort=[("seq", 1)])
    cps = log.checkpoints.find(sort=[("seq", 1)])
    t = time.perf_counter()
    v = Verifier(log.keys, origin=log.origin)
    v.add_checkpoints(cps)
    v.add_records(docs)
    report = v.finish()
    dt = time.perf_counter() - t
    assert report.ok, report.text()
    print(f"verification, records in memory (hash + parse + tree + checkpoint): {n} in {dt:.2f}s = {rate(n, dt)}")
    t = time.perf_counter()
    report = verify_online(log)
    dt = time.perf_counter() - t
    assert report.ok, report.text()
    print(f"verification online (read from SQLite + stored-node check): {n} in {dt:.2f}s = {rate(n, dt)}")
    t = time.perf_counter()
    report = verify_online(log, check_nodes=False)
    dt = time.perf_counter() - t
    assert report.ok, report.text()
    print(f"verification online without the stored-node check: {n} in {dt:.2f}s = {rate(n, dt)}")


def bench_proofs(log: AuditLog, n: int, samples: int = 200) -> None:
    cp = log.latest_checkpoint()
    assert cp is not None and cp.size == n
    times, sizes = [], []
    for k in range(samples):
        leaf = (k * 7919) % n
        t = time.perf_counter()
        proof = log.inclusion_proof(leaf, n)
        times.append(time.perf_counter() - t)
        sizes.append(len(proof))
        assert merkle.verify_inclusion(leaf, n, log.subtree_hash(0, leaf), proof, cp.root)
    print(f"inclusion proof at {n:,} records: {max(sizes)} hashes = {max(sizes) * 32} bytes, "
          f"median {statistics.median(times) * 1e3:.2f} ms (from the database)")
    ten_m = 10_000_000
    print(f"inclusion proof at {ten_m:,} records: {(ten_m - 1).bit_length()} hashes = "
          f"{(ten_m - 1).bit_length() * 32} bytes (RFC 9162 path length, computed; reads grow as log n)")


def bench_http(settings: Settings, n: int) -> None:
    """What auditing adds to a FHIR read through the real app (bearer token, /fhir router,
    repository), in-process over ASGI (httpx's ASGITransport: no sockets, no TestClient thread
    portal, so the audit's own cost shows). "plain" is the same app with the audit middleware
    taken out."""
    import asyncio

    import httpx

    from engine.api.app import create_app
    from engine.audit.middleware import AuditMiddleware
    from engine.engine import Engine

    engine = Engine(settings)
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
    engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                              "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                              "performer": [{"reference": "Organization/org1"}],
                              "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
    headers = {"Authorization": "Bearer " + engine.auth.issue_system_token("bench", "system/*.rs")}

    def committers(app) -> list:
        layer = app.middleware_stack
        while layer is not None and not isinstance(layer, AuditMiddleware):
            layer = getattr(layer, "app", None)
        return list(getattr(layer, "_committers", {}).values()) if layer is not None else []

    def make(audited: bool):
        app = create_app(engine)
        if not audited:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
        return app

    async def run(app, clients: int) -> tuple[float, float, tuple[int, int]]:
        """Wall and CPU seconds per request: ``clients`` concurrent callers on one event loop (as
        uvicorn serves several connections), ``n`` requests in all. CPU time (this process, all
        threads) is the steadier figure on a shared machine: other processes' load stretches wall
        time but not it."""
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for _ in range(30):
                assert (await client.get("/fhir/Observation/o1", headers=headers)).status_code == 200

            async def caller(k: int) -> None:
                for _ in range(k):
                    r = await client.get("/fhir/Observation/o1", headers=headers)
                    assert r.status_code == 200, r.text

            before = [(c.groups, c.records) for c in committers(app)] or [(0, 0)]
            t, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(caller(n // clients) for _ in range(clients)))
            done = n // clients * clients
            t, cpu = (time.perf_counter() - t) / done, (time.process_time() - cpu) / done
            after = [(c.groups, c.records) for c in committers(app)] or [(0, 0)]
            return t, cpu, (after[0][0] - before[0][0], after[0][1] - before[0][1])

    for clients in (1, 8):
        results: dict[str, float] = {}
        cpus: dict[str, float] = {}
        groups = [0, 0]
        for mode in ("plain", "audited") * 3:
            t, cpu, made = asyncio.run(run(make(mode != "plain"), clients))
            groups = [groups[0] + made[0], groups[1] + made[1]]
            results[mode] = min(results.get(mode, 1e9), t)
            cpus[mode] = min(cpus.get(mode, 1e9), cpu)
        plain, plain_cpu = results["plain"], cpus["plain"]
        for mode, label in (("audited", "signed log (FHIR views derived on read)"),):
            t, cpu = results[mode], cpus[mode]
            print(f"FHIR read (GET /fhir/Observation/o1, ASGI in-process, {clients} concurrent client"
                  f"{'s' if clients > 1 else ''}, per request), audited with {label}: wall "
                  f"{plain * 1e6:.0f} -> {t * 1e6:.0f} µs (+{(t - plain) * 1e6:.0f} µs, +{(t / plain - 1) * 100:.0f}%); "
                  f"CPU {plain_cpu * 1e6:.0f} -> {cpu * 1e6:.0f} µs (+{(cpu - plain_cpu) * 1e6:.0f} µs, "
                  f"+{(cpu / plain_cpu - 1) * 100:.0f}%)")
        print(f"  group commit with {clients} client{'s' if clients > 1 else ''}: {groups[1]} records in "
              f"{groups[0]} transactions ({groups[1] / max(groups[0], 1):.1f} per commit)")
    engine.close()


def bench_record_build(n: int) -> None:
    """An audited read's record (``facts_for_request``, the one-resource path, then its bytes as
    record 5), ``n`` times inside ``sys.call_tracing`` (see the module docstring)."""
    from types import SimpleNamespace

    from engine.audit.middleware import facts_for_request
    from engine.audit.note import AuditNote

    caller = SimpleNamespace(kind="system", subject="his-a", client_id="his-a")
    scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
             "client": ("127.0.0.1", 40000), "state": {"caller": caller}}
    note = AuditNote("read", ["Observation/o1/_history/1"], ["p1"], owners={"Observation/o1/_history/1": ["p1"]})

    def run(k: int) -> None:
        for _ in range(k):
            facts_for_request(scope, [note], 200, "", "node").data(5)

    run(200)
    t = time.process_time()
    sys.call_tracing(run, (n,))
    print(f"audited read's record built {n} times: {(time.process_time() - t) / n * 1e6:.2f} µs CPU a record")


def bench_read_path(settings: Settings, groups: int) -> None:
    """Where an audited read's audit CPU goes, per record, without HTTP: the record built from the
    request's note (``facts_for_request``); the append in groups of 1, 6 and 8 (6 is about what
    8 connections make under uvicorn: bytes, hash, tree, and on SQLite one ``write()`` of the
    group to the segment file); the drain that moves the segment's records into the leaf table
    (the background key indexer's, each second); and the search keys it then gives them
    (``index_keys``). Checkpoints are left out (one signature and one drain per 1,000 records in
    the server). CPU time of this process."""
    from types import SimpleNamespace

    from engine.audit.middleware import facts_for_request
    from engine.audit.note import AuditNote

    caller = SimpleNamespace(kind="system", subject="his-a", client_id="his-a")
    scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
             "client": ("10.0.0.9", 5000), "state": {"caller": caller}}
    notes = [AuditNote("read", ["Observation/o1/_history/1"], ["p1"], owners={"Observation/o1/_history/1": ["p1"]})]

    def made() -> object:
        return facts_for_request(scope, notes, 200, "2026-11-30T08:00:00.000Z", "bench/audit")

    n = groups * 6
    t = time.process_time()
    for _ in range(n):
        made()
    facts_us = (time.process_time() - t) / n * 1e6
    settings = settings.with_(audit_checkpoint_every=10**9, audit_checkpoint_seconds=10**9)
    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    log.index_keys()
    line = [f"audited read's record, per record (CPU, no HTTP): facts {facts_us:.1f} µs"]
    drain = keys = 0.0
    for size in (1, 6, 8):
        batches = [[made() for _ in range(size)] for _ in range(max(groups // size * 6, 50))]
        t = time.process_time()
        for batch in batches:
            log.record_many(batch)
        line.append(f"append in groups of {size} {(time.process_time() - t) / (len(batches) * size) * 1e6:.1f} µs")
        t = time.process_time()
        log.drain()  # what the background thread does each second (no-op without a segment file)
        drain += time.process_time() - t
        t = time.process_time()
        log.index_keys()
        keys += time.process_time() - t
    line.append(f"drain into the record files {drain / log.size * 1e6:.1f} µs")
    line.append(f"search keys (index_keys) {keys / log.size * 1e6:.1f} µs")
    print("; ".join(line))
    log.store.close()


def bench_middleware(settings: Settings, n: int) -> None:
    """The audit's whole cost per request, apart from FastAPI, HTTP and the read itself: a bare
    ASGI app that notes one resource (as a FHIR read does), called directly on uvloop by 1 and 8
    concurrent callers, with and without ``AuditMiddleware`` in front of it, on a real log (a
    SQLite file and its segment; the key indexer thread draining and keying each second, as in
    the server). CPU time of this process (all threads), best of three; the difference is what
    the audit adds to each request: record, group, append, drain, keys, the awaited result."""
    import asyncio
    from types import SimpleNamespace

    import uvloop

    from engine.audit.middleware import AuditMiddleware
    from engine.audit.note import AuditNote

    log = AuditLog(open_audit_store(settings), settings, AuditKeys.load(settings))
    log.start()
    caller = SimpleNamespace(kind="system", subject="his-a", client_id="his-a")
    body = b'{"resourceType":"Observation","id":"o1"}'
    ref = "Observation/o1/_history/1"

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        scope["state"]["caller"] = caller
        scope["state"].setdefault("audit_notes", []).append(AuditNote("read", [ref], ["p1"], owners={ref: ["p1"]}))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/fhir+json")]})
        await send({"type": "http.response.body", "body": body})

    owner = SimpleNamespace(state=SimpleNamespace(engine=SimpleNamespace(audit=log)))
    audited = AuditMiddleware(app)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        return None

    def scope() -> dict:
        return {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
                "client": ("10.0.0.9", 5000), "app": owner, "state": {}}

    async def run(target, clients: int) -> float:  # noqa: ANN001
        async def caller_(k: int) -> None:
            for _ in range(k):
                await target(scope(), receive, send)

        t = time.process_time()
        await asyncio.gather(*(caller_(n // clients) for _ in range(clients)))
        return (time.process_time() - t) / (n // clients * clients)

    async def main() -> None:
        for clients in (1, 8):
            best = {"plain": 1.0, "audited": 1.0}
            for _ in range(3):
                for mode, target in (("plain", app), ("audited", audited)):
                    best[mode] = min(best[mode], await run(target, clients))
            done = [(c.records, c.groups, c.inline) for c in audited._committers.values()]
            records, groups, inline = (sum(x) for x in zip(*done, strict=True)) if done else (0, 0, 0)
            for committer in audited._committers.values():
                committer.records = committer.groups = committer.inline = 0
            print(f"audit middleware on a bare ASGI app, {clients} concurrent caller{'s' if clients > 1 else ''}: "
                  f"{best['plain'] * 1e6:.1f} -> {best['audited'] * 1e6:.1f} µs CPU per request "
                  f"(the audit +{(best['audited'] - best['plain']) * 1e6:.1f} µs; {records / max(groups, 1):.1f} "
                  f"records a group, {inline / max(records, 1) * 100:.0f} % appended at once)")

    uvloop.run(main())
    log.close()
    log.store.close()


def bench_ingest(settings: Settings, n: int) -> None:
    """What the audit record adds to ingesting one 12-OBX lab ORU^R01 (``Ingestor.handle``: store the
    raw message, convert, validate, write FHIR, audit, ACK) — the ingestor with and without its
    audit sink."""
    import importlib.util

    from engine.engine import Engine

    spec = importlib.util.spec_from_file_location("bench_ingest", Path(__file__).with_name("ingest.py"))
    if spec is None or spec.loader is None:
        print("ingest benchmark helpers not found: skipped")
        return
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    engine = Engine(settings)
    ingestor, audit = engine.ingestor, engine.ingestor.audit
    results: dict[str, float] = {}
    counter = 0
    for mode in ("plain", "audited") * 2:
        ingestor.audit = audit if mode == "audited" else None
        msgs = [helpers.oru_lab(counter + i) for i in range(n + 10)]
        counter += n + 10
        for raw in msgs[:10]:
            ingestor.handle(raw, channel="mllp", peer="bench")
        t = time.perf_counter()
        for raw in msgs[10:]:
            ack = ingestor.handle(raw, channel="mllp", peer="bench")
        assert b"MSA|AA" in ack, ack
        results[mode] = min(results.get(mode, 1e9), (time.perf_counter() - t) / n)
    ingestor.audit = audit
    engine.close()
    plain, audited = results["plain"], results["audited"]
    print(f"ingest one lab ORU^R01 (12 OBX, Ingestor.handle, SQLite): {plain * 1e3:.2f} -> {audited * 1e3:.2f} ms "
          f"with its AuditEvent (+{(audited - plain) * 1e3:.2f} ms, +{(audited / plain - 1) * 100:.0f}%)")


def bench_pymerkle(n: int) -> None:
    try:
        from pymerkle import InmemoryTree
    except ImportError:
        print("pymerkle not installed: skipped")
        return
    data = [b"record %d" % i for i in range(n)]
    t = time.perf_counter()
    tree = InmemoryTree(algorithm="sha256")
    for d in data:
        tree.append_entry(d)
    a = time.perf_counter() - t
    t = time.perf_counter()
    f = merkle.Frontier()
    for d in data:
        f.append(merkle.leaf_hash(d))
    b = time.perf_counter() - t
    same = tree.get_root().hex() if hasattr(tree, "get_root") else None
    print(f"in-memory append, {n} leaves: pymerkle {rate(n, a)}, engine.audit.merkle {rate(n, b)}"
          + (f"; same root: {same == f.root().hex()}" if same else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compare-pymerkle", action="store_true")
    ap.add_argument("--read-path", action="store_true",
                    help="only the audited read's record, append, drain and keys, and the middleware's whole cost")
    ap.add_argument("--record-build", type=int, metavar="N",
                    help="only build an audited read's record N times (after 200 unmeasured), for callgrind")
    args = ap.parse_args()
    if args.record_build:
        bench_record_build(args.record_build)
        return
    if args.read_path:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), audit_checkpoint_every=1000, audit_checkpoint_seconds=3600)
            for _ in range(3):  # a shared machine: three rounds, read the lowest
                bench_read_path(settings.with_(data_dir=Path(tmp) / str(_)), 3000)
            bench_middleware(settings.with_(data_dir=Path(tmp) / "m"), 20_000)
        return
    appends, signs, size, http_n = (1000, 1000, 100_000, 300) if args.quick else (5000, 5000, 300_000, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp) / "a", audit_checkpoint_every=1000, audit_checkpoint_seconds=3600)
        log = bench_append(base, appends)
        bench_sign(log.keys, signs)
        log.store.close()
        big = AuditLog(open_audit_store(base.with_(data_dir=Path(tmp) / "b")), base.with_(data_dir=Path(tmp) / "b"),
                       AuditKeys.load(base.with_(data_dir=Path(tmp) / "b")))
        t = time.perf_counter()
        bulk_load(big, size)
        print(f"(bulk-loaded {size:,} records in {time.perf_counter() - t:.1f}s)")
        bench_verify(big, size)
        bench_proofs(big, size)
        big.store.close()
        bench_views(base.with_(data_dir=Path(tmp) / "v"), appends * 10)
        bench_read_path(base.with_(data_dir=Path(tmp) / "r"), appends * 3)
        bench_middleware(base.with_(data_dir=Path(tmp) / "m"), appends * 4)
        bench_http(base.with_(data_dir=Path(tmp) / "c"), http_n)
        bench_ingest(base.with_(data_dir=Path(tmp) / "d"), http_n // 3)
    if args.compare_pymerkle:
        bench_pymerkle(100_000)


if __name__ == "__main__":
    main()
