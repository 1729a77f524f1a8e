"""What the registrar look-up costs (CPU time, in process), the one read regapp33 changed:

    python bench/regapp33_registrar.py [--calls N]

``persons._registered`` runs only for an ADT A08/A31 restating a record as another person (name, sex
and birth date all changed): a Provenance search by target, a page of 1,000 at a time, and one
message-store query a page (the pairs' filed documents, ``MessageStore.filed``), every page read. It is
measured through ``check_persons`` for a record with K results before its registration (``RESULTS``),
against a stored record on SQLite. Each figure is the median of 5
rounds of N calls, in milliseconds a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.common import cpu_per_call  # noqa: E402
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


def per_call(fn, n: int) -> float:  # noqa: ANN001 -- a callable
    return cpu_per_call(fn, n, 1e3)  # ms


RESULTS = (0, 99, 300, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    n = parser.parse_args().calls
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, ingest = engine.site, engine.repository, engine.ingestor
        for results in RESULTS:
            number = f"R{results}"
            for i in range(results):
                assert b"MSA|AA" in ingest.handle(oru(f"{number}-{i}", number).encode(), channel="bench", peer="b")
            assert b"MSA|AA" in ingest.handle(adt(f"{number}-A", number, "张^三", "19850412", "M").encode(),
                                              channel="bench", peer="b")
            a08 = convert(parse(adt(f"{number}-B", number, "李^四", "19900101", "F", "A08")), site)
            assert a08.corrections

            def call(a08=a08) -> None:  # noqa: ANN001 -- the conversion
                check_persons(a08, repo.read_many, (), repo.search, ingest.messages)
                a08.warnings.clear()  # the registrar's own restatement: accepted with the W

            print(f"A08 restating a record with {results:3d} results before its registration: "
                  f"{per_call(call, n):6.2f} ms")


if __name__ == "__main__":
    main()
