"""Ingest benchmark: messages/s per stage and over a real MLLP socket into SQLite, with ACKs.

    python bench/ingest.py [--quick] [--messages N] [--connections C] [--window W]
    python bench/ingest.py --stages [--messages N] [--stored M] [--returning]  # only the CPU per stage, in process
    python bench/ingest.py --only lab|adt|imaging         # only that kind's MLLP run (paired runs)
    python bench/ingest.py --commit-pages [--messages N] [--stored M]  # a commit's WAL pages by B-tree
    python bench/ingest.py --instructions [--messages N]  # for callgrind: see ``instructions``

Prints, for a 12-OBX ORU^R01 (lab), an ADT^A01 (registration) and an imaging ORU^R01 (PACS report):

  (a) parse only                       adapters.hl7v2.parser.parse
  (b) parse + convert + validate       + adapters.convert.convert + conformance Validator
  (c) full path                        a client process sends over MLLP (C connections, W messages in
                                       flight each); the server (this process) stores the raw message,
                                       converts, writes FHIR resources, audits, ACKs; SQLite on disk
and the share of server time per pipeline stage, plus the micro-costs of MSH extraction and of
building an ACK here versus with hl7apy.

(c) is given twice: messages per wall-clock second, which on a shared machine says what the
machine allowed, and the server's CPU per message (this process's CPU time over the run: event
loop, ingest worker, audit; the client is another process), whose inverse is the rate one core
sustains. Then the CPU per stage of the 12-OBX lab result (exclusive CPU time around each
collaborator of the pipeline, in-process batches of 50 on a fresh store), and last the target
line: the end-to-end figures against 1,000 messages/s, with the stages again on one line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import gc
import operator
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from adapters.hl7v2.ack import build_ack  # noqa: E402
from adapters.hl7v2.header import extract_header  # noqa: E402
from adapters.listeners.mllp import frame  # noqa: E402
from bench.common import load_note  # noqa: E402

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(n: int, birth: str = "19800101", male: bool = True) -> str:
    """A valid 18-character resident ID (ISO 7064 MOD 11-2 check character)."""
    seq = (n % 499) * 2 + (1 if male else 2)
    body = f"110101{birth}{seq:03d}"
    total = sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


# ``--obx23``: the performing organisation (XON) every result of ``oru_lab`` names in OBX-23, or none
PERFORMER = ""
# ``--obx19``: every result of ``oru_lab`` states its analysis time in OBX-19 (its own second of the message's
# minute, as an analyser stamps each result; public ELR feeds send it on every result: plan42)
ANALYSED = False


def oru_lab(n: int, *, own_person: bool = False) -> bytes:
    """A 12-OBX blood count; message ``n`` belongs to one of 499 residents (``n % 499``), who thus
    return, or with ``own_person`` to a resident of its own (born on another day). Each result names
    ``PERFORMER`` in OBX-23 when it is set (``--obx23``), and its own analysis time in OBX-19 with
    ``ANALYSED`` (``--obx19``)."""
    birth = (datetime.date(1950, 1, 1) + datetime.timedelta(days=n % 10_000_000 // 499)).strftime("%Y%m%d") \
        if own_person else "19800101"
    pid = national_id(n, birth)
    items = [("WBC", "白细胞计数", "6.2", "10~9/L", "3.5-9.5"), ("RBC", "红细胞计数", "4.8", "10~12/L", "4.3-5.8"),
             ("HGB", "血红蛋白", "145", "g/L", "130-175"), ("HCT", "红细胞压积", "0.43", "L/L", "0.40-0.50"),
             ("MCV", "平均红细胞体积", "90", "fL", "82-100"), ("MCH", "平均红细胞血红蛋白量", "30", "pg", "27-34"),
             ("MCHC", "平均红细胞血红蛋白浓度", "335", "g/L", "316-354"), ("PLT", "血小板计数", "210", "10~9/L", "125-350"),
             ("NEUT%", "中性粒细胞百分比", "60.1", "%", "40-75"), ("LYMPH%", "淋巴细胞百分比", "30.2", "%", "20-50"),
             ("MONO%", "单核细胞百分比", "6.1", "%", "3-10"), ("ALT", "丙氨酸氨基转移酶", "25", "U/L", "9-50")]

    def tail(i: int) -> str:  # OBX-15.. : the analysis time at 19, the performer at 23
        fields = [""] * 9
        if ANALYSED:
            fields[4] = f"20261101{n % 24:02d}{n % 60:02d}{i:02d}"
        if PERFORMER:
            fields[8] = PERFORMER
        while fields and not fields[-1]:
            fields.pop()
        return "".join("|" + f for f in fields)

    obx = "".join(
        f"OBX|{i}|NM|{code}^{name}^L||{value}|{unit.replace('~', chr(92) + 'R' + chr(92))}|{rng}|N|||F|||20261101090000{tail(i)}\r"
        for i, (code, name, value, unit, rng) in enumerate(items, 1))
    text = (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|LAB{n:09d}|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
        f"PID|1||{pid}^^^^NNCHN~MRN{n:07d}^^^FNXRMYY^MR||张^三||{birth}|M|||江苏省盐城市阜宁县^^阜宁^江苏^224400||13800000000\r"
        f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\r"
        f"ORC|RE|ORD{n:09d}|LAB{n:09d}\r"
        f"OBR|1|ORD{n:09d}|LAB{n:09d}|XCG^血常规^L|||20261101083000|||||||20261101083500|BLD^血液|D001^李^医生||||||20261101091000|||F\r"
        + obx
    )
    return text.encode("utf-8")


def adt_a01(n: int) -> bytes:
    pid = national_id(n, "19750512", male=False)
    text = (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101080000||ADT^A01^ADT_A01|ADT{n:09d}|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
        f"EVN|A01|20261101080000\r"
        f"PID|1||{pid}^^^^NNCHN~MRN{n:07d}^^^FNXRMYY^MR||王^芳||19750512|F|||江苏省盐城市阜宁县^^阜宁^江苏^224400||13900000000\r"
        f"PV1|1|I|内科^301^2^FNXRMYY||||D002^赵^医生|||MED||||1|||D002^赵^医生||V{n:09d}|||||||||||||||||||||||||20261101075500\r"
        f"DG1|1||I10^高血压^ICD10||20261101|A\r"
    )
    return text.encode("utf-8")


def oru_pacs(n: int) -> bytes:
    pid = national_id(n, "19660220")
    text = (
        f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|20261101103000||ORU^R01^ORU_R01|RIS{n:09d}|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
        f"PID|1||{pid}^^^^NNCHN~MRN{n:07d}^^^FNXRMYY^MR||刘^强||19660220|M\r"
        f"OBR|1|ORD{n:09d}|ACC{n:09d}|CT001^胸部CT平扫^L|||20261101100000|||||||||D003^孙^医生||||||20261101102500||CT|F\r"
        f"OBX|1|TX|CT001^胸部CT平扫^L|1|双肺纹理清晰，未见明显实质性病变。||||||F\r"
        f"OBX|2|TX|CT001^胸部CT平扫^L|2|印象：胸部CT平扫未见明显异常。||||||F\r"
        f"ZDS|1.2.840.113619.2.55.3.{n}^PACS^Application^DICOM\r"
    )
    return text.encode("utf-8")


KINDS = {"ORU^R01 lab (12 OBX)": oru_lab, "ADT^A01": adt_a01, "ORU^R01 imaging report": oru_pacs}


def rate(fn: Any, items: list[Any], seconds: float) -> float:
    """Calls per second of ``fn`` over ``items`` (cycled) for about ``seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
        done += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def micro(seconds: float) -> None:
    msg = oru_lab(1)
    header, _ = extract_header(msg)
    print(f"MSH extraction           {rate(lambda m: extract_header(m), [msg], seconds):>10,.0f} /s")
    print(f"ACK build (this module)  {rate(lambda h: build_ack(h, 'AA'), [header], seconds):>10,.0f} /s")
    try:
        from hl7apy.core import Message

        def hl7apy_ack(h: Any) -> str:
            m = Message("ACK", version="2.5.1")
            m.msh.msh_3 = h.receiving_application or "HUREN"
            m.msh.msh_4 = h.receiving_facility
            m.msh.msh_5 = h.sending_application
            m.msh.msh_6 = h.sending_facility
            m.msh.msh_9 = "ACK^R01^ACK"
            m.msh.msh_10 = "A1"
            m.msh.msh_11 = h.processing_id
            m.msa.msa_1 = "AA"
            m.msa.msa_2 = h.control_id
            return m.to_er7()

        print(f"ACK build (hl7apy)       {rate(hl7apy_ack, [header], min(seconds, 0.5)):>10,.0f} /s")
    except Exception as exc:  # report and go on: this line is informative
        print(f"ACK build (hl7apy)       n/a ({type(exc).__name__}: {exc})")


def warm_validators(engine: Any) -> None:
    """Compile the schema validators of the types the steady state writes, as a long-running
    server has long since done: each is compiled on its first use (~0.1-0.2 s, once per process),
    and the recognition hook's DetectedIssue first appears mid-run, when a repeated test is found."""
    from adapters.convert import convert
    from adapters.hl7v2.header import decode
    from adapters.hl7v2.parser import parse

    types = {"DetectedIssue"}
    for make in KINDS.values():
        conv = convert(parse(decode(make(0))[0]), engine.ingestor.site)
        types.update(e["resource"]["resourceType"] for e in conv.bundle["entry"])
    for rtype in sorted(types):
        engine.validator.prepare(rtype)


def stages(seconds: float, engine: Any) -> None:
    """(a) parse only and (b) parse + convert + validate, with the engine's own site and validator."""
    from adapters.convert import convert
    from adapters.hl7v2.header import decode
    from adapters.hl7v2.parser import parse

    site, validator = engine.ingestor.site, engine.validator
    warm_validators(engine)
    for name, make in KINDS.items():
        texts = [decode(make(i))[0] for i in range(50)]
        print(f"(a) parse only            {name:<24} {rate(parse, texts, seconds):>9,.0f} msg/s")

        def full(text: str) -> None:
            conv = convert(parse(text), site)
            for entry in conv.bundle["entry"]:
                validator.validate(entry["resource"])

        print(f"(b) parse+convert+valid.  {name:<24} {rate(full, texts, seconds):>9,.0f} msg/s")


async def _client(port: int, messages: list[bytes], connections: int, window: int) -> tuple[float, dict[str, int]]:
    codes: dict[str, int] = {}
    per_conn = [messages[i::connections] for i in range(connections)]

    async def one(batch: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        inflight = 0
        sent = 0
        received = 0
        while received < len(batch):
            while inflight < window and sent < len(batch):
                writer.write(frame(batch[sent]))
                sent += 1
                inflight += 1
            await writer.drain()
            ack = await reader.readuntil(b"\x1c\x0d")
            pos = ack.find(b"\rMSA|")
            code = ack[pos + 5 : pos + 7].decode() if pos >= 0 else "??"
            codes[code] = codes.get(code, 0) + 1
            received += 1
            inflight -= 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(b) for b in per_conn if b))
    return time.perf_counter() - start, codes


def client_main(args: argparse.Namespace) -> None:
    make = list(KINDS.values())[args.kind]
    messages = [make(args.offset + i) for i in range(args.messages)]
    elapsed, codes = asyncio.run(_client(args.port, messages, args.connections, args.window))
    print(f"{elapsed} {' '.join(f'{k}={v}' for k, v in codes.items())}")


async def _serve_and_measure(engine: Any, kind: int, count: int, offset: int, connections: int,
                             window: int) -> tuple[float, str]:
    from adapters.listeners.ingest_handler import IngestHandler
    from adapters.listeners.mllp import MLLPServer

    server = MLLPServer(IngestHandler(engine.ingestor), port=0, idle_timeout=60)  # as huren serve does
    await server.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", "--port", str(server.port), "--kind", str(kind),
            "--messages", str(count), "--offset", str(offset), "--connections", str(connections),
            "--window", str(window), "--obx23", PERFORMER, *(["--obx19"] if ANALYSED else []), stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
    finally:
        await server.stop()
    elapsed, codes = out.decode().split(" ", 1)
    return float(elapsed), codes.strip()


def _worker_cpu(ingestor: Any) -> float:
    """CPU seconds of the ingest worker thread so far (0 before it starts)."""
    worker = getattr(ingestor, "_worker", None)
    if worker is None or worker.ident is None or not worker.is_alive():
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(worker.ident))


def full_path(count: int, connections: int, window: int, only: int | None = None) -> None:
    from engine import heap
    from engine.engine import Engine
    from engine.settings import Settings

    summary = ""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            if only is None:
                stages(0.3 if count <= 500 else 1.0, engine)
            else:
                warm_validators(engine)
            heap.settle()  # as huren serve does once the engine is loaded
            for kind, name in enumerate(KINDS):
                if only is not None and kind != only:
                    continue
                engine.ingestor.stats.seconds = dict.fromkeys(engine.ingestor.stats.seconds, 0.0)
                batches0 = engine.ingestor.stats.batches
                worker0 = _worker_cpu(engine.ingestor)
                cpu0, loop0 = time.process_time(), time.thread_time()
                elapsed, codes = asyncio.run(_serve_and_measure(engine, kind, count, kind * 10_000_000,
                                                                connections, window))
                cpu = (time.process_time() - cpu0) / count
                loop_cpu = (time.thread_time() - loop0) / count  # the event loop: MLLP, handler, ACKs
                worker_cpu = (_worker_cpu(engine.ingestor) - worker0) / count
                stats = engine.ingestor.stats
                batches = stats.batches - batches0
                print(f"(c) MLLP -> SQLite, ACKed {name:<24} {count / elapsed:>9,.0f} msg/s wall, "
                      f"server CPU {cpu * 1e6:,.0f} us/msg = {1 / cpu:,.0f} msg/s per core  "
                      f"({count} msgs, {connections} conn x {window} in flight, "
                      f"{count / max(batches, 1):.1f} msgs/commit; ACKs {codes})")
                print(f"    server CPU by thread (us/msg): event loop (MLLP, ACKs) {loop_cpu * 1e6:,.0f}, "
                      f"ingest worker {worker_cpu * 1e6:,.0f}, others (audit, ...) "
                      f"{max(0.0, cpu - loop_cpu - worker_cpu) * 1e6:,.0f}")
                if kind == 0:
                    summary = (f"END TO END  ORU^R01 12 OBX over MLLP, ACK after the durable write, recognition, "
                               f"identity and audit on: {count / elapsed:,.0f} msg/s wall, server CPU "
                               f"{cpu * 1e6:,.0f} us/msg = {1 / cpu:,.0f} msg/s per core; {load_note()}; "
                               "TARGET 1,000 msg/s (1,000 us/msg)")
                busy = sum(stats.seconds.values())
                share = ", ".join(f"{k} {v / elapsed * 100:.0f}%" for k, v in stats.seconds.items())
                print(f"    server time per stage (share of wall time): {share}; "
                      f"other (loop, sockets, client) {max(0.0, 1 - busy / elapsed) * 100:.0f}%")
    if only is not None:
        return
    per = stage_breakdown(200 if count <= 500 else 600)
    print(summary)
    print("    per stage (in-process, us/msg): " + ", ".join(
        f"{name.split(' (')[0]} {us:,.0f}" for name, us in sorted(per.items(), key=lambda kv: -kv[1])
        if name != "all"))


def instructions(count: int, batch: int = 50, by_stage: Path | None = None, sizes: Sequence[int] = ()) -> None:
    """The ``--stages`` run without the stage clock, its timed messages inside one call of
    ``operator.call`` (a C function nothing else in the engine calls), so that

        valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
            python bench/ingest.py --instructions --messages 300

    counts the instructions of those messages alone: the engine's start and warm-up, ~12 G
    instructions under valgrind, are left out instead of subtracted (a run of none was the
    baseline before, and its own noise was the size of a small cut). Divide the collected total
    by ``--messages``; run each tree twice (hash seeds, instants and fresh ids vary the count).
    Valgrind counts SHA-256 in software (~0.8 M instructions a message of ~13.6 M here), which
    this CPU does in hardware: compare trees, not the share of hashing.

    ``by_stage``: each stage's calls go through a C function of their own, whose pairs are
    written to that file for ``bench/stage_instructions.py`` (the split by stage). ``sizes``
    (``--batch-sizes 30,38,32``): the timed messages in batches of these sizes in turn instead of
    ``batch`` each, as a queue's varied batches come (statements whose text depends on a batch's
    length are then compiled inside the count: perf40)."""
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine, batch)
            messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            calls = None
            if by_stage is not None:
                from bench.stage_instructions import StageCalls, build

                calls = StageCalls(build(Path(tmp)))
                calls.attach(engine)

            cuts, at = [], 0
            while at < count:
                size = sizes[len(cuts) % len(sizes)] if sizes else batch
                cuts.append((at, min(at + size, count)))
                at += size

            def timed() -> None:
                for start, stop in cuts:
                    engine.ingestor.process(messages[start:stop])

            cpu0 = time.process_time()
            if calls is not None:
                calls.reset()  # the calls of the collected part alone (``split``'s wrapper correction)
            operator.call(timed)
            spent = time.process_time() - cpu0
            if calls is not None and by_stage is not None:
                calls.save(by_stage)
    told = ",".join(map(str, sizes)) if sizes else batch
    print(f"{count} lab messages in batches of {told} after the warm-up: {spent / count * 1e6:,.0f} us/msg "
          f"of CPU ({load_note()}); under callgrind, divide the collected instructions by {count}")


class StageClock:
    """Exclusive CPU time (``time.process_time``) per pipeline stage, by wrapping the collaborators
    the ingestor and the repository call: a stage's time excludes the stages it calls (the
    repository's write path minus validation, indexing, the backend and the hooks, ...).

    Unlike a profiler it costs only two clock reads per call (~180 calls per message, ~1.3 us
    each: printed with the figures as the measurement's own share), and the figures add up to
    the measured CPU per message ("other" is the rest: the batch loop, MSH and ACK, transaction
    bookkeeping, the commits, and background threads). Thread CPU time per stage
    (``time.thread_time``) of the measuring thread, the process's CPU time in all.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls = 0  # wrapped calls made: each costs two clock reads (~1 us each), see ``cost_per_call``
        self.own_calls: dict[str, int] = {}  # stage -> its timed calls
        self.child_calls: dict[str, int] = {}  # stage -> timed calls made from inside it
        self._thread = threading.get_ident()  # the thread whose calls are timed
        self._local = threading.local()  # per thread: a stack of [stage, started, time of callees]

    @staticmethod
    def cost_per_call(n: int = 20_000) -> tuple[float, float]:
        """Thread CPU seconds one wrapped call adds in all (its clock reads and bookkeeping), and
        the part of it the call's own stage records (the rest lands on the caller's stage)."""
        clock = StageClock()
        noop = clock.wrap(lambda: None, "noop")
        t0 = time.thread_time()
        for _ in range(n):
            noop()
        return (time.thread_time() - t0) / n, clock.seconds["noop"] / n

    def corrected(self, n: int = 20_000) -> tuple[dict[str, float], float]:
        """Seconds per stage without the measurement's own cost: each stage loses what its own
        timed calls recorded of their clock reads, and what the timed calls it made charged to it.
        Returns the corrected seconds and the measurement's total cost (seconds)."""
        whole, own = self.cost_per_call(n)
        charged = whole - own
        out = {stage: max(0.0, secs - self.own_calls.get(stage, 0) * own - self.child_calls.get(stage, 0) * charged)
               for stage, secs in self.seconds.items()}
        return out, self.calls * whole

    def wrap(self, fn: Any, stage: str) -> Any:
        """Time ``fn`` as ``stage`` when the measuring thread (the one that made this clock) calls
        it; other threads' calls (the audit log's background indexer uses the same store) pass
        untimed, their CPU being the "background threads" line: timed here as well, it was counted
        twice."""
        clock = time.thread_time  # this thread's CPU: a background thread's is not a stage's
        local = self._local
        measuring = self._thread

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != measuring:
                return fn(*args, **kwargs)
            self.calls += 1
            stack = getattr(local, "stack", None)
            if stack is None:
                stack = local.stack = []
            frame = [stage, clock(), 0.0]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                spent = clock() - frame[1]
                self.seconds[stage] = self.seconds.get(stage, 0.0) + spent - frame[2]
                self.own_calls[stage] = self.own_calls.get(stage, 0) + 1
                if stack:
                    stack[-1][2] += spent
                    parent = stack[-1][0]
                    self.child_calls[parent] = self.child_calls.get(parent, 0) + 1

        return timed

    def attach(self, engine: Any) -> None:
        ingestor, repo = engine.ingestor, engine.repository
        for obj, name, stage in (
            (ingestor, "parse", "parse"), (ingestor, "convert", "convert"), (ingestor, "sign", "sign Provenance"),
            (ingestor, "sign_many", "sign Provenance"),
            (engine.validator, "validate", "validate"), (engine.validator, "valid_planned", "validate"),
            (repo, "_store", "merge + version (repository)"),
            (repo.indexer, "rows", "index rows"), (repo.backend, "put_many", "backend put (SQL + hashing)"),
            (repo.backend, "current_many", "backend reads"), (repo.backend, "current", "backend reads"),
            (engine.audit, "record", "audit log"), (engine.audit, "record_many", "audit log"),
            (ingestor.messages, "insert_many", "message store"), (ingestor.messages, "mark_processed", "message store"),
            (ingestor.messages, "count_fidelity_many", "message store"),
            (ingestor.messages, "count_fidelity", "message store"),
        ):
            if hasattr(obj, name):  # so that the same bench measures an earlier version too
                setattr(obj, name, self.wrap(getattr(obj, name), stage))
        names = {"Recognition": "hook recognition", "IdentityService": "hook identity (MPI)",
                 "Referrals": "hook referral"}
        repo._hooks[:] = [self.wrap(h, names.get(getattr(h, "__qualname__", "").split(".")[0], "hook other"))
                          for h in repo._hooks]
        repo._batch_hooks[:] = [self.wrap(h, names.get(getattr(h, "__qualname__", "").split(".")[0], "hook other"))
                                for h in repo._batch_hooks]
        # each mark its own line (until the twenty-eighth round all four were "recognition HR mark": 40
        # calls a 12-OBX message, of which recognition's are 14)
        marks = {"HRMark": "recognition HR mark", "ResultLabels": "mark: result labels",
                 "DocumentLabels": "mark: document labels", "Referrals": "mark: referral deductible"}
        repo._marks[:] = [self.wrap(m, marks.get(getattr(m, "__qualname__", "").split(".")[0], "mark: other"))
                          for m in repo._marks]
        # the hooks' per-batch scopes (what they read first for a batch, and write at its end)
        # count as their hooks
        ingestor.batch_scopes = tuple(
            self.wrap_context(s, names.get(getattr(s, "__qualname__", "").split(".")[0], "hook other"))
            for s in getattr(ingestor, "batch_scopes", ()))
        self.attach_other(engine)

    def attach_other(self, engine: Any) -> None:
        """The pieces of what used to be one "other" figure, each its own stage (prefixed ``·``):
        the pipeline's own code (batch loop, envelope, MSH, ACK), the repository's write call
        around the stages above, the transaction bookkeeping and the commits themselves."""
        import engine.ingest as ingest_module

        ingestor, repo, store = engine.ingestor, engine.repository, engine.store
        for obj, name, stage in (
            (ingestor, "_run_batch", "· pipeline (batch loop, envelope, statuses)"),
            (ingestor, "_phase1", "· pipeline: envelope, idempotency (phase 1)"),
            (ingestor.messages, "get", "· pipeline: envelope, idempotency (phase 1)"),
            (ingestor.messages, "get_many", "· pipeline: envelope, idempotency (phase 1)"),
            (ingestor.messages, "new_document", "· pipeline: envelope, idempotency (phase 1)"),
            (ingestor, "_write", "· pipeline: per-message write bookkeeping"),
            (ingestor, "_decide", "· pipeline: envelope, idempotency (phase 1)"),
            (ingest_module, "read_message", "· pipeline: MSH read"),
            (ingest_module, "_release", "· pipeline: freeing the batch (_release)"),
            (ingestor.journal, "begin", "· pipeline: in-flight journal"),
            (ingestor.journal, "end", "· pipeline: in-flight journal"),
            (ingestor, "_prepare", "· pipeline: prepare (lists, target check)"),
            (ingestor, "_write_batch", "· pipeline: batch write (lists, keys, scopes)"),
            (ingestor, "_finish", "· pipeline: finish (outcomes, futures)"),
            (ingestor, "_outcome", "· ACK build"),
            (ingestor, "_acked", "· ACK build"),
            (ingest_module, "extract_header", "· MSH extraction"),
            (ingest_module, "_audit_event", "· audit event build"),
            (ingestor, "_write_then_sign", "· Provenance targets"),
            (ingestor, "_versioned", "· Provenance targets"),
            (ingestor, "_write_provenances", "· Provenance targets"),
            (repo, "write_many", "· repository write_many (rest)"),
            (repo, "valid_groups", "· repository write_many (rest)"),
            (repo, "_flush", "· repository write_many (rest)"),
        ):
            if hasattr(obj, name):  # so that the same bench measures an earlier version too
                setattr(obj, name, self.wrap(getattr(obj, name), stage))
        for name in ("transaction", "flat_transaction"):
            if hasattr(store, name):
                setattr(store, name, self.wrap_context(getattr(store, name), "· transactions + COMMIT"))

    @contextlib.contextmanager
    def collections(self, stage: str = "· garbage collection") -> Iterator[None]:
        """Count the cyclic collector's runs in the measuring thread as ``stage``, taken out of the
        stage they fell in (a collection runs at whatever allocation crosses its threshold: after
        a batch, the first one once the paused collector resumes)."""
        local, measuring = self._local, self._thread
        started: list[float] = []
        self.seconds.setdefault(stage, 0.0)  # printed when no collection ran too

        def callback(phase: str, info: dict[str, Any]) -> None:
            if threading.get_ident() != measuring:
                return
            if phase == "start":
                started.append(time.thread_time())
                return
            if not started:
                return
            spent = time.thread_time() - started.pop()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + spent
            stack = getattr(local, "stack", None)
            if stack:
                stack[-1][2] += spent  # not the interrupted stage's own time

        gc.callbacks.append(callback)
        try:
            yield
        finally:
            gc.callbacks.remove(callback)

    def wrap_context(self, make: Any, stage: str) -> Any:
        """A context-manager factory whose enter and exit (BEGIN, SAVEPOINT, COMMIT) count as ``stage``."""
        enter_timed = self.wrap(lambda cm: cm.__enter__(), stage)
        exit_timed = self.wrap(lambda cm, *exc: cm.__exit__(*exc), stage)

        class Timed:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.cm = make(*args, **kwargs)

            def __enter__(self) -> Any:
                return enter_timed(self.cm)

            def __exit__(self, *exc: Any) -> Any:
                return exit_timed(self.cm, *exc)

        return Timed


def prefill(engine: Any, stored: int, batch: int) -> None:
    """``stored`` lab messages ingested untimed, each of a resident of its own, so that what is
    timed after meets a database of that size and no more returning residents than without."""
    for start in range(0, stored, batch):
        engine.ingestor.process([(oru_lab(70_000_000 + i, own_person=True), "bench", "127.0.0.1:1")
                                 for i in range(start, min(start + batch, stored))])


def one_at_a_time(engine: Any, messages: Sequence[bytes]) -> tuple[list[Any], float, float]:
    """Each of ``messages`` ingested alone, in order, inside ``operator.call`` (what a callgrind run's
    ``--toggle-collect=_operator_call`` collects): the outcomes, then the wall and CPU seconds spent.
    One loop for the benches that time a message at a time (tfix34_corrections, tfix35_reruns)."""
    alone = [[(m, "bench", "127.0.0.1:1")] for m in messages]
    outcomes: list[Any] = []

    def timed() -> None:
        for one in alone:
            outcomes.extend(engine.ingestor.process(one))

    wall0, cpu0 = time.perf_counter(), time.process_time()
    operator.call(timed)
    return outcomes, time.perf_counter() - wall0, time.process_time() - cpu0


def first_observation(engine: Any, control_id: str) -> str:
    """The id of the first Observation the stored FNXRMYY message ``control_id`` wrote."""
    from engine.messages import message_id

    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control_id))
    assert doc is not None, control_id
    return next(r.split("/")[1] for r in doc["resources"] if r.startswith("Observation/"))


def settle_warm(engine: Any, batch: int = 50) -> None:
    """Three batches of lab messages (the third of returning residents of its own), the validators
    warmed and the heap settled: the state of an engine that ``huren serve`` has run for a while,
    before anything is timed."""
    from engine import heap

    warm = [(oru_lab(90_000_000 + i), "bench", "127.0.0.1:1") for i in range(2 * batch)]
    # and a batch of residents of their own (``own_person``: not the timed messages' residents, whose
    # records and link versions the timed messages would then write more of), a first, second and
    # third record each (an ID number is its ``n`` modulo 499 x 10**7): a returning person's new
    # record and the link versions of the earlier ones are Patient shapes of their own, whose index
    # plans (``index_plan``, ~13 ms of CPU each, once a process) were otherwise compiled inside the
    # timed messages -- ~40 us a message of "index rows" in a 600-message run (perfingest29)
    again = 499 * 10_000_000
    warm += [(oru_lab(80_000_000 + again * k + i, own_person=True), "bench", "127.0.0.1:1")
             for k in range(3) for i in range(max(1, batch // 3))]
    for start in range(0, len(warm), batch):
        engine.ingestor.process(warm[start : start + batch])
    warm_validators(engine)
    heap.settle()


def returning_lab(n: int) -> bytes:
    """``oru_lab(n)`` again as a later order of the same resident: another control id and order
    numbers, the same PID (MRN), so its thin Patient is found stored (create-only)."""
    return (oru_lab(n).replace(b"LAB%09d" % n, b"LAB%09d" % (n + 10_000_000))
            .replace(b"ORD%09d" % n, b"ORD%09d" % (n + 10_000_000)))


def stage_breakdown(count: int, batch: int = 50, stored: int = 0, returning: bool = False) -> dict[str, float]:
    """CPU per 12-OBX message per stage, in-process batches of ``batch`` (as group commit forms
    them under load) on a fresh engine settled as ``huren serve`` settles it; µs per message.

    ``stored``: lab messages ingested first, untimed, each of a resident of its own (so the timed
    ones meet no more returning residents than without), so that the timed ones meet a database
    of that size (the commit writes the pages a batch changes, and where keys are hashes that
    grows with the tables).
    ``returning``: every timed message is a later order of a resident whose first one was
    stored before, untimed (``returning_lab``): its thin Patient is found stored, as for most
    of a production lab feed; without it every timed message brings a new Patient."""
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            prefill(engine, stored, batch)
            if returning:
                for start in range(0, count, batch):
                    engine.ingestor.process([(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1")
                                             for i in range(start, min(start + batch, count))])
            settle_warm(engine, batch)
            clock = StageClock()
            clock.attach(engine)
            make = returning_lab if returning else oru_lab
            messages = [(make(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            cpu0, thread0 = time.process_time(), time.thread_time()
            with clock.collections():
                for start in range(0, count, batch):
                    engine.ingestor.process(messages[start : start + batch])
            total = time.process_time() - cpu0
            this_thread = time.thread_time() - thread0
    seconds, overhead = clock.corrected()
    per = {k: v / count * 1e6 for k, v in seconds.items()}
    measured = total - overhead  # what the code cost without the measurement's clock reads
    per["· background threads"] = max(0.0, (total - this_thread) / count * 1e6)
    per["· rest (unwrapped calls)"] = max(0.0, measured / count * 1e6 - sum(per.values()))
    per["other (batch loop, MSH, ACK, commits)"] = sum(v for k, v in per.items() if k.startswith("·"))
    whole = measured / count * 1e6
    print(f"CPU per stage, ORU^R01 lab, in-process batches of {batch} ({count} msgs"
          + (f" after {stored:,} stored" if stored else "") + (", returning residents" if returning else "") + ", "
          f"{whole:,.0f} us/msg in all without the measurement's own {overhead / count * 1e6:,.0f} "
          f"({clock.calls / count:,.0f} timed calls a message, removed from each stage and its caller); "
          f"exclusive CPU per stage; {load_note()}):")
    for name, us in sorted(per.items(), key=lambda kv: -kv[1]):
        if name.startswith("·"):
            continue
        print(f"    {name:<46} {us:7.0f} us/msg  {us / whole * 100:5.1f}%")
        if name.startswith("other"):
            for piece, pus in sorted(per.items(), key=lambda kv: -kv[1]):
                if piece.startswith("·"):
                    print(f"      {piece:<44} {pus:7.0f} us/msg  {pus / whole * 100:5.1f}%")
    per["all"] = whole
    return {k: v for k, v in per.items() if not k.startswith("·")}


class _TimedConnection:
    """A SQLite connection whose ``COMMIT`` statements are timed (thread CPU), for ``commit_pages``."""

    def __init__(self, conn: Any) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "commit_seconds", 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "commit_seconds":
            object.__setattr__(self, name, value)
        else:
            setattr(self._conn, name, value)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql != "COMMIT":
            return self._conn.execute(sql, *args)
        t0 = time.thread_time()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self.commit_seconds += time.thread_time() - t0


def commit_pages(count: int, batch: int = 50, stored: int = 0) -> None:
    """What a batch's COMMIT writes and costs: the WAL pages of each commit by the B-tree they
    belong to (the frame headers' page numbers, each page's owner per ``dbstat``), and the CPU of
    the COMMIT statements with SQLite's automatic checkpoints as configured and without them.

    Why: the commit's cost is the pages a batch changes, appended to the WAL, plus the checkpoints
    that copy them to the database; which tables those pages belong to says whose layout to change."""
    import collections
    import struct

    from engine.engine import Engine
    from engine.settings import Settings

    figures = {}
    for checkpoints in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
            with Engine(settings) as engine:
                prefill(engine, stored, batch)
                settle_warm(engine, batch)
                conn = engine.store.conn
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                interval = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
                if not checkpoints:
                    conn.execute("PRAGMA wal_autocheckpoint=0")
                    if getattr(engine.store, "checkpointer", None) is not None:  # nor on its own thread
                        engine.store.checkpointer.close()
                timed = engine.store._conn = _TimedConnection(conn)  # (``conn`` is a property)
                messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
                for start in range(0, count, batch):
                    engine.ingestor.process(messages[start : start + batch])
                engine.store._conn = conn
                figures[checkpoints] = timed.commit_seconds / count * 1e6
                if checkpoints:
                    continue
                wal = Path(str(settings.sqlite_path) + "-wal").read_bytes()
                page_size = struct.unpack(">I", wal[8:12])[0]
                owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
                per_tree: collections.Counter[str] = collections.Counter()
                commits, offset = 0, 32
                while offset + 24 + page_size <= len(wal):
                    page, after = struct.unpack(">II", wal[offset : offset + 8])
                    per_tree[owner.get(page, "(pages freed since)")] += 1
                    commits += after != 0  # a commit frame carries the database size after it
                    offset += 24 + page_size
    frames = sum(per_tree.values()) / max(commits, 1)
    print(f"COMMIT of {count} lab messages in batches of {batch}" + (f" after {stored:,} stored" if stored else "")
          + f": {figures[True]:,.0f} us/msg of CPU with checkpoints every {interval:,} pages, "
          f"{figures[False]:,.0f} without; {frames:,.0f} WAL frames of {page_size // 1024} KiB per commit "
          f"({commits} commits; {load_note()}), by B-tree:")
    for name, n in per_tree.most_common(20):
        print(f"    {name:<46} {n / commits:7.1f}")


class _CountingConnection(_TimedConnection):
    """A SQLite connection that counts its statements by their text, the rows each
    ``executemany`` binds and the thread CPU each statement takes, for ``counts``: which of
    "backend put" and "transactions + COMMIT" is which statement (the COMMIT alone, each
    table's rows), in the same run as the counts."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        object.__setattr__(self, "statements", collections.Counter())
        object.__setattr__(self, "rows", collections.Counter())
        object.__setattr__(self, "cpu", collections.Counter())

    def execute(self, sql: str, *args: Any) -> Any:
        key = _statement(sql)
        self.statements[key] += 1
        t0 = time.thread_time()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self.cpu[key] += time.thread_time() - t0

    def executemany(self, sql: str, seq: Any) -> Any:
        seq = list(seq)
        key = _statement(sql)
        self.statements[key] += 1
        self.rows[key] += len(seq)
        t0 = time.thread_time()
        try:
            return self._conn.executemany(sql, seq)
        finally:
            self.cpu[key] += time.thread_time() - t0


def _statement(sql: str) -> str:
    """A statement's text without its literals and parameter lists: what it does, once."""
    text = re.sub(r"'[^']*'", "?", " ".join(sql.split()))
    return re.sub(r"(\(\?(, ?\?)*\),? ?)+", "(...) ", re.sub(r"-?\b\d+\b", "?", text))[:100]


_DIGESTS = ("digest", "hexdigest")  # a hash's result asked for: once per value hashed (states are copied)


def counts(count: int, batch: int = 50) -> None:
    """What a 12-OBX message makes the pipeline do, counted rather than timed: the writer
    connection's statements and the rows each binds, the serialisations, parses and hashes (C
    calls, through ``sys.setprofile`` in the ingest thread), and the bytes its stored rows hold.

    Why: a stage's time says how much, not how often; work done twice, or rows nobody searches,
    show as counts (README: "Where a 12-OBX message's work goes, counted")."""
    from engine.engine import Engine
    from engine.settings import Settings

    dumps: collections.Counter[str] = collections.Counter()  # orjson.dumps by the function calling it
    calls: collections.Counter[str] = collections.Counter()  # loads, b2a_base64, digests by hash

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "c_call":
            return
        name = getattr(arg, "__name__", "")
        if name == "dumps" and getattr(arg, "__module__", "") == "orjson":
            caller = frame.f_back if frame.f_code.co_name == "dumps" and frame.f_back is not None else frame
            dumps[f"{Path(caller.f_code.co_filename).stem}.{caller.f_code.co_name}"] += 1
        elif name in _DIGESTS:
            calls[getattr(getattr(arg, "__self__", None), "name", "?")] += 1
        elif name in ("loads", "b2a_base64"):
            calls[name] += 1

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine, batch)
            conn = engine.store.conn  # (the property creates the schema asked for first)
            first = (conn.execute("SELECT max(rid) FROM fhir_resource").fetchone()[0] or 0) + 1
            counted = engine.store._conn = _CountingConnection(conn)  # (``conn`` is a property)
            messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
            sys.setprofile(profile)
            try:
                for start in range(0, count, batch):
                    engine.ingestor.process(messages[start : start + batch])
            finally:
                sys.setprofile(None)
                engine.store._conn = conn
            stored = conn.execute(
                "SELECT count(*), sum(length(body)), sum(length(sortkeys)), sum(length(hkeys)), sum(length(ranges)) "
                "FROM fhir_resource WHERE rid >= ?", (first,)).fetchone()
    per = 1 / count
    print(f"Counted per ORU^R01 lab message (12 OBX), {count} in batches of {batch} ({load_note()}):")
    print(f"  SQL statements on the writer connection: {sum(counted.statements.values()) * per:.1f}; "
          f"rows bound by executemany: {sum(counted.rows.values()) * per:.1f}; their thread CPU "
          f"{sum(counted.cpu.values()) * per * 1e6:,.0f} us (each statement's, dearest first)")
    for sql, cpu in counted.cpu.most_common(12):
        n, rows = counted.statements[sql], counted.rows.get(sql)
        print(f"    {n * per:6.2f}" + (f" x {rows / n:6.1f} rows" if rows else " " * 12)
              + f" {cpu * per * 1e6:6.1f} us  {sql}")
    print("  orjson.dumps by caller: " + ", ".join(f"{name} {n * per:.1f}" for name, n in dumps.most_common(8)))
    print("  hashes (digests) and other calls: " + ", ".join(f"{name} {n * per:.1f}" for name, n in calls.most_common()))
    rows, body, sortkeys, hkeys, ranges = (v or 0 for v in stored)
    print(f"  resource rows {rows * per:.1f}: bodies {body * per:,.0f} B, sort keys {sortkeys * per:,.0f} B, "
          f"hkeys {hkeys * per:,.0f} B, ranges {ranges * per:,.0f} B")



def _batch_sizes(text: str) -> list[int]:
    """``--batch-sizes``: whole numbers of at least 1, comma-separated (a size of 0 would never end the run)."""
    try:
        sizes = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole numbers: {text!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"a batch holds at least one message: {text!r}")
    return sizes

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (make bench)")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--window", type=int, default=16, help="messages in flight per connection")
    parser.add_argument("--stages", action="store_true",
                        help="only the in-process CPU per stage of the 12-OBX lab result (--messages of them)")
    parser.add_argument("--stored", type=int, default=0,
                        help="with --stages: lab messages stored first, untimed (the database's size)")
    parser.add_argument("--returning", action="store_true",
                        help="with --stages: every timed message a later order of a resident stored before "
                             "(its thin Patient found stored)")
    parser.add_argument("--commit-pages", action="store_true",
                        help="only the WAL pages a batch's COMMIT writes, by B-tree, and its CPU with and "
                             "without checkpoints (--messages lab messages, --stored first)")
    parser.add_argument("--counts", action="store_true",
                        help="only what a lab message makes the pipeline do, counted: SQL statements and "
                             "rows, serialisations and hashes, stored bytes (--messages of them)")
    parser.add_argument("--instructions", action="store_true",
                        help="only the --stages messages, without the stage clock, inside one operator.call "
                             "(for callgrind's --toggle-collect=_operator_call; --messages of them)")
    parser.add_argument("--by-stage", type=Path, default=None, metavar="PAIRS.json",
                        help="with --instructions: each stage's calls through a C function of their own, "
                             "their pairs written here for bench/stage_instructions.py")
    parser.add_argument("--batch-sizes", default=[], type=_batch_sizes, metavar="N,N,...",
                        help="with --instructions: the timed messages in batches of these sizes in turn (not 50 each)")
    parser.add_argument("--only", choices=["lab", "adt", "imaging"],
                        help="only the MLLP run (c) of this message kind: for paired runs")
    parser.add_argument("--obx23", default="", metavar="XON",
                        help="the lab messages' results each name this performing organisation in OBX-23 "
                             "(e.g. 'Reference Lab^^^^^^^^^RL001'; the sender itself: '^^^^^^^^^FNXRMYY')")
    parser.add_argument("--obx19", action="store_true",
                        help="the lab messages' results each state their own analysis time in OBX-19")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--kind", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PERFORMER, ANALYSED
    PERFORMER = args.obx23
    ANALYSED = args.obx19
    if args.client:
        client_main(args)
        return
    count = 300 if args.quick else args.messages
    if args.stages:
        stage_breakdown(count, stored=args.stored, returning=args.returning)
        return
    if args.commit_pages:
        commit_pages(count, stored=args.stored)
        return
    if args.counts:
        counts(count)
        return
    if args.instructions:
        instructions(count, by_stage=args.by_stage, sizes=args.batch_sizes)
        return
    print(f"huren ingest benchmark (pid {os.getpid()}, python {sys.version.split()[0]})")
    if args.only:
        full_path(count, args.connections, args.window, only=["lab", "adt", "imaging"].index(args.only))
        return
    micro(0.2 if args.quick else 1.0)
    full_path(count, args.connections, args.window)


if __name__ == "__main__":
    main()
