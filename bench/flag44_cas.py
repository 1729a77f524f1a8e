"""The recognition hook's cost where it writes duplicate flags (flag44: each flag row a compare-and-set).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --toggle-collect=_CallPythonObject python bench/flag44_cas.py 100
    python bench/flag44_cas.py 100      # counts only (flags made, decided again), no timing

``bench/recognition.py --hook-instructions`` times 12-OBX lab messages of one hospital: none repeats another
hospital's, so no flag row is ever written there. Here the same residents' blood counts are sent by FNXRMYY on
1 November, then by FNZYY on 2 November (each a repeat: a new flag), then FNZYY's corrected (OBX-11 C: each flag
decided again, the row unchanged -- compared only), in batches of 50, after ``settle_warm``. Every call of the
recognition hook and of its batch scope runs inside a ctypes callback (``hook_inside_callback``) while the FNZYY
messages are sent, so the inclusive Ir of ``_CallPythonObject`` is the hook's own instructions for those
``2 * N`` messages, its flag writes included.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import oru_lab, settle_warm  # noqa: E402
from bench.recognition import hook_inside_callback  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402

CBC = "58410-2^CBC panel - Blood by Automated count^LN"  # (FNZYY's LIS codes the panel in LOINC; XCG is FNXRMYY's)


def at_fnzyy(message: bytes, corrected: bool = False) -> bytes:
    """``oru_lab``'s message as FNZYY's LIS sends it a day later (its own numbers), or its correction."""
    text = message.decode("utf-8").replace("FNXRMYY", "FNZYY").replace("20261101", "20261102") \
        .replace("|LAB", "|ZLAB").replace("|ORD", "|ZORD").replace("XCG^血常规^L", CBC)
    if corrected:
        text = text.replace("|N|||F|", "|N|||C|").replace("ORU^R01^ORU_R01|ZLAB", "ORU^R01^ORU_R01|CLAB")
    return text.encode("utf-8")


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        settle_warm(engine, 50)
        ingestor = engine.ingestor
        first = [oru_lab(60_000_000 + i).replace("XCG^血常规^L".encode(), CBC.encode()) for i in range(count)]
        switch = hook_inside_callback(engine)
        for messages in (first, [at_fnzyy(m) for m in first], [at_fnzyy(m, True) for m in first]):
            switch["on"] = messages is not first
            items = [(m, "bench", "127.0.0.1:1") for m in messages]
            for start in range(0, count, 50):
                ingestor.process(items[start : start + 50])
        flags = engine.recognition.flags.find({})
        print(f"{count} x (FNXRMYY, FNZYY repeat, FNZYY correction): {len(flags)} flags "
              f"({sum(f['status'] != 'void' for f in flags)} standing); the hook's inclusive Ir: _CallPythonObject")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
