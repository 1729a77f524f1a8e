"""What ident38 adds to a message's path, measured alone (CPU time, in process):

    python bench/ident38_returning.py [--messages N]

(1) ``check_persons`` of a returning patient's result under the institution's own MRN (the common path:
``_filed_as_own`` returns at once, nothing kept apart); (2) ``convert`` + ``check_persons`` of her result
under an undeclared CX-4 (``R^^^HIS^MR``) while her record under the bare MRN is stored -- kept apart with a
warning before ident38, filed under her record now (the conversion re-keyed: ``_take``). Each figure is the
median of 5 rounds of N calls, in microseconds a call. Runs on a tree before ident38 too (same calls)."""

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
from bench.identity32_guard import oru  # noqa: E402  # (the same one-result message)
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    n = parser.parse_args().messages
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        site, repo = engine.site, engine.repository
        ack = engine.ingestor.handle(oru("B1", "B77^^^FNXRMYY^MR").encode(), channel="bench", peer="bench")
        assert b"MSA|AA" in ack, ack
        own = convert(parse(oru("B2", "B77^^^FNXRMYY^MR")), site)
        print(f"check_persons, own MRN (stored):            {cpu_per_call(lambda: check_persons(own, repo.read_many), n):.1f} us")
        message = parse(oru("B3", "B77^^^HIS^MR"))

        def undeclared() -> None:
            check_persons(convert(message, site), repo.read_many)

        print(f"convert + check_persons, ^^^HIS^MR:          {cpu_per_call(undeclared, n):.1f} us")


if __name__ == "__main__":
    main()
