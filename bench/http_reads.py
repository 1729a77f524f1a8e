"""Authenticated FHIR reads per second over real HTTP: uvicorn (uvloop + httptools), one worker.

    python bench/http_reads.py --quick     # ~20 s
    python bench/http_reads.py             # longer runs

Starts ``huren``'s app under uvicorn in a subprocess on the real SQLite store (a temporary data
directory), then drives ``GET /fhir/Observation/o1`` with a bearer token over keep-alive TCP
connections from a raw-socket asyncio client (pre-built request bytes, Content-Length framing: the
client must cost far less than the server, or it measures itself). Prints reads/s and the server's CPU
time per read (steadier than wall time on a shared machine) for 1 and 8
concurrent connections with the audit middleware on ("audited") and taken out ("plain"), and the
audit's share; the last line states them as the targets are stated (reads/s per worker, server CPU
per read, the audit's share of it, at 8 connections). The machine is shared: each figure is the
best of a few rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PATH = "/fhir/Observation/o1"


# ``--resident``: the reads are a resident's (her token bound to p1, which the index links to p2 by her ID number),
# so each request looks up her compartment as well (forty-second round, perfa42)
RESIDENT_NID = "320923199001011246"  # (valid: a woman born 1990-01-01)
NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}


def seed(data_dir: Path, resident: bool = False) -> str:
    """Store the resources the reads fetch and return a system token for them (``resident``: hers)."""
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=data_dir))
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    if resident:
        for pid, inst in (("p1", "FNXRMYY"), ("p2", "FNZYY")):
            engine.repository.update({"resourceType": "Patient", "id": pid, "gender": "female",
                                      "birthDate": "1990-01-01",
                                      "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid},
                                                     {"system": "urn:oid:2.16.156.10011.1.3",
                                                      "value": RESIDENT_NID, "type": NNCHN}]})
        assert engine.identity.person_compartment("p1") == {"p1", "p2"}, "her two records must link"
    else:
        engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
    engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                              "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                              "performer": [{"reference": "Organization/org1"}],
                              "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
    if resident:
        from engine.auth.service import ME_CLIENT_ID

        token, _ = engine.auth.issue_token(subject="Patient/p1", kind="patient", client_id=ME_CLIENT_ID,
                                           scopes=["patient/*.rs"], patient="p1")
    else:
        token = engine.auth.issue_system_token("bench", "system/*.rs")
    engine.close()
    return token


def _app(engine, audited: bool):  # noqa: ANN001, ANN202
    """The app as ``huren serve`` runs it, heap settled once it is loaded (``engine.heap``: without
    it the collector walks the whole permanent heap, and a read that allocates more pays more)."""
    from engine import heap
    from engine.api.app import create_app
    from engine.audit.middleware import AuditMiddleware

    app = create_app(engine)
    if not audited:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
    heap.settle()
    return app


async def _serve_worker(engine, *, mllp: bool, sockets: list, audited: bool) -> None:  # noqa: ANN001
    import uvicorn

    config = uvicorn.Config(_app(engine, audited), loop="uvloop", http="httptools", log_level="warning",
                            access_log=False)
    await uvicorn.Server(config).serve(sockets=sockets)


def serve(data_dir: Path, port: int, audited: bool, workers: int = 1) -> None:
    """Run in the server subprocess: one uvicorn process, or ``huren serve --workers``' forked
    workers on one socket (engine.api.workers)."""
    import functools

    import uvicorn

    from engine.api.workers import run_workers
    from engine.engine import Engine
    from engine.settings import Settings

    settings = Settings(data_dir=data_dir)  # the token was issued for this base URL
    if workers > 1:
        run_workers(settings.with_(http_port=port), workers, functools.partial(_serve_worker, audited=audited),
                    mllp=False, open_engine=lambda _s: Engine(settings))
        return
    engine = Engine(settings)
    uvicorn.run(_app(engine, audited), host="127.0.0.1", port=port, loop="uvloop", http="httptools", workers=1,
                log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _connection(port: int, request: bytes, deadline: float, counts: list[int], statuses: set[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            statuses.add(int(head[9:12]))
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def main_thread_seconds(pid: int) -> float:
    """User + system CPU time of the server's main thread (the event loop's, with one worker), so
    the audit's cost on the loop can be told from its background thread's and the thread pool's."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (all threads) and its worker processes so
    far, from /proc."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    total = 0
    for p in pids:
        fields = _stat(p)
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def drive(port: int, token: str, clients: int, seconds: float, pid: int) -> tuple[float, float, float]:
    """Reads/s, server CPU seconds a read (every thread, and worker processes) and the main
    thread's alone (the event loop's, with one worker)."""
    request = (f"GET {PATH} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
               "Accept: application/fhir+json\r\n\r\n").encode()
    counts, statuses = [0], set()
    warm = time.perf_counter() + 0.5
    await asyncio.gather(*(_connection(port, request, warm, [0], statuses) for _ in range(clients)))
    t, cpu, loop = time.perf_counter(), cpu_seconds(pid), main_thread_seconds(pid)
    await asyncio.gather(*(_connection(port, request, t + seconds, counts, statuses) for _ in range(clients)))
    time.sleep(0.3)  # anything the server still does for these reads (a checkpoint) is theirs too
    dt, cpu, loop = time.perf_counter() - t, cpu_seconds(pid) - cpu, main_thread_seconds(pid) - loop
    if statuses != {200}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return counts[0] / (dt - 0.3), cpu / counts[0], loop / counts[0]


def wait_up(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def measure(data_dir: Path, token: str, audited: bool, seconds: float,
            rounds: int, workers: int = 1) -> dict[int, tuple[float, float, float]]:
    """Best reads/s, lowest server CPU seconds per read and lowest of its main thread's, per number
    of connections."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir), str(port),
                             "1" if audited else "0", str(workers)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_up(port, proc)
        time.sleep(0.5 * workers)  # every worker up, not just the first
        best: dict[int, tuple[float, float, float]] = {}
        for _ in range(rounds):
            for clients in (1, 8):
                rate, cpu, loop = asyncio.run(drive(port, token, clients, seconds, proc.pid))
                old = best.get(clients, (0.0, 1e9, 1e9))
                best[clients] = (max(old[0], rate), min(old[1], cpu), min(old[2], loop))
        return best
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    ap.add_argument("--workers", type=int, default=1, help="server processes (huren serve --workers)")
    ap.add_argument("--audited-only", action="store_true", help="skip the run without the audit middleware")
    ap.add_argument("--resident", action="store_true", help="a resident's token (her compartment looked up)")
    args = ap.parse_args()
    seconds, rounds = (2.0, 2) if args.quick else (5.0, 3)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        token = seed(data_dir, args.resident)
        modes = ("audited",) if args.audited_only else ("plain", "audited")
        figures = {mode: measure(data_dir, token, mode == "audited", seconds, rounds, args.workers) for mode in modes}
    if args.audited_only:
        for clients in (1, 8):
            rate, cpu, loop = figures["audited"][clients]
            print(f"GET {PATH} over HTTP, {args.workers} worker{'s' if args.workers > 1 else ''}, {clients} "
                  f"connection{'s' if clients > 1 else ''}: audited {rate:,.0f}/s, server CPU per read "
                  f"{cpu * 1e6:.0f} µs" + (f" (its event loop's thread {loop * 1e6:.0f})" if args.workers == 1 else ""))
        print(target_line(figures["audited"][8], None, args.workers))
        return
    for clients in (1, 8):
        (plain, plain_cpu, plain_loop), (audited, audited_cpu, audited_loop) = (figures["plain"][clients],
                                                                               figures["audited"][clients])
        loops = (f"; the event loop's thread {plain_loop * 1e6:.0f} -> {audited_loop * 1e6:.0f} µs"
                 if args.workers == 1 else "")
        print(f"GET {PATH} over HTTP (uvicorn uvloop+httptools, {args.workers} worker{'s' if args.workers > 1 else ''}), {clients} connection"
              f"{'s' if clients > 1 else ''}: plain {plain:,.0f}/s, audited {audited:,.0f}/s "
              f"(wall +{(plain / audited - 1) * 100:.0f}%); server CPU per read {plain_cpu * 1e6:.0f} -> "
              f"{audited_cpu * 1e6:.0f} µs (audit +{(audited_cpu / plain_cpu - 1) * 100:.0f}%){loops}")
    print(target_line(figures["audited"][8], figures["plain"][8], args.workers))
    if args.json:
        print(json.dumps(figures))


def target_line(audited: tuple[float, ...], plain: tuple[float, ...] | None, workers: int) -> str:
    """The figures the targets are stated in, at 8 connections: audited reads/s per worker (also
    as what one core's CPU would serve: 1 / server CPU per read), server CPU per audited read, and
    the audit's share of it (audited minus unaudited CPU, over audited)."""
    rate, cpu = audited[0], audited[1]
    share = f"{(cpu - plain[1]) / cpu * 100:.0f} %" if plain else "n/a (run without --audited-only)"
    return (f"TARGET audited reads: {rate / workers:,.0f}/s per worker wall ({1 / cpu:,.0f}/s per core of "
            f"server CPU; target >= 5,000), server CPU {cpu * 1e6:.0f} µs per read, audit share {share} "
            f"(target <= 10 %); load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
