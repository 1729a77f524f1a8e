"""What rkfix35's batch reading adds (CPU time, in process): ``check_persons`` of the last message of a batch.

    python bench/rkfix35_batch.py [--calls N] [--batch B] [--root TREE]

The batch's ``B`` earlier messages are other patients' A08s (converted, not written: ``earlier``). The message
checked is FNZYY's result naming FNXRMYY's number beside its own MRN, both records stored: ``check_persons``
walks the batch for the PID's record, the member's record and the record the number may go back onto
(``persons.batch_version``, ``_as_left``: rkfix35 made the walk pass over identifier-only writes and note the
last of them, in the same walk). ``--root``: another checkout's code (main's, for the figure before). Each
figure is the median of 5 rounds of N calls, in microseconds a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--calls", type=int, default=500)
parser.add_argument("--batch", type=int, default=200)
parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
ARGS = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_per_call, load_note  # noqa: E402 -- this tree's, whichever --root is measured

sys.path.insert(0, ARGS.root)

from adapters.convert import convert  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def adt(control: str, facility: str, pid3: str, event: str = "A04") -> str:
    return (f"MSH|^~\\&|HIS|{facility}|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||张^三||19850412|M\rPV1|1|O\r")


def oru(control: str, facility: str, pid3: str) -> str:
    return (f"MSH|^~\\&|LIS|{facility}|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{pid3}||张^三||19850412|M\r"
            f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261201090000\r")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo, ingest = engine.site, engine.repository, engine.ingestor
        assert b"MSA|AA" in ingest.handle(adt("K1-A", "FNXRMYY", "K1^^^FNXRMYY^MR").encode(), channel="b", peer="b")
        assert b"MSA|AA" in ingest.handle(adt("K1-B", "FNZYY", "ZK1^^^FNZYY^MR~K1^^^FNXRMYY^MR").encode(),
                                          channel="b", peer="b")
        earlier = [convert(parse(adt(f"E{i}", "FNZYY", f"ZE{i}^^^FNZYY^MR", "A08")), site)
                   for i in range(ARGS.batch)]
        last = convert(parse(oru("K1-C", "FNZYY", "ZK1^^^FNZYY^MR~K1^^^FNXRMYY^MR")), site)
        check_persons(last, repo.read_many, earlier)
        figure = cpu_per_call(lambda: check_persons(last, repo.read_many, earlier), ARGS.calls)
        print(f"check_persons, member's number, {ARGS.batch} earlier: {figure:7.1f} us   ({load_note()})")


if __name__ == "__main__":
    main()
