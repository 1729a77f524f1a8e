"""Conversion output is byte-for-byte what the recorded converter produced (speed work guard).

Every HL7 v2 message huren ships or tests with is converted and the result written as bytes (the
transaction Bundle through ``engine.fhirjson.dumps``, so an exact decimal keeps its text and key
order counts, plus warnings, unmapped codes, ``create_only`` and the institution): the public
samples under ``tests/data/hl7v2`` (on the overlay site ``test_convert_samples`` uses), the
example feeds, and feed-shaped variants of them (other control ids, order and visit numbers,
resident IDs and timestamps, as ``bench/parse.py`` makes them). The SHA-256 of each is compared
with ``tests/data/convert-golden.json``.

A refactoring for speed must leave every digest as it is. A deliberate mapping change changes
some: regenerate the file and review the list of names it reports as changed::

    python -m tests.test_convert_golden --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from adapters.convert import Conversion, convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from engine.fhirjson import dumps
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import REPO_ROOT, SAMPLES, sample_files, sample_site

GOLDEN = REPO_ROOT / "tests" / "data" / "convert-golden.json"
FEEDS = REPO_ROOT / "examples" / "feeds"
VARIANTS = 12  # feed-shaped variants of each example feed


def _outcome(text: str, site: Site) -> bytes:
    """What one conversion produced, as bytes (a refusal: its located error)."""
    try:
        conv: Conversion = convert(parse(text), site)
    except HL7Error as err:
        return dumps({"refused": [err.message, err.segment, err.sequence, err.field, err.component, err.code,
                                  err.ack_code]})
    return dumps({
        "institution": conv.institution,
        "bundle": conv.bundle,
        "warnings": [[w.message, w.segment, w.sequence, w.field, w.component, w.code, w.severity]
                     for w in conv.warnings],
        "unmapped": conv.unmapped,
        "create_only": conv.create_only,
    })


def outcomes(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every conversion the golden file covers."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        from parse import variants  # bench/parse.py: the feed-shaped variants the benchmark converts
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
    samples = sample_site(folder)
    for path in sample_files():
        yield f"samples/{path.relative_to(SAMPLES)}", _outcome(path.read_text(encoding="utf-8"), samples)
    site = Site.load(Settings())
    for path in sorted(FEEDS.glob("*.hl7")):
        text = decode_message(path.read_bytes())
        yield f"feeds/{path.name}", _outcome(text, site)
        for i, variant in enumerate(variants(text, VARIANTS)):
            yield f"feeds/{path.name}#{i}", _outcome(variant, site)


def digests(folder: Path) -> dict[str, str]:
    # a message without a usable MSH-7 is recorded at the conversion's time: held still here
    with mock.patch("adapters.convert.common.received_now", return_value="2026-01-01T00:00:00+00:00"):
        return {name: hashlib.sha256(data).hexdigest() for name, data in outcomes(folder)}


def test_conversion_output_is_unchanged(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    ours = digests(tmp_path)
    assert len(ours) >= 300 and sum(1 for n in ours if n.startswith("samples/")) >= 50
    assert sorted(ours) == sorted(golden), "the set of converted messages changed: regenerate the golden file"
    changed = [name for name in ours if ours[name] != golden[name]]
    assert not changed, f"conversion output changed for {len(changed)} messages, e.g. {changed[:5]}"


if __name__ == "__main__":  # python -m tests.test_convert_golden --write
    import tempfile

    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        new = digests(Path(tmp))
    old = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
    GOLDEN.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            print("changed:", name)
    print(f"{len(new)} conversions written to {GOLDEN}")
