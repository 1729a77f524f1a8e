"""What visfix33 adds to a result's path, measured alone (CPU time, in process):

    python bench/visfix33_stay.py [--messages N]
    valgrind --tool=callgrind --callgrind-out-file=/dev/shm/cg.%p python bench/visfix33_stay.py --only CASE --calls N

``settle_stay`` (the lab's later results of a stay an admission took over) runs for every message
carrying a thin visit (written only when absent: results, orders, charges). The cases:
(1) a result under the HIS's MRN -- the common path: the message's record is not keyed apart, nothing
is read; (2) a result under the LIS's own number whose visit is its own -- one ``read_many``; (3) a
result under the LIS's number whose visit an admission took over -- the full reading (the stored
Patient, a search per identifier, the record's registration), once a result of such a stay.
Also ``settle_takeover`` on a registration over a lab's placeholder (visit33's case 3, now with
visfix33's reading of the number's other holders and of the ADTs' applications).
Each figure is the median of 5 rounds of N calls, in microseconds a call. ``--only CASE --calls N``
runs one case N times and nothing else (``none``: the set-up alone), for callgrind's totals:
(case - none) / N is the case's instructions a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.convert.takeover import settle_stay, settle_takeover  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.common import cpu_per_call  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402

WHEN = "20261201083000"


def pv1(visit: str) -> str:
    return "PV1|1|I|W1^301^1" + "|" * 16 + visit + "|" * 25 + WHEN + "\r"


def a01(control: str, mrn: str, visit: str) -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|{WHEN}||ADT^A01^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|A01|{WHEN}\rPID|1||{mrn}^^^FNXRMYY^MR||张^三||19850412|M\r" + pv1(visit))


def oru(control: str, visit: str, number: str = "L77^^^LIS^PI") -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{WHEN}||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{number}||张^三||19850412|M\r" + pv1(visit)
            + f"OBR|1|O{control}|L{control}|GLU^血糖^L|||{WHEN}||||G|||{WHEN}|BLD||||||||{WHEN}|||F\r"
            f"OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||{WHEN}\r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--only", choices=["none", "his mrn", "own visit", "taken over"])
    parser.add_argument("--calls", type=int, default=10000)
    args = parser.parse_args()
    n = args.messages
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, messages = engine.site, engine.repository, engine.ingestor.messages

        def handle(text: str) -> None:
            ack = engine.ingestor.handle(text.encode(), channel="bench", peer="bench")
            assert b"MSA|AA" in ack, ack

        # V1: the HIS's own stay; V2: the lab's own visit; V3: a lab visit the HIS's admission took over;
        # V4: a lab placeholder not yet taken over
        for text in (a01("A1", "M1", "V1"), oru("R2", "V2", "L72^^^LIS^PI"), oru("R3", "V3"), a01("A3", "M3", "V3"),
                     oru("R4", "V4", "L74^^^LIS^PI")):
            handle(text)
        cases = {"his mrn": convert(parse(oru("R5", "V1", "M1^^^FNXRMYY^MR")), site),
                 "own visit": convert(parse(oru("R6", "V2", "L72^^^LIS^PI")), site),
                 "taken over": convert(parse(oru("R7", "V3")), site)}
        for name, conversion in cases.items():
            said = dict(conversion.said)

            def run(conversion=conversion, said=said, marks=name == "taken over") -> None:
                if marks:  # (the others mark nothing: no copy counted in their figures)
                    conversion.said = dict(said)
                settle_stay(conversion, repo.read_many, repo.search, messages)

            run()
            assert any(s.stand_in for s in conversion.said.values()) == (name == "taken over"), name
            cases[name] = run  # type: ignore[assignment]
        if args.only is not None:
            fn = cases.get(args.only)
            for _ in range(args.calls if fn is not None else 0):
                fn()  # type: ignore[misc]
            return
        for name, run in cases.items():
            print(f"settle_stay, {name:10s} {cpu_per_call(run, n if name != 'taken over' else max(n // 10, 1)):8.1f} us a call")  # type: ignore[arg-type]
        takeover = convert(parse(a01("A4", "M4", "V4")), site)
        said, warnings = dict(takeover.said), list(takeover.warnings)

        def take() -> None:
            takeover.said, takeover.warnings = dict(said), list(warnings)
            settle_takeover(takeover, repo.read_many, repo.search, messages)

        take()
        assert any(s.taken_from for s in takeover.said.values())
        print(f"settle_takeover, lab placeholder {cpu_per_call(take, max(n // 10, 1)):8.1f} us a call")


if __name__ == "__main__":
    main()
