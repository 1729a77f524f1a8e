"""A resident's audit record alone: ``facts_for_request`` for her one-resource read, N calls, each with a
``Caller`` of its own as the server makes one per request (forty-second round, perfa42b).

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        python bench/resident_record.py 2000      # instructions / 2000 = a record

(perfa42b: 51.7 k a record by the general path, 34.3 k from her prefix.) Without valgrind it prints the
CPU time a record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.audit.middleware import facts_for_request  # noqa: E402
from engine.audit.note import AuditNote  # noqa: E402
from engine.auth.caller import Caller  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    compartment = frozenset({"p1", "p2"})
    note = AuditNote("read", ["Observation/o1/_history/1"], ["p1"], owners={"Observation/o1/_history/1": ["p1"]})
    scopes = [{"client": ("127.0.0.1", 5000), "method": "GET", "path": "/fhir/Observation/o1", "state": {
        "caller": Caller(subject="Patient/p1", kind="patient", scopes=("patient/*.rs",), client_id="huren-me",
                         patient_ids=compartment, patient="p1", token_id="j")}} for _ in range(n)]
    facts_for_request(scopes[0], [note], 200, time.time_ns() // 1_000_000, "node")  # (warm)

    def run() -> None:
        for scope in scopes:
            facts_for_request(scope, [note], 200, time.time_ns() // 1_000_000, "node")

    began = time.process_time()
    sys.call_tracing(run, ())
    print(f"{(time.process_time() - began) / n * 1e6:.2f} us CPU a resident's record ({n} records)")


if __name__ == "__main__":
    main()
