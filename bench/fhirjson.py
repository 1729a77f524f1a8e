"""Cost of exact FHIR decimals: ``engine.fhirjson`` against plain orjson, µs per call.

    python bench/fhirjson.py [--quick]

For a lab Observation and the 14-resource transaction Bundle huren makes from a 12-OBX ORU^R01,
each in two spellings: numbers that round-trip through float (``5.6``, ``145``: the fast path,
orjson plus one regular-expression scan) and the same document with significant trailing zeros
(``5.60``, ``0.430``: the exact path, a second parse with the standard library). Prints the best of
several rounds of loads, dumps, loads+dumps and the validator's view, CPU time per call.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from engine import fhirjson  # noqa: E402


def observation() -> bytes:
    return orjson.dumps({
        "resourceType": "Observation", "id": "obs-0123456789abcdef", "status": "final",
        "meta": {"versionId": "1", "lastUpdated": "2026-11-01T09:15:00.123456+00:00"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"},
                            {"system": "urn:oid:2.16.156.10011.1.FNXRMYY.item", "code": "GLU", "display": "葡萄糖"}],
                 "text": "葡萄糖"},
        "subject": {"reference": "Patient/p-110101198001010010"}, "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2026-11-01T08:30:00+08:00", "issued": "2026-11-01T09:10:00.000+08:00",
        "performer": [{"reference": "Organization/FNXRMYY"}, {"reference": "Practitioner/D001"}],
        "valueQuantity": {"value": 5.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                        "code": "N"}]}],
        "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"},
                            "text": "3.9-6.1"}],
        "specimen": {"reference": "Specimen/s1"}, "basedOn": [{"reference": "ServiceRequest/sr1"}],
    })


def bundle() -> bytes:
    """The transaction Bundle converted from bench/ingest.py's 12-OBX blood count."""
    import tempfile

    from adapters.convert import convert
    from adapters.hl7v2.header import decode
    from adapters.hl7v2.parser import parse
    from bench.ingest import oru_lab
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        result = convert(parse(decode(oru_lab(1))[0]), engine.ingestor.site)
    return orjson.dumps(orjson.loads(fhirjson.dumps(result.bundle)))  # float spelling: 5.6, not 5.60


def trailing_zeros(raw: bytes) -> bytes:
    """Every decimal number token written with one more (significant) zero: 5.6 → 5.60."""
    return re.sub(rb'(?<=[:\[,])(-?\d+\.\d+)(?=[,}\]])', rb"\g<1>0", raw)


def best_us(fn: Callable[[], Any], seconds: float) -> float:
    """CPU µs per call, best of 5 rounds of ``seconds`` / 5 each."""
    n = 1
    while True:  # calibrate
        start = time.process_time()
        for _ in range(n):
            fn()
        took = time.process_time() - start
        if took > 0.02:
            break
        n *= 2
    per_round = max(1, int(n * (seconds / 5) / took))
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(per_round):
            fn()
        best = min(best, (time.process_time() - start) / per_round)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 2.0
    docs = {"Observation": observation(), "Bundle (14)": bundle()}
    print(f"{'document':<26}{'bytes':>7}{'orjson loads':>14}{'fhirjson loads':>16}{'orjson dumps':>14}"
          f"{'fhirjson dumps':>16}{'loads+dumps':>13}{'schema_view':>13}")
    for name, fast in docs.items():
        for spelling, raw in (("float-exact", fast), ("trailing zeros", trailing_zeros(fast))):
            value = fhirjson.loads(raw)
            assert fhirjson.dumps(value) == raw, "not byte-exact"
            plain = orjson.loads(raw)
            row = [
                best_us(lambda raw=raw: orjson.loads(raw), seconds),
                best_us(lambda raw=raw: fhirjson.loads(raw), seconds),
                best_us(lambda plain=plain: orjson.dumps(plain), seconds),
                best_us(lambda value=value: fhirjson.dumps(value), seconds),
                best_us(lambda raw=raw: fhirjson.dumps(fhirjson.loads(raw)), seconds),
                best_us(lambda value=value: fhirjson.schema_view(value), seconds),
            ]
            print(f"{name + ', ' + spelling:<26}{len(raw):>7}" + "".join(f"{v:>14.1f}" if i in (0, 2) else
                  f"{v:>16.1f}" if i in (1, 3) else f"{v:>13.1f}" for i, v in enumerate(row)))
    print("µs of CPU per call, best of 5 rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
