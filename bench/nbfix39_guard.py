"""What nbfix39's person guard costs a message's path, measured alone (CPU, or instructions under callgrind):

    python bench/nbfix39_guard.py [--messages N] [--only common|former|refused]
    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/nbfix39_guard.py --messages 500 --only common

``check_persons`` of a result already converted, the store read each call (as ``bench/ident38_returning.py``):
``common`` -- a returning patient's result under her own MRN, name, sex and day agreeing (the path every result
takes; ``contradicts_all`` answers at the name); ``former`` -- a result stating the record's former name and day
of birth, as its registering application stated them before its own A08 corrected them (filed with nbfix39's W:
the record's versions and Provenances read); ``refused`` -- a result naming a person the record never was (the
refusal, which now reads the record's versions first). Each timed loop runs inside one ``operator.call`` (a C
function nothing else calls), so callgrind's toggle counts those calls alone; divide by N. Runs on a tree
before nbfix39 too (same calls; ``former`` is refused there)."""

from __future__ import annotations

import argparse
import contextlib
import operator
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.convert.persons import check_persons  # noqa: E402
from adapters.hl7v2.errors import HL7Error  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.common import cpu_per_call, load_note  # noqa: E402
from bench.identity32_guard import oru  # noqa: E402  # (张三 M 1985-04-12, one result)
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def adt(control: str, pid3: str, name: str, birth: str, event: str) -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||{name}||{birth}|M\rPV1|1|O\r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--only", choices=("common", "former", "refused"))
    args = parser.parse_args()
    n = args.messages
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo = engine.site, engine.repository
        handle = engine.ingestor.handle
        for raw in (adt("B1", "B77^^^FNXRMYY^MR", "张^三", "19850412", "A04"), oru("B2", "B77^^^FNXRMYY^MR"),
                    adt("C1", "C77^^^FNXRMYY^MR", "张^三", "19850412", "A04"),
                    adt("C2", "C77^^^FNXRMYY^MR", "章^山", "19851204", "A08")):
            ack = handle(raw.encode(), channel="bench", peer="bench")
            assert b"MSA|AA" in ack, ack
        cases = {"common": convert(parse(oru("B3", "B77^^^FNXRMYY^MR")), site),
                 "former": convert(parse(oru("C3", "C77^^^FNXRMYY^MR")), site),
                 "refused": convert(parse(oru("C4", "C77^^^FNXRMYY^MR").replace("张^三||19850412",
                                                                                "李^四||19900101")), site)}

        def guard(conversion: object) -> object:
            def call() -> None:
                conversion.warnings.clear()  # type: ignore[attr-defined]
                with contextlib.suppress(HL7Error):
                    check_persons(conversion, repo.read_many, (), repo.search, engine.ingestor.messages)
            return call

        for name, conversion in cases.items():
            if args.only not in (None, name):
                continue
            call = guard(conversion)
            call()  # (warm)
            if args.only:
                operator.call(lambda c=call: [c() for _ in range(n)])
                print(f"{name}: {n} calls ({load_note()}); under callgrind, divide the collected instructions by {n}")
            else:
                print(f"check_persons, {name:<8} {cpu_per_call(call, n):8.1f} us ({load_note()})")


if __name__ == "__main__":
    main()
