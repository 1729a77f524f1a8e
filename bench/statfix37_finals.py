"""The cost of the commonest lab sequence: a 12-result panel sent preliminary (every OBX-11 and OBR-25 P),
then final with the same values (MSH-7 later, its own control id). Since statfix37 an older message that
changes a result's status is held as an older restatement is (``merge_rules._restated_older``, review
rv37e MED 2), so a change of status -- not only of value -- asks the stored version's message
(``_stored_stamps``: one Provenance search per result, the message looked up once per message).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/statfix37_finals.py --messages 10

The preliminary panels are written first (not collected); then each final alone (``Ingestor.process`` of
one message, as ``POST /hl7v2`` or MLLP hands it over), its instructions collected; wall and CPU time a
message are printed too (the machine is shared: the instruction counts are the figure)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import first_observation, one_at_a_time, oru_lab, settle_warm  # noqa: E402


def preliminary(n: int) -> bytes:
    """``oru_lab(n)`` sent preliminary: every OBX-11 and OBR-25 P, stamped two hours earlier, its own control id."""
    text = oru_lab(n).decode("utf-8")
    text = text.replace("|N|||F|||", "|N|||P|||")
    text = text.replace("|20261101091500||ORU^R01^ORU_R01|LAB", "|20261101071500||ORU^R01^ORU_R01|PRE", 1)
    text = text.replace("|20261101091000|||F\r", "|20261101091000|||P\r", 1)
    assert "|P|||" in text and "|PRE" in text and "|F|||" not in text
    return text.encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    from engine.engine import Engine
    from engine.settings import Settings

    first = 73_000_000
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine)
            engine.ingestor.process([(preliminary(first + i), "bench", "127.0.0.1:1") for i in range(args.messages)])
            engine.ingestor.process([(preliminary(first + 10_000), "bench", "127.0.0.1:1")])  # (warm: not counted)
            engine.ingestor.process([(oru_lab(first + 10_000), "bench", "127.0.0.1:1")])
            outcomes, wall, cpu = one_at_a_time(engine, [oru_lab(first + i) for i in range(args.messages)])
            acks = {bytes(o.ack).split(b"MSA|", 1)[1][:2] for o in outcomes}
            assert acks == {b"AA"}, acks
            assert not [o for o in outcomes if b"not later" in bytes(o.ack)]
            rid = first_observation(engine, f"LAB{first:09d}")
            assert engine.repository.read("Observation", rid)["status"] == "final"
    print(f"{args.messages} finals after their preliminaries, one message at a time: {wall / args.messages * 1e3:.1f} "
          f"ms wall, {cpu / args.messages * 1e3:.1f} ms CPU a message; under callgrind, divide the collected "
          f"instructions by {args.messages}")


if __name__ == "__main__":
    main()
