"""wardlink38: what a FHIR report PUT listing results with no index entry costs the recognition hook.

A client's blood-count report listing 19 stored, locally coded Observations (no recognition items: no
entries) is PUT N times (its ``code.text`` changed, so each is a new version). Before wardlink38 the hook
(``Repeats._relink``) read each listed Observation to decide whether to note it as listed ahead; now one
``writers`` read answers for all of them. Prints the CPU inside ``_relink`` and the whole PUT, and the
Observation reads the recognition made, per PUT. Runs on any tree that has ``Repeats._relink`` (main's
too: ``git archive main | tar -x -C DIR`` and run this file there). Asserts nothing.

    .venv/bin/python bench/wardlink38_links.py [puts]"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402

LISTED = 19


def main(puts: int) -> int:
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)) as engine:
        repo, rec = engine.repository, engine.recognition
        repo.update({"resourceType": "Patient", "id": "wl38b-p", "name": [{"text": "钱七"}]})
        repo.update({"resourceType": "Organization", "id": "wl38b-org", "name": "阜宁县人民医院",
                     "identifier": [{"system": "urn:huren:institution", "value": "FNXRMYY"}]})
        refs = []
        for i in range(LISTED):
            repo.update({"resourceType": "Observation", "id": f"wl38b-o{i}", "status": "final",
                         "code": {"coding": [{"system": "urn:oid:1.2.156.wl38b", "code": f"L{i}"}], "text": f"本院项目{i}"},
                         "subject": {"reference": "Patient/wl38b-p"}, "performer": [{"reference": "Organization/wl38b-org"}],
                         "effectiveDateTime": "2026-12-01T08:00:00+08:00",
                         "valueQuantity": {"value": 4.0 + i, "unit": "U/L"}})
            refs.append({"reference": f"Observation/wl38b-o{i}"})
        spent = [0.0]
        reads = [0]
        relink, read = rec._relink, rec.read

        def timed(*args: Any, **kw: Any) -> Any:
            start = time.process_time()
            try:
                return relink(*args, **kw)
            finally:
                spent[0] += time.process_time() - start

        def counted(rtype: str, rid: str) -> Any:
            reads[0] += rtype == "Observation"
            return read(rtype, rid)

        rec._relink, rec.read = timed, counted
        report = {"resourceType": "DiagnosticReport", "id": "wl38b-r", "status": "final",
                  "subject": {"reference": "Patient/wl38b-p"}, "result": refs}
        repo.update({**report, "code": {"text": "血常规 warm"}})
        spent[0], reads[0] = 0.0, 0
        start = time.process_time()
        for n in range(puts):
            repo.update({**report, "code": {"text": f"血常规 {n}"}})
        whole = time.process_time() - start
    print(f"{puts} report PUTs listing {LISTED} stored results with no entry: "
          f"{whole / puts * 1e3:.3f} ms CPU a PUT, {spent[0] / puts * 1e3:.3f} ms of it in _relink "
          f"({spent[0] / whole * 100:.1f} %), {reads[0] / puts:.1f} Observation reads a PUT")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
