"""What visit33 adds to a registration's path, measured alone (CPU time, in process):

    python bench/visit33_takeover.py [--messages N]

``settle_takeover`` runs for a registration (ADT A01/A04/A05) only -- results and orders never reach it.
Its common path is one ``read_many`` of the visits the message states: (1) a new visit (not stored),
(2) the admitted patient's own visit stored (an A01 re-sent, or a second registration of the stay).
(3) a lab's placeholder under the visit number: the full reading (the stored Patient, the visit's
Provenances, the placeholder's registration through ``persons._registered``) -- once a stay at most.
Each figure is the median of 5 rounds of N calls, in microseconds a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.convert.takeover import settle_takeover  # noqa: E402
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


def oru(control: str, visit: str) -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{WHEN}||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            "PID|1||L77^^^LIS^PI||张^三||19850412|M\r" + pv1(visit)
            + f"OBR|1|O{control}|L{control}|GLU^血糖^L|||{WHEN}||||G|||{WHEN}|BLD||||||||{WHEN}|||F\r"
            f"OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||{WHEN}\r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    n = parser.parse_args().messages
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, messages = engine.site, engine.repository, engine.ingestor.messages
        for text in (a01("A1", "M1", "V1"), oru("R1", "V2")):
            ack = engine.ingestor.handle(text.encode(), channel="bench", peer="bench")
            assert b"MSA|AA" in ack, ack
        cases = {"new visit": convert(parse(a01("A2", "M2", "V3")), site),
                 "own visit stored": convert(parse(a01("A3", "M1", "V1")), site),
                 "lab placeholder": convert(parse(a01("A4", "M4", "V2")), site)}
        for name, conversion in cases.items():
            assert conversion.registers
            said = dict(conversion.said)

            def run(conversion=conversion, said=said) -> None:
                conversion.said = dict(said)
                settle_takeover(conversion, repo.read_many, repo.search, messages)

            run()
            taken = any(s.taken_from for s in conversion.said.values())
            assert taken == (name == "lab placeholder"), name
            print(f"{name:18s} {cpu_per_call(run, n if name != 'lab placeholder' else max(n // 10, 1)):8.1f} us a call")


if __name__ == "__main__":
    main()
