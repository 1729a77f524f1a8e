"""A relative reference is read before the absolute checks (perf38a): the same answer for every
text and every base, the bases that start as a relative reference does included.

``read_reference`` tries ``_REF_PLAIN`` first and answers with its groups unless the base starts
with ``[A-Z]``; these hold it to the reading before (``test_index10_references._by_grammar``: the
base stripped, absolute and local references refused, ``_REF`` alone) on the odd texts and a fuzz,
each alone and behind each base, and then through the real write path: a lab message's references
are the index rows a search by them finds.
"""

from __future__ import annotations

import random

from engine.repository.indexing import read_reference
from tests.test_index10_references import ODD, _by_grammar, _fuzz

# URLs (the deployed kind), empty, and bases that start as a ``Type/id`` does: there the base is
# stripped first, as before
BASES = ["", "https://huren.example/fhir", "http://127.0.0.1:0/fhir", "Patient", "Patient/1", "Foo",
         "Observation/Patient", "Z", "A", "[", "@", "a", "urn:x", "#"]


def _texts() -> list[str]:
    rnd = random.Random(38)
    texts = ODD + _fuzz(6_000) + ["https://huren.example/fhir/Patient/1", "http://x/Patient/1", "Patient/1/_history/a:b",
                                  "Patient/1/_history/a://b", "Patient/1/_history/:", "Patient/x://y"]
    return texts + ["".join(rnd.choice("Pat/ien_hsoy1:#\n.-") for _ in range(rnd.randrange(1, 14))) for _ in range(4_000)]


def test_every_text_alone_and_behind_every_base_reads_as_before() -> None:
    texts = _texts()
    for base in BASES:
        for ref in texts:
            assert read_reference(ref, base) == _by_grammar(ref, base), (base, ref)
            behind = f"{base}/{ref}"
            assert read_reference(behind, base) == _by_grammar(behind, base), (base, behind)


def test_a_base_that_starts_as_a_type_is_still_stripped_first() -> None:
    # "Patient/Observation/1": relative by itself (Observation/1 by the grammar's longest prefix
    # too), and behind the base "Patient" the reference Observation/1 -- the same, by another path
    assert read_reference("Patient/Observation/1", "Patient") == ("Observation", "1")
    # "Foo/Bar/_history/1" behind base "Foo": Bar/_history/1 is no reference (an id "_history"
    # has no type), where alone the plain pattern reads Foo/Bar
    assert read_reference("Foo/Bar/_history/1", "Foo") is None
    assert read_reference("Foo/Bar/_history/1") == ("Foo", "Bar")
    assert read_reference("Foo/Bar/_history/1", "https://huren.example/fhir") == ("Foo", "Bar")


def test_the_answer_is_a_pair_of_the_texts() -> None:
    got = read_reference("Observation/a582626d-212e-54e3-8f0a-29a534c833b6/_history/1", "https://huren.example/fhir")
    assert got == ("Observation", "a582626d-212e-54e3-8f0a-29a534c833b6") and type(got) is tuple
