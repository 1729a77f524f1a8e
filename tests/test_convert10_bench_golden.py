"""The ingest benchmark's messages convert to the same bytes as before the tenth round's speed work.

``tests/test_convert_golden.py`` guards the public samples and the example feeds; this guards the
three messages the ingest benchmark sends (``bench/ingest.py``: a 12-OBX blood count, an ADT^A01,
an imaging report), the shapes the speed work was measured on, sent as a feed sends them: one
process converting a stream of them, residents coming back (every 499th message), each message
converted twice in a row (the second time the per-process memos answer: the Patient copied, the
sender and the doctor proven, the results built from their plans). The SHA-256 of every outcome
(the transaction Bundle through ``engine.fhirjson.dumps``, warnings, unmapped notes, create-only
references, institution) must equal the one recorded in ``tests/data/convert10-bench-golden.json``,
which was written by the code of the round's start (main at 1edba2c)::

    PYTHONPATH=<a checkout of that code> python tests/test_convert10_bench_golden.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "convert10-bench-golden.json"
PER_KIND = 60  # messages of each kind (enough for plans to be learnt, proven and used)


def digests() -> dict[str, str]:
    """name -> SHA-256 of what converting that message gave, in the order a stream converts them."""
    from bench.ingest import KINDS
    from engine.settings import Settings
    from mappings.site import Site
    from tests.test_convert_golden import (
        _outcome,  # what a conversion produced, as the samples' test keeps it
    )

    site = Site.load(Settings())
    out: dict[str, str] = {}
    for kind, make in KINDS.items():
        for n in [*range(PER_KIND), 499, 998]:  # 499 and 998: the residents of 0 and 1 coming back
            text = make(n).decode("utf-8")
            for attempt in (1, 2):
                data = _outcome(text, site)
                out[f"{kind}#{n}.{attempt}"] = hashlib.sha256(data).hexdigest()
    return out


def test_bench_messages_convert_as_before() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    ours = digests()
    assert len(ours) == 3 * (PER_KIND + 2) * 2
    assert sorted(ours) == sorted(golden)
    changed = [name for name in ours if ours[name] != golden[name]]
    assert not changed, f"conversion output changed for {len(changed)} messages, e.g. {changed[:5]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    sys.path.append(str(ROOT))  # last: the code under PYTHONPATH converts (bench/ is the same in both)
    import adapters
    print(f"converting with {Path(adapters.__file__).parent}")
    GOLDEN.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written {GOLDEN}")
