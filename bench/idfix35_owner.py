"""What the owner agreeing again costs (idfix35; CPU time, in process):

    python bench/idfix35_owner.py [--calls N] [--root TREE]

``check_persons`` of FNXRMYY's A08 restating its stored record of a number as another person -- the only
message that asks ``persons._rekeyed_back`` (a restatement changing name, sex or birth date of a record filed
before): (1) no member record names the number; (2) FNZYY's record of it was re-keyed away by an earlier owner's
A08 and the restatement agrees with it again (the bare-number search, the Organization read and the re-key
Provenance search). A restatement that changes nothing, a result and an A04 of a new record do not ask it
(``bench/identity34_owner.py``). ``--root``: another checkout's code (main's, for the figure before). Each figure
is the median of 5 rounds of N calls, in microseconds a call.

``--shared K`` (priv36): K records of the other members holding the same values under other authorities (each
member's own MRN of it, a lab's numbers: a county site numbers from 1 everywhere) -- what the owner's search of the
bare value read and dropped. Under callgrind (``CALLGRIND=1``) only ``--case``'s N calls run, inside
``sys.call_tracing`` (collected alone)::

    CALLGRIND=1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        --callgrind-out-file=/dev/shm/o.out python bench/idfix35_owner.py --case back --calls 200 [--root TREE]
    callgrind_annotate /dev/shm/o.out | head -20     # instructions of the N calls: divide by N"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--calls", type=int, default=1000)
parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
parser.add_argument("--shared", type=int, default=0)
parser.add_argument("--case", choices=("alone", "back"), default="back")
ARGS = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_per_call  # noqa: E402 -- this tree's, whichever --root is measured

sys.path.insert(0, ARGS.root)

from adapters.convert import convert  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def adt(control: str, pid3: str, name: str, birth: str, sex: str, event: str = "A04", sender: str = "FNXRMYY") -> str:
    return (f"MSH|^~\\&|HIS|{sender}|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||{name}||{birth}|{sex}\rPV1|1|O\r")


def main() -> None:
    n = ARGS.calls
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, ingest = engine.site, engine.repository, engine.ingestor

        def filed(text: str) -> None:
            assert b"MSA|AA" in ingest.handle(text.encode(), channel="bench", peer="b")

        for k in range(50):  # other members' records under FNXRMYY's numbers, a busy referral site's
            filed(adt(f"Z{k}", f"N{k}^^^FNXRMYY^MR", "张^三", "19850412", "M", sender="FNZYY"))
        for k in range(ARGS.shared):  # the same values under the other members' own MRNs and their labs' numbers
            for value in ("B1", "B2"):
                sender = ("FNZYY", "FNYLWSY")[k % 2]
                pid3 = f"{value}^^^{sender}^MR" if k < 2 else f"S{k}{value}^^^{sender}^MR~{value}^^^LAB{k}^MR"
                filed(adt(f"S{k}{value}", pid3, "王^五", "19800505", "F", sender=sender))
        filed(adt("B1-A", "B1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))
        filed(adt("B1-B", "B1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))
        alone = convert(parse(adt("B1-C", "B1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08")), site)
        filed(adt("B2-A", "B2^^^FNXRMYY^MR", "冯^三", "19610101", "M"))
        filed(adt("B2-Z", "ZB2^^^FNZYY^MR~B2^^^FNXRMYY^MR", "冯^三", "19610101", "M", sender="FNZYY"))
        filed(adt("B2-B", "B2^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))
        back = parse(adt("B2-C", "B2^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))
        cases = {"alone": lambda: check_persons(alone, repo.read_many, (), repo.search, ingest.messages),
                 "back": lambda: check_persons(convert(back, site), repo.read_many, (), repo.search, ingest.messages)}
        if os.environ.get("CALLGRIND"):
            run = cases[ARGS.case]
            run()  # warm

            def timed() -> None:
                for _ in range(n):
                    run()

            sys.call_tracing(timed, ())
            return
        print(f"check_persons, A08 restating, no member record:  {cpu_per_call(cases['alone'], n):7.1f} us")
        print(f"check_persons, A08 agreeing, a record back:      {cpu_per_call(cases['back'], n):7.1f} us"
              " (convert included)")


if __name__ == "__main__":
    main()
