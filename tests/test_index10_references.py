"""``read_reference`` gives what the reference grammar ``_REF`` alone gives, for every text.

The common forms (``Type/id``, ``Type/id/_history/v``: a message's subject, a Provenance's
targets) are read by an anchored pattern without ``_REF``'s leading ``(?:.*/)?`` and everything
else by ``_REF``; the two must agree on every string, the odd ones included (a prefix, an id
that is a type name, a trailing newline, 64 and 65 characters, ``_history`` in odd places).
"""

from __future__ import annotations

import random

from engine.repository.indexing import _REF, read_reference

BASE = "https://huren.example/fhir"


def _by_grammar(ref: str, base_url: str = "") -> tuple[str, str] | None:
    """The reading before the anchored pattern: ``_REF`` alone."""
    if base_url and ref.startswith(base_url + "/"):
        ref = ref[len(base_url) + 1 :]
    elif "://" in ref or ref.startswith(("#", "urn:")):
        return None
    m = _REF.match(ref)
    return (m.group(1), m.group(2)) if m else None


ODD = ["Patient/1", "Patient/1/_history/2", "Observation/a582626d-212e-54e3-8f0a-29a534c833b6/_history/1",
       "Patient/Abc/_history/Def", "Patient/Abc/_history/", "Patient/Abc/_history", "Foo/Bar/Baz", "a/Patient/1",
       "Patient/1\n", "Patient/1/_history/2\n", "Patient/1\n/x", "\nPatient/1", "P/1", "Pa/1", "Patient/",
       "/Patient/1", "Patient//1", "Patient/1/", "Patient/" + "x" * 64, "Patient/" + "x" * 65,
       "Patient/" + "x" * 65 + "/_history/1", "A/B/C/D/_history/1", "Patient/_history/1", "Patient/1/_history/1/x",
       "Patient/1/_history/1/_history/2", "Pätient/1", "Patient/ä", "Patient/1 ", " Patient/1", "", "/",
       "Observation/Patient/_history/3", "Patient/Observation", "Patient/A-b.c", "#contained", "urn:uuid:1"]


def _fuzz(n: int) -> list[str]:
    rnd = random.Random(10)
    parts = ["Patient", "Observation", "P", "a", "Ab", "1", "x-y.z", "_history", "", "/", "\n", "ä", "_", "A" * 64,
             "b" * 65, "://", "#"]
    return ["/".join(rnd.choice(parts) for _ in range(rnd.randrange(1, 6))) for _ in range(n)]


def test_the_common_forms_read_as_the_grammar_reads_them() -> None:
    for ref in ODD + _fuzz(20_000):
        assert read_reference(ref) == _by_grammar(ref), repr(ref)
        assert read_reference(f"{BASE}/{ref}", BASE) == _by_grammar(f"{BASE}/{ref}", BASE), repr(ref)


def test_what_the_common_forms_give() -> None:
    assert read_reference("Observation/o1/_history/1") == ("Observation", "o1")
    assert read_reference("Foo/Bar/Baz") == ("Bar", "Baz")  # the grammar's longest prefix, as before
    assert read_reference("Patient/" + "x" * 65) is None
