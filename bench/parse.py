"""Parse and convert throughput for the three message shapes that dominate a community's traffic.

Prints CPU µs/message and messages/s per core (cheapest of 25 short batches) for: huren's tokenizer (parse only), parse +
conversion to a FHIR transaction Bundle, and for comparison hl7apy's ``parse_message`` and
python-hl7's ``hl7.parse`` when installed (few iterations: hl7apy takes tens of ms per message).

"convert" is (parse+convert) − parse: converting an already parsed message again would reuse the
segment's split fields. Replaying one message also flatters the converter's caches (ids,
timestamps, resident-ID checks), so "parse+convert varied" converts each of a series of variants
once, with distinct control ids, order and visit numbers, record numbers and timestamps (50
resident IDs) — the figure to expect from real traffic (item codes and reference ranges stay the
same, as they do in a feed).

    python bench/parse.py [--quick]
    python bench/parse.py --resources [--quick]   # convert CPU per resource builder, per message kind

``--resources`` puts a clock around each builder of a message's resources (Patient, Encounter,
ServiceRequest, Specimen, Observation, DiagnosticReport, Provenance, the Bundle, the order groups,
the new ids) and prints its exclusive CPU per message for the three kinds, varied messages:
where what is left of conversion goes, and whether a plan for a resource could pay (the fixed
part of a resource it would save against what varies in every message).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import re  # noqa: E402

from adapters.convert import convert  # noqa: E402
from adapters.hl7v2.header import decode_message  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.identity.nationalid import check_character  # noqa: E402
from engine.settings import Settings  # noqa: E402
from mappings.site import Site  # noqa: E402

FEEDS = ROOT / "examples" / "feeds"
MESSAGES = {
    "ORU^R01 12 OBX": "02_FNXRMYY_ORU_R01_blood_count.hl7",
    "ADT^A01": "01_FNXRMYY_ADT_A01_admission.hl7",
    "PACS ORU^R01 report": "04_FNXRMYY_ORU_R01_ct_report.hl7",
}


def rate(fn: Callable[[], object], seconds: float, min_runs: int = 3, batches: int = 25) -> tuple[float, int]:
    """Run ``fn`` in ``batches`` short batches over about ``seconds``; return (CPU µs per call of
    the cheapest batch, calls). CPU time (this process's), not wall time: on a box shared with
    other work a wall figure mostly measures the others. Many short batches rather than a few long
    ones: the cheapest short batch is the one least disturbed (caches, frequency), so the figure
    is repeatable."""
    fn()  # warm caches (YAML tables, zoneinfo)
    runs = 0
    best = float("inf")
    per_batch = max(1, min_runs // batches)
    for _ in range(batches):
        batch = 0
        start, cpu = time.perf_counter(), time.process_time()
        deadline = start + seconds / batches
        while True:
            fn()
            batch += 1
            if batch >= per_batch and time.perf_counter() >= deadline:
                break
        runs += batch
        best = min(best, (time.process_time() - cpu) / batch * 1e6)
    return best, runs


_VARIED_FIELDS = {"MSH": (10,), "PID": (3,), "PV1": (19,), "ORC": (2, 3), "OBR": (2, 3, 18), "TXA": (12,)}
_STAMP = re.compile(r"(?<![0-9])(20[0-9]{8})[0-9]{4}(?![0-9])")


def variants(text: str, count: int) -> list[str]:
    """``count`` copies of ``text`` that differ where real messages do (see the module doc)."""
    lines = [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]
    out = []
    for i in range(count):
        changed = []
        for line in lines:
            fields = line.split("|")
            for n in _VARIED_FIELDS.get(fields[0], ()):
                k = n - 1 if fields[0] == "MSH" else n  # MSH-1 is the separator itself
                if k < len(fields) and fields[k]:
                    fields[k] = "~".join(_vary_rep(rep, i) for rep in fields[k].split("~"))
            if fields[0] in ("ZDS", "IPC"):
                k = 1 if fields[0] == "ZDS" else 3
                comps = fields[k].split("^")
                comps[0] += f".{i + 1}"
                fields[k] = "^".join(comps)
            line = "|".join(fields)
            changed.append(_STAMP.sub(lambda m, i=i: f"{m.group(1)}{i // 60 % 60:02d}{i % 60:02d}", line))
        out.append("\r".join(changed) + "\r")
    return out


def _vary_rep(rep: str, i: int) -> str:
    comps = rep.split("^")
    value = comps[0]
    if len(comps) > 4 and comps[4] == "NNCHN" and len(value) == 18:
        # another valid resident ID: same area, birth date and sex, another sequence number
        body = value[:14] + f"{i % 50:02d}" + value[16]
        comps[0] = body + check_character(body)
    elif value:
        comps[0] = f"{value}-{i:04d}"
    return "^".join(comps)


# (module, function, what it builds) timed by ``--resources`` (every caller reaches them through
# their module, so replacing the module's attribute times every call)
_BUILDERS = (
    ("adapters.convert.common", "patient", "Patient"), ("adapters.convert.common", "encounter", "Encounter"),
    ("adapters.convert.results", "service_request", "ServiceRequest"),
    ("adapters.convert.results", "specimens", "Specimen"),
    ("adapters.convert.results", "observation", "Observation (all results)"),
    ("adapters.convert.results", "diagnostic_report", "DiagnosticReport"),
    ("adapters.convert.common", "provenance", "Provenance"), ("adapters.convert.common", "bundle", "Bundle"),
    ("adapters.convert.results", "groups", "order groups"),
    ("adapters.convert.pacs", "is_imaging", "imaging routing"),
    ("adapters.convert.results", "report_key", "order keys"), ("adapters.convert.results", "order_key", "order keys"),
    ("adapters.convert.lis", "patient_level", "patient-level segments"),
    ("adapters.convert", "template_for", "template routing"),
    ("adapters.convert.context", "_new_id", "new ids (SHA-1)"),
)


def by_resource(site: Site, count: int) -> None:
    """CPU per message of each resource builder (exclusive: a builder's callees timed as their
    own are not counted twice), varied messages of the ingest bench's three kinds, gc off."""
    import gc
    import importlib

    from bench.common import load_note
    from bench.ingest import KINDS

    spent: dict[str, int] = {}
    stack: list[int] = []
    clock = time.thread_time_ns

    def timed(fn: Callable[..., object], label: str) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            start = clock()
            stack.append(0)
            try:
                return fn(*args, **kwargs)
            finally:
                took = clock() - start
                inner = stack.pop()
                spent[label] = spent.get(label, 0) + took - inner
                if stack:
                    stack[-1] += took

        return run

    for module, name, label in _BUILDERS:
        owner = importlib.import_module(module)
        setattr(owner, name, timed(getattr(owner, name), label))
    print(f"convert CPU per message by what it builds (exclusive, us/msg, {count} varied messages each, gc off; {load_note()}):")
    for kind, make in KINDS.items():
        for i in range(200):  # plans learnt, tables compiled, caches in their steady state
            convert(parse(make(80_000_000 + i).decode("utf-8")), site)
        texts = [make(10_000_000 + i).decode("utf-8") for i in range(count)]
        messages = [parse(t) for t in texts]
        spent.clear()
        gc.collect()
        gc.disable()  # a collection would be charged to whichever builder allocated last
        start = clock()
        for message in messages:
            convert(message, site)
        whole = (clock() - start) / count / 1000
        gc.enable()
        parts = sorted(((k, v / count / 1000) for k, v in spent.items()), key=lambda kv: -kv[1])
        rest = whole - sum(v for _, v in parts)
        print(f"  {kind}: {whole:,.0f} us/msg (with the clocks) -- " + ", ".join(f"{k} {v:,.1f}" for k, v in parts)
              + f", the rest (routing, handlers, their loops) {rest:,.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs (make bench)")
    ap.add_argument("--resources", action="store_true", help="only the convert CPU per resource builder")
    args = ap.parse_args()
    if args.resources:
        by_resource(Site.load(Settings()), 300 if args.quick else 1500)
        return 0
    budget = 0.3 if args.quick else 2.0
    slow_runs = 2 if args.quick else 10
    site = Site.load(Settings())

    try:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.parser import parse_message
    except ImportError:  # pragma: no cover - hl7apy is a dependency
        parse_message = None
    try:
        import hl7 as python_hl7
    except ImportError:
        python_hl7 = None

    print(f"{'message':<22} {'bytes':>6} {'stage':<28} {'CPU µs/msg':>10} {'msg/s':>10}")
    for label, name in MESSAGES.items():
        text = decode_message((FEEDS / name).read_bytes())
        size = len(text.encode("utf-8"))
        rows: list[tuple[str, float]] = []
        rows.append(("huren parse", rate(lambda t=text: parse(t), budget)[0]))
        both = rate(lambda t=text: convert(parse(t), site), budget)[0]
        rows.append(("huren convert", both - rows[0][1]))
        rows.append(("huren parse+convert", both))
        # more variants than the run can use (≥ 100 µs each): none is converted twice, so no
        # cache holds its ids; a variant that fails to convert stops the bench with its error
        pool = iter(variants(text, int(budget / 100e-6) + 100))
        rows.append(("huren parse+convert varied", rate(lambda p=pool: convert(parse(next(p)), site), budget)[0]))
        if python_hl7 is not None:
            rows.append(("python-hl7 parse", rate(lambda t=text: python_hl7.parse(t), budget)[0]))
        if parse_message is not None:
            cr = text.replace("\r\n", "\r").replace("\n", "\r")
            us, _ = rate(
                lambda t=cr: parse_message(t, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True),
                0.0,
                min_runs=slow_runs,
                batches=slow_runs,
            )
            rows.append(("hl7apy parse_message", us))
        for stage, us in rows:
            print(f"{label:<22} {size:>6} {stage:<28} {us:>10.1f} {1e6 / us:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
