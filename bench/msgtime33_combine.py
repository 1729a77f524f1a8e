"""What ``until_later`` costs the merge of a result per stored version (thirty-third round, msgtime33;
message times by the senders' MSH-7 since msgfix33/msgfix34).

    python bench/msgtime33_combine.py [--calls N] [--case CASE]

``MergeRules.combine`` of an Observation from a feed asks whether the stored status or the message's
is one that stands until a later message (merge.yaml Observation ``status: until_later``): every
result update pays the question; only a status change meeting such a value pays the answer -- the
Provenances naming the stored version searched, their messages' MSH-7 compared
(``engine.message_time.settle``). Cases, on the 12-OBX lab ORU of ``bench/ingest.py`` (its first
result: stored, then the incoming version of a later message):

- ``changed``: the value changed (a corrected result: a new version);
- ``same``: the result re-sent as it was;
- ``withdrawn``: the stored result withdrawn (11:00), the message (10:00) stating it final: held;
- ``withdraw``: the stored result final (10:00), the message (11:00, the same sender) withdrawing it:
  taken (before msgfix34 not dated at all).

Since msgfix33 ``saying`` takes the message times as ``Dates``: here one in-memory answer (this
message's ``Stamp``, the stored version's message's), and the stored keeper a list of one Provenance
naming the version -- the store's search and the message store's read are not measured here (see
``bench/ingest.py`` and the report for the ingest figures). In a tree before msgfix33 (no
``engine.message_time``) the script passes the old time string and no store, as it did then.

Prints the wall time per call. For steadier figures count instructions (the calls run inside
``operator.call``, a C function nothing else here calls, as in ``bench/ingest.py --instructions``):

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \
        python bench/msgtime33_combine.py --calls 2000 --case withdraw

and divide the collected total by ``--calls``; run it in a copy of the tree before and after the
change (the script reads the tree it lies in, and runs in one before msgtime33 or msgfix33).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import operator
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    elif case == "withdraw":
        incoming["status"] = "entered-in-error"
    return stored, incoming


@dataclass
class _Page:
    resources: list[dict[str, Any]]
    has_next: bool = False


class _Kept:
    """The stored keeper as the merge reads it for ``until_later``: a Provenance search answered from
    one Provenance naming the stored version (a store's cost is not this bench's)."""

    def __init__(self, stored: dict[str, Any]) -> None:
        target = f"Observation/{stored['id']}/_history/{stored['meta']['versionId']}"
        self._provenances = [{"resourceType": "Provenance", "id": "p1", "target": [{"reference": target}]}]

    def search(self, rtype: str, params: list[tuple[str, str]]) -> _Page:
        return _Page(self._provenances if rtype == "Provenance" else [])

    def read_many(self, keys: Any) -> dict[Any, Any]:
        return {}

    def pending(self) -> list[Any]:
        return []


def _dates(case: str) -> Any:
    """The message times of ``case``: the same sender (LIS of FNXRMYY); the stored version's message
    at 11:00 (withdrawn) or 10:00, this message's at 10:00 (withdrawn) or 11:00."""
    from engine.message_time import stamp

    older, later = "20261101100000", "20261101110000"
    now_msh7, then_msh7 = (older, later) if case == "withdrawn" else (later, older)
    now = stamp(application="LIS", institution="FNXRMYY", msh7=now_msh7, received_at="2026-11-01T03:10:00+00:00",
                tz="Asia/Shanghai", label="ORU^R01 B2")
    then = stamp(application="LIS", institution="FNXRMYY", msh7=then_msh7, received_at="2026-11-01T03:00:00+00:00",
                 tz="Asia/Shanghai", label="ORU^R01 B1")

    class Dates:
        def __init__(self) -> None:
            self.now = now

        def of(self, provenances: list[dict[str, Any]]) -> list[Any]:
            return [then]

        def pending(self, ref: str) -> Any:
            return None

    return Dates()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--case", choices=["changed", "same", "withdrawn", "withdraw"], default="changed")
    args = ap.parse_args()
    rules = shipped()
    stored, incoming = _pair(args.case)
    combine = rules.combine
    if importlib.util.find_spec("engine.message_time") is not None:  # (msgfix33 on: ``Dates``)
        block = rules.saying(None, _Kept(stored), _dates(args.case))
    else:
        try:
            block = rules.saying(None, None, "2026-11-01T10:30:00+08:00")
        except TypeError:  # (before msgtime33: no message time)
            block = rules.saying(None, None)
    def loop() -> None:
        for _ in range(args.calls):
            combine(stored, incoming, "ORU")

    with block:
        start = time.perf_counter()
        operator.call(loop)  # (callgrind: ``--toggle-collect=_operator_call`` counts the calls alone)
        elapsed = time.perf_counter() - start
    if args.calls:
        print(f"{args.case:9} combine {elapsed / args.calls * 1e9:8.0f} ns a call")


if __name__ == "__main__":
    main()
