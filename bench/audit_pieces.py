"""An audited read's Python pieces alone, N calls each: a system client's record, a resident's record
(``facts_for_request`` for a one-resource read; her ``Caller`` made each call, as the server makes one per
request) and the route's note of the read (``note`` with the stored Observation) (forty-fourth round, aud44).

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/null \\
        python bench/audit_pieces.py system|resident|note 2000      # instructions / 2000 = a call
    NOOP=1 ... python bench/audit_pieces.py system 2000              # the loop alone, to take off

The collector is off while they run (what a call allocates is freed by the server's request anyway; a
collection here would be charged to whichever call crossed the threshold). Without valgrind it prints the
CPU time a call. (aud44, by this bench's first version, the same calls: a system client's record 25.6 k ->
24.4 k, a resident's 34.6 k -> 27.4 k, the note 18.8 k -> 17.0 k, the loop's ~2.1 k in each.)
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.requests import Request  # noqa: E402

from engine.audit.middleware import facts_for_request  # noqa: E402
from engine.audit.note import AuditNote, note  # noqa: E402
from engine.auth.caller import Caller  # noqa: E402

REF = "Observation/o1/_history/1"
OBSERVATION = {"resourceType": "Observation", "id": "o1", "meta": {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00Z"},
               "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
               "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
               "performer": [{"reference": "Organization/org1"}], "valueQuantity": {"value": 13.2, "unit": "g/dL"}}


def main() -> None:
    what, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    read = AuditNote("read", [REF], ["p1"], owners={REF: ["p1"]})
    system = Caller(subject="his-a", kind="system", scopes=("system/*.rs",), client_id="his-a")
    compartment = frozenset({"p1", "p2"})

    def caller() -> Caller:
        if what == "resident":
            return Caller(subject="Patient/p1", kind="patient", scopes=("patient/*.rs",), client_id="huren-me",
                          patient_ids=compartment, patient="p1", token_id="j")
        return system

    scopes = [{"type": "http", "client": ("127.0.0.1", 5000), "method": "GET", "path": "/fhir/Observation/o1",
               "headers": [], "state": {"caller": caller(), "audit_notes": []}} for _ in range(n)]
    made = facts_for_request
    if os.environ.get("NOOP"):
        def made(*_args: object) -> None:  # type: ignore[misc]
            return None
    if what == "note":
        requests = [Request(scope) for scope in scopes]
        note(Request({**scopes[0], "state": {}}), action="read", resources=[OBSERVATION])  # (warm)

        def run() -> None:
            for request in requests:
                note(request, action="read", resources=[OBSERVATION])
    else:
        facts_for_request(scopes[0], [read], 200, time.time_ns() // 1_000_000, "node")  # (warm)

        def run() -> None:
            for scope in scopes:
                made(scope, [read], 200, time.time_ns() // 1_000_000, "node")

    gc.disable()
    began = time.process_time()
    sys.call_tracing(run, ())
    print(f"{(time.process_time() - began) / n * 1e6:.2f} us CPU a call ({what}, {n} calls)")


if __name__ == "__main__":
    main()
