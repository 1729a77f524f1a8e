"""What identity34's owner check adds (CPU time, in process):

    python bench/identity34_owner.py [--calls N] [--root TREE]

(1) ``convert`` of a 1-OBX result under the HIS's own MRN -- the common path: ``common.patient`` now
notes the record's own-MRN number (``Context.owns``); (2) ``check_persons`` of that result with its
record stored -- ``_first_filed`` answers from what the guard already read, no search; (3)
``check_persons`` of an A04 registering a record not stored -- the one ``Patient?identifier=`` search
of ``_owners_word``. ``--root``: another checkout's code (main's, for the figure before). Each figure is
the median of 5 rounds of N calls, in microseconds a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--calls", type=int, default=2000)
parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
ARGS = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_per_call  # noqa: E402 -- this tree's, whichever --root is measured

sys.path.insert(0, ARGS.root)

from adapters.convert import convert  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def oru(control: str, pid3: str) -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{pid3}||张^三||19850412|M\r"
            f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261201090000\r")


def adt(control: str, pid3: str) -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|A04|20261201091500\rPID|1||{pid3}||张^三||19850412|M\rPV1|1|O\r")


def main() -> None:
    n = ARGS.calls
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, ingest = engine.site, engine.repository, engine.ingestor
        assert b"MSA|AA" in ingest.handle(adt("B1-A", "B1^^^FNXRMYY^MR").encode(), channel="bench", peer="b")
        # another member's records under FNXRMYY's numbers, as a busy referral site holds them
        for k in range(50):
            text = adt(f"Z{k}", f"N{k}^^^FNXRMYY^MR").replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)
            assert b"MSA|AA" in ingest.handle(text.encode(), channel="bench", peer="b")
        own = parse(oru("B1-1", "B1^^^FNXRMYY^MR"))
        new = parse(adt("B2-A", "B2^^^FNXRMYY^MR"))
        print(f"convert, result under the own MRN:            {cpu_per_call(lambda: convert(own, site), n):7.1f} us")
        result = convert(own, site)
        print(f"check_persons, that result, record stored:    "
              f"{cpu_per_call(lambda: check_persons(result, repo.read_many, (), repo.search, ingest.messages), n):7.1f} us")
        registration = convert(new, site)
        print(f"check_persons, A04 of a record not stored:    "
              f"{cpu_per_call(lambda: check_persons(registration, repo.read_many, (), repo.search, ingest.messages), n):7.1f} us")


if __name__ == "__main__":
    main()
