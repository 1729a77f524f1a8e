"""Who registered a record, before and after registry34's registrations table (CPU time, in process):

    python bench/registry34_registrar.py [--calls N] [--results 450,5000] [--root TREE] [--ingest-only]

(1) The registrar read: a record with K lab results (one Provenance each) before its HIS A04, on SQLite;
the HIS's A08 restating it as another person goes through ``check_persons`` (``_registered``). "after":
as this tree answers (one query of ``hl7_registrations``, the trail mark, the epoch); "before": the walk
over the record's Provenances the code did before (``persons._walked``, kept for marked records) --
up to 5 pages of 1,000 Provenances, each page's message documents and writer marks, the Patient's
versions; past 5,000 it answers "cannot be told" (None). Each answer is printed beside its cost. The
same for a record with K results and no registration (a placeholder: "unregistered").
(2) The hot path: ingest CPU per message (batches of 50 through ``Ingestor.process``) of A04s (each a
new record: one registration row written in the filing transaction) and of 1-OBX results (no row; the
trail check at each put). ``--root``: another checkout's code (main's, for the figure before);
``--ingest-only`` skips (1), which needs this tree. Figures: the median of 5 rounds of N calls."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--calls", type=int, default=20)
parser.add_argument("--results", default="450,5000")
parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
parser.add_argument("--ingest-only", action="store_true")
parser.add_argument("--messages", type=int, default=500, help="messages per ingest round (part 2)")
ARGS = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_per_call  # noqa: E402 -- this tree's, whichever --root is measured

sys.path.insert(0, ARGS.root)

from adapters.convert import convert, persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def adt(control: str, number: str, name: str, birth: str, sex: str, event: str = "A04") -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{number}^^^FNXRMYY^MR||{name}||{birth}|{sex}\rPV1|1|O\r")


def oru(control: str, number: str) -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{number}^^^FNXRMYY^MR||张^三||19850412|M\r"
            f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261201090000\r")


def per_call(fn, n: int, scale: float = 1e3) -> float:  # noqa: ANN001 -- a callable
    return cpu_per_call(fn, n, scale)


def filed(ingest, raws: list[str]) -> None:  # noqa: ANN001 -- the Ingestor
    for at in range(0, len(raws), 50):
        outcomes = ingest.process([(r.encode(), "bench", "b") for r in raws[at:at + 50]])
        assert all(o.code == "AA" for o in outcomes), [o.ack for o in outcomes if o.code != "AA"][:1]


def registrar(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, ingest = engine.site, engine.repository, engine.ingestor
        for results in (int(k) for k in ARGS.results.split(",")):
            number = f"R{results}"
            filed(ingest, [oru(f"{number}-{i}", number) for i in range(results)])
            filed(ingest, [adt(f"{number}-A", number, "张^三", "19850412", "M")])
            a08 = convert(parse(adt(f"{number}-B", number, "李^四", "19900101", "F", "A08")), site)
            (ref,) = a08.corrections

            def call(a08=a08) -> None:  # noqa: ANN001 -- the conversion
                persons.check_persons(a08, repo.read_many, (), repo.search, ingest.messages)
                a08.warnings.clear()

            def walk(ref=ref) -> str | None:  # noqa: ANN001 -- the record
                return persons._walked(ref, repo.search, ingest.messages, (), repo)

            after = persons._registered(ref, repo.search, ingest.messages, (), repo.read_many)
            print(f"{results:5d} results + A04: after  {per_call(call, n):8.2f} ms a check_persons "
                  f"({per_call(lambda ref=ref: persons._registered(ref, repo.search, ingest.messages), n):8.3f} ms "
                  f"the registrar read), answer {after!r}")
            print(f"{results:5d} results + A04: before {per_call(walk, max(1, n // 4)):8.2f} ms the walk, "
                  f"answer {walk()!r}")
            placeholder = f"P{results}"  # the same results, no registration: "unregistered" (one _count=1 search)
            filed(ingest, [oru(f"{placeholder}-{i}", placeholder) for i in range(results)])
            (held,) = convert(parse(adt(f"{placeholder}-B", placeholder, "李^四", "19900101", "F", "A08")),
                              site).corrections
            print(f"{results:5d} results, no A04: after  "
                  f"{per_call(lambda r=held: persons._registered(r, repo.search, ingest.messages), n):8.3f} ms, "
                  f"answer {persons._registered(held, repo.search, ingest.messages)!r}; before "
                  f"{per_call(lambda r=held: persons._walked(r, repo.search, ingest.messages, (), repo), max(1, n // 4)):8.2f}"
                  f" ms, answer {persons._walked(held, repo.search, ingest.messages, (), repo)!r}")


def ingest_cost(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        ingest = engine.ingestor
        seq = iter(range(10**9))
        filed(ingest, [adt(f"W{i}", f"W{i}", "张^三", "19850412", "M") for i in range(200)])  # warm

        def a04s() -> None:
            filed(ingest, [adt(f"A{k}", f"A{k}", "张^三", "19850412", "M") for k in
                           (next(seq) for _ in range(ARGS.messages))])

        def orus() -> None:
            filed(ingest, [oru(f"O{k}", f"A{k % 400}") for k in (next(seq) for _ in range(ARGS.messages))])

        print(f"ingest ({ARGS.root}): A04, a new record each: {per_call(a04s, 1, 1e3 / ARGS.messages):6.3f} ms a "
              f"message; 1-OBX ORU: {per_call(orus, 1, 1e3 / ARGS.messages):6.3f} ms a message")


if __name__ == "__main__":
    if not ARGS.ingest_only:
        registrar(ARGS.calls)
    ingest_cost(ARGS.calls)
