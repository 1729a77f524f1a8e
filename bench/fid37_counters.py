"""The fidelity counters' write (``MessageStore.count_fidelity_many``), on SQLite and mongomock: a batch's counts (B
messages, each an unmapped code, an unknown segment and a counted warning naming one record of its own: 3
counters, the same 3 for every message) written in the batch's flat transaction, as ``Ingestor._write_batch`` does,
and one message's counts in a transaction of its own (a message written alone, a refusal's row).

fid37 moved the counters from one read of the rows then one ``replace`` each to the store's atomic
``Collection.increment`` (two processes on a standalone MongoDB lost counts). ``--root TREE`` measures another
checkout's code (e.g. main's, ``git archive main | tar -x -C /dev/shm/main``) with this bench.

CPU per call, the median of 5 rounds::

    python bench/fid37_counters.py [--root TREE] [--calls N] [--batch B]

Under callgrind (``CALLGRIND=1``) only ``--case``'s N calls run, inside ``sys.call_tracing``::

    CALLGRIND=1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        --callgrind-out-file=/dev/shm/o.out python bench/fid37_counters.py --case sqlite-batch --calls 200
    callgrind_annotate /dev/shm/o.out | head -20     # instructions of the N calls: divide by N"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--calls", type=int, default=300)
parser.add_argument("--batch", type=int, default=20)
parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
parser.add_argument("--case", default="sqlite-batch",
                    choices=[f"{b}-{c}" for b in ("sqlite", "mongomock") for c in ("batch", "one")])
ARGS = parser.parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_per_call, load_note  # noqa: E402 -- this tree's, whichever --root is measured

sys.path.insert(0, ARGS.root)

from adapters.hl7v2.errors import HL7Error, Tally  # noqa: E402
from engine.messages import Fidelity, MessageStore  # noqa: E402
from engine.repository import open_store  # noqa: E402
from engine.settings import Settings  # noqa: E402

_serial = itertools.count()


def _message() -> Fidelity:
    n = next(_serial)
    warning = HL7Error("PID-3 kept apart", segment="PID", field=3, code="205", severity="W",
                       tally=Tally("kept_apart", "LISB", records=(f"Patient/b{n % 50}",)))
    return Fidelity("FNXRMYY", [warning], [{"kind": "code", "code": "ZZB1", "where": "OBX-3"},
                                           {"kind": "segment", "segment": "ZXB", "where": "ZXB"}], f"m-{n}")


def cases(stores: dict[str, object]) -> dict[str, Callable[[], None]]:
    out: dict[str, Callable[[], None]] = {}
    for name, store in stores.items():
        messages = MessageStore(store)  # type: ignore[arg-type]
        flat = getattr(store, "flat_transaction", None) or store.transaction  # type: ignore[attr-defined]

        def batch(messages: MessageStore = messages, flat: Callable = flat) -> None:  # type: ignore[type-arg]
            with flat():
                messages.count_fidelity_many([_message() for _ in range(ARGS.batch)])

        def one(messages: MessageStore = messages, store: object = store) -> None:
            with store.transaction():  # type: ignore[attr-defined]
                messages.count_fidelity_many([_message()])

        out[f"{name}-batch"], out[f"{name}-one"] = batch, one
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        stores = {"sqlite": open_store(base), "mongomock": open_store(base.with_(mongodb_uri="mongomock://"))}
        run = cases(stores)
        if os.environ.get("CALLGRIND"):
            fn = run[ARGS.case]
            fn()  # warm

            def timed() -> None:
                for _ in range(ARGS.calls):
                    fn()

            sys.call_tracing(timed, ())
            return
        print(f"count_fidelity_many, {ARGS.root}; {load_note()}")
        for name, fn in run.items():
            fn()
            per = cpu_per_call(fn, ARGS.calls)
            what = f"a batch of {ARGS.batch}" if name.endswith("batch") else "one message"
            print(f"  {name:<16} {what:<14} {per:9.1f} us")
        for store in stores.values():
            store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
