"""The recognition hook's instructions for lab results sent again (relink36): later versions.

    PYTHONHASHSEED=0 valgrind --tool=callgrind python bench/relink36_corrections.py 50

``bench/recognition.py --hook-instructions`` sends first versions only: a message's report and its
results stored together, where ``Repeats._linked`` reads the report at hand and asks the store
nothing. A result sent again (an LIS correcting a value: the same order numbers, so the same
resource ids, a later version) has its reports read from the store as well
(``DiagnosticReport?result=``: one indexed search per recognition Observation). This bench sends N
12-OBX blood counts (the ingest bench's; an ALT among them, a recognition item under a local code),
then the same N again with the ALT changed, in batches of 50; only the second pass runs inside the
ctypes callback (``bench.recognition.hook_inside``), so the inclusive cost of ``_CallPythonObject``
in ``callgrind_annotate --inclusive=yes`` is the hook's instructions for the corrections alone. Asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import oru_lab, settle_warm  # noqa: E402
from bench.recognition import hook_inside  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def corrected(n: int) -> bytes:
    """Message ``n`` sent again: another control id, the ALT 25 -> 31 U/L, OBR-25 and OBX-11 ``C``."""
    text = oru_lab(n).decode("utf-8").replace(f"|LAB{n:09d}|P|", f"|FIX{n:09d}|P|")
    text = text.replace("ALT^丙氨酸氨基转移酶^L||25|", "ALT^丙氨酸氨基转移酶^L||31|").replace("|||F|||", "|||C|||")
    return text.replace("|||F\r", "|||C\r").encode("utf-8")


def main(count: int) -> int:
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        settle_warm(engine, 50)
        rec, repo, ingestor = engine.recognition, engine.repository, engine.ingestor
        wrapping = hook_inside(engine)
        wrapping["on"] = False
        first = [(oru_lab(60_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
        again = [(corrected(60_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
        for start in range(0, count, 50):
            ingestor.process(first[start : start + 50])
        wrapping["on"] = True
        for start in range(0, count, 50):
            ingestor.process(again[start : start + 50])
        alts = [d["_id"] for d in rec.index.coll.find({}) if d["_id"].startswith("Observation/")]
        versions = {int(repo.read(*ref.split("/", 1))["meta"]["versionId"]) for ref in alts}
    print(f"{count} corrected 12-OBX messages through the hook inside _CallPythonObject "
          f"(recognition Observations: {len(alts)}, versions {sorted(versions)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
