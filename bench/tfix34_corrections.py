"""The cost of a 12-result panel that corrects every result (OBX-11 C, OBR-25 C, MSH-7 later than its
report's): each result's status is dated against the message that stated it (``engine.message_time``,
``merge_rules._dated``). rvmsgfix34 measured ~13 -> ~28 ms a message on SQLite: twelve Provenance
searches, twelve message-store look-ups and twelve re-read MSHs for one stored message (thirty-fourth
round, tfix34: the stored message read once per write).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/tfix34_corrections.py --messages 20

The reports are written first (not collected); then each correction alone (``Ingestor.process`` of one
message, as ``POST /hl7v2`` or MLLP hands it over), its instructions collected; wall and CPU time a
message are printed too (this machine is shared: the instruction counts are the figure)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import first_observation, one_at_a_time, oru_lab, settle_warm  # noqa: E402


def correction(n: int) -> bytes:
    """``oru_lab(n)`` corrected: every OBX-11 and OBR-25 C, WBC 6.2 -> 6.3, stamped three hours later,
    its own control id."""
    text = oru_lab(n).decode("utf-8")
    text = text.replace("|N|||F|||", "|N|||C|||")
    text = text.replace("|WBC^白细胞计数^L||6.2|", "|WBC^白细胞计数^L||6.3|")
    text = text.replace("|20261101091500||ORU^R01^ORU_R01|LAB", "|20261101121500||ORU^R01^ORU_R01|COR", 1)
    text = text.replace("|20261101091000|||F\r", "|20261101091000|||C\r", 1)
    assert "|C|||" in text and "|COR" in text
    return text.encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine)
            first = 70_000_000
            engine.ingestor.process([(oru_lab(first + i), "bench", "127.0.0.1:1") for i in range(args.messages)])
            engine.ingestor.process([(correction(first + 10_000), "bench", "127.0.0.1:1")])  # (warm: not counted)
            outcomes, wall, cpu = one_at_a_time(engine, [correction(first + i) for i in range(args.messages)])
            acks = {bytes(o.ack).split(b"MSA|", 1)[1][:2] for o in outcomes}
            assert acks == {b"AA"}, acks
            stored = engine.repository.read("Observation", first_observation(engine, f"COR{first:09d}"))
            assert stored["status"] == "corrected", stored["status"]
    print(f"{args.messages} corrections of a 12-result panel, one message at a time: {wall / args.messages * 1e3:.1f} ms "
          f"wall, {cpu / args.messages * 1e3:.1f} ms CPU a message; under callgrind, divide the collected "
          f"instructions by {args.messages}")


if __name__ == "__main__":
    main()
