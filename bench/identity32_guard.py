"""What identity32 adds to a message's path, measured alone (CPU time, in process):

    python bench/identity32_guard.py [--messages N]

(1) ``check_persons``: the guard's read of the record a message's PID resolves to (one ``read_many``
of the Patient, then three comparisons), for a returning patient (stored) and a new one (absent);
(2) ``patient_key`` of a PID whose PID-3 names an assigning authority (CX-4: the institution, or the
LIS), against the same PID without CX-4 (no authority to decide). Each figure is the median of 5
rounds of N calls, in microseconds a call."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import common, convert  # noqa: E402
from adapters.convert.context import Context  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.common import cpu_per_call  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def oru(control: str, pid3: str) -> str:
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||{pid3}||张^三||19850412|M\r"
            f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261201090000\r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    n = parser.parse_args().messages
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo = engine.site, engine.repository
        ack = engine.ingestor.handle(oru("B1", "B77^^^FNXRMYY^MR").encode(), channel="bench", peer="bench")
        assert b"MSA|AA" in ack, ack
        stored = convert(parse(oru("B2", "B77^^^FNXRMYY^MR")), site)
        new = convert(parse(oru("B3", "N77^^^FNXRMYY^MR")), site)
        assert stored.persons and new.persons
        print(f"check_persons, returning patient (stored): {cpu_per_call(lambda: check_persons(stored, repo.read_many), n):.1f} us")
        print(f"check_persons, new patient (absent):       {cpu_per_call(lambda: check_persons(new, repo.read_many), n):.1f} us")
        inst = site.institution("FNXRMYY")
        for pid3 in ("B77", "B77^^^FNXRMYY^MR", "B77^^^LIS^PI"):
            msg = parse(oru("B4", pid3))
            ctx = Context(message=msg, site=site, institution=inst)
            pid = msg.get("PID")
            print(f"patient_key {pid3:<20} {cpu_per_call(lambda: common.patient_key(pid, ctx), n):.1f} us")  # noqa: B023


if __name__ == "__main__":
    main()
