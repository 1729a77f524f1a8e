"""What ``until_later`` costs the merge of a result per stored version (thirty-third round, msgtime33).

    python bench/msgtime33_combine.py [--calls N] [--case CASE]

``MergeRules.combine`` of an Observation from a feed now asks whether the stored status is one that
stands until a later message (merge.yaml Observation ``status: until_later``): every result update
pays the question; only a stored withdrawal (entered-in-error) against a message stating another
status pays the answer (the stored version's Provenances read: not here, no store -- its time is
then unknown and the withdrawal stands). The ingest path also reads the message's time from its
Provenance once a message (``ingest._message_time``, not here). Cases, on the 12-OBX lab ORU of
``bench/ingest.py`` (its first result: stored, then the incoming version of a later message):

- ``changed``: the value changed (a corrected result: a new version);
- ``same``: the result re-sent as it was;
- ``withdrawn``: the stored result withdrawn, the message stating it final (held: stored whole).

Prints the wall time per call. For steadier figures run it under ``valgrind --tool=callgrind`` with
``--calls N`` and ``--calls 0`` and divide the difference of the instruction totals by N; run it in
a checkout before and after the change (``PYTHONPATH`` at that checkout).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.convert import convert  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from bench.ingest import oru_lab  # noqa: E402
from engine.merge_rules import shipped  # noqa: E402
from engine.settings import Settings  # noqa: E402
from mappings.site import Site  # noqa: E402


def _pair(case: str) -> tuple[dict, dict]:
    site = Site.load(Settings())
    conversion = convert(parse(oru_lab(1).decode("utf-8")), site)
    first = next(r for r in conversion.by_reference.values() if r["resourceType"] == "Observation")
    stored = {**copy.deepcopy(first), "meta": {"versionId": "1", "lastUpdated": "2026-11-01T10:30:00.000Z"}}
    incoming = copy.deepcopy(first)
    if case == "changed":
        incoming["valueQuantity"] = {**incoming["valueQuantity"], "value": incoming["valueQuantity"]["value"] + 1}
    elif case == "withdrawn":
        stored["status"] = "entered-in-error"
    return stored, incoming


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--case", choices=["changed", "same", "withdrawn"], default="changed")
    args = ap.parse_args()
    rules = shipped()
    stored, incoming = _pair(args.case)
    combine = rules.combine
    try:
        block = rules.saying(None, None, None)  # (msgfix33: message times are ``Dates``, none here)
    except TypeError:  # (before msgtime33: no message time)
        block = rules.saying(None, None)
    with block:
        start = time.perf_counter()
        for _ in range(args.calls):
            combine(stored, incoming, "ORU")
        elapsed = time.perf_counter() - start
    if args.calls:
        print(f"{args.case:9} combine {elapsed / args.calls * 1e9:8.0f} ns a call")


if __name__ == "__main__":
    main()
