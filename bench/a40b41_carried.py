"""The once-per-store pass giving merges filed before id40's carry their carry (``engine.carried_numbers``): what
it costs on a store of N old merges (forty-first round, a40b41).

    python bench/a40b41_carried.py [N=1000] [sqlite|mongomock]

The store is written as the old release left it: N pairs of A04s and their A40 filed over ``POST /hl7v2`` with the
carry taken out (the release before id40 had none for a merge of two records) -- real messages, kept, with their
Provenances: since a40fix41 the pass reads each merge's A40 again (what its PID-3 deleted; whether it renumbered),
so cloned versions without their messages would all be left ``no_message``. Then the pass runs on the open engine (its marker emptied, as on the first start of this
release): wall and CPU time, per merge; then again (nothing to do: each survivor holds its number); then a search by
one of the numbers. Prints the figures and the machine's load.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

MRN = "urn:huren:mrn:FNXRMYY"
_AT_ONCE = 500  # pairs written in one write_many


def _nid(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


def _number(i: int) -> str:
    """The i-th woman's ID number, born 1962-03-03 (region codes 320900-320999, sequence 000-499 even)."""
    return _nid(f"3209{i // 500:02d}19620303{(i % 500) * 2:03d}"[:17].ljust(17, "0"))


def _written(engine: Any, n: int) -> None:
    """N old merges filed over ``POST /hl7v2`` as the old release filed them (the carry taken out): each pair's two
    A04s and its A40 -- real messages, so the pass reads each A40 again as it does on a real store (a40fix41)."""
    from fastapi.testclient import TestClient

    from adapters.convert import persons
    from engine.api.app import create_app

    real = persons.merge_carries
    persons.merge_carries = lambda *a, renumbered=False, **k: real(*a, renumbered=renumbered, **k) if renumbered else []
    try:
        with TestClient(create_app(engine)) as http:
            sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/MessageHeader.c"),
                      "Content-Type": "x-application/hl7-v2+er7"}
            for i in range(n):
                for control, pid3 in ((f"B{i}A", f"B41{i:05d}1^^^FNXRMYY^MR~{_number(i)}^^^^NNCHN"),
                                      (f"B{i}B", f"B41{i:05d}2^^^FNXRMYY^MR")):
                    msg = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
                           f"EVN|A04|20261201091500\rPID|1||{pid3}||岳^丙||19620303|F\rPV1|1|O\r")
                    assert http.post("/hl7v2", content=msg, headers=sender).headers["x-hl7-ack-code"] == "AA"
                msg = (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|B{i}C|P|2.5.1\r"
                       f"EVN|A40|20261201121500\rPID|1||B41{i:05d}2^^^FNXRMYY^MR||岳^丙||19620303|F\r"
                       f"MRG|B41{i:05d}1^^^FNXRMYY^MR\r")
                assert http.post("/hl7v2", content=msg, headers=sender).headers["x-hl7-ack-code"] == "AA"
    finally:
        persons.merge_carries = real


def main() -> None:
    from common import load_note

    from engine import carried_numbers
    from engine.audit.keys import log_origin
    from engine.engine import Engine
    from engine.settings import Settings

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    backend = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0,
                            mongodb_uri="mongomock://" if backend == "mongomock" else None)
        with Engine(settings) as engine:
            t0 = time.perf_counter()
            _written(engine, n)
            print(f"store: {n:,} old merges written in {time.perf_counter() - t0:.1f} s ({backend})")
            assert not engine.repository.search("Patient", [("identifier", _number(n // 2))]).resources
            origin = log_origin(settings)
            for label in ("first run", "second run"):
                engine.store.collection(carried_numbers.MARKER_COLLECTION).delete(carried_numbers.DONE)
                w0, c0 = time.perf_counter(), time.process_time()
                done = carried_numbers.backfill(engine.repository, engine.audit, origin, engine.site)
                wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                assert done is not None
                print(f"{label:<11} {wall:7.2f} s wall, {cpu:7.2f} s CPU: {wall / n * 1e3:.2f} ms wall, "
                      f"{cpu / n * 1e3:.2f} ms CPU a merge; survivors written {len(done.written):,}, carried "
                      f"{done.carried:,}, held {done.held:,}, no message {done.no_message:,}, "
                      f"audit records {len(done.audited)}")
            (found,) = engine.repository.search("Patient", [("identifier", _number(n // 2))]).resources
            assert any(i.get("value") == f"B41{n // 2:05d}2" for i in found["identifier"]), found["id"]
            print(f"the search by a merged record's number finds its survivor ({found['id']})")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; {load_note()}")


if __name__ == "__main__":
    main()
