"""A create that a slice guards is taken as it is when it holds nothing at the sliced elements
(``MergeRules.as_is(..., resource=)``, pipe16): what ``combine`` would have stored, unchanged; and
a create that does carry a guarded slice still goes through ``combine`` and loses it, with the
warning, through the real write path."""

from __future__ import annotations

import copy

from engine.merge_rules import shipped
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store


def _patient(**extra: object) -> dict:
    return {"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.23.1.1", "value": "110101198001010011"}],
            "name": [{"text": "张三"}], "gender": "male", **extra}


def test_a_create_without_sliced_elements_is_what_combine_stores() -> None:
    rules = shipped()
    for source in ("ORU", "ADT", "ORM", "api"):
        patient = _patient()
        assert rules.as_is("Patient", source, creating=True, resource=patient)
        combined = rules.combine(None, copy.deepcopy(patient), source)
        assert combined.resource == patient and combined.issues == []
        # not for an update, whatever the resource holds
        assert not rules.as_is("Patient", source, creating=False, resource=patient) or \
            rules.plan("Patient", source).trivial


def test_a_create_with_a_guarded_slice_still_goes_through_combine(store: Store) -> None:
    rules, repository = shipped(), FhirRepository(store, base_url="http://huren.test/fhir")
    linked = _patient(link=[{"other": {"reference": "Patient/p2"}, "type": "seealso"}])
    assert not rules.as_is("Patient", "ORU", creating=True, resource=linked)
    written = repository.write_many([linked], source="ORU")[0]
    assert "link" not in written.resource  # the index's slice: a feed may not create it
    assert any("link" in (i.get("expression") or [""])[0] for i in written.issues)
    stored = repository.read("Patient", "p1")
    assert "link" not in stored


def test_saying_blocks_nest_and_restore_on_failure() -> None:
    """``saying`` (a class now, not a generator): the inner block's statements replace the outer
    ones inside it, the outer ones are back after it, also when the block raises."""
    from engine.merge_rules import Delete, Said

    rules = shipped()
    outer, inner = {"Patient/p1": Said(deletes=(Delete("telecom"),))}, {"Patient/p1": Said(deletes=(Delete("maritalStatus"),))}
    local = rules._local
    with rules.saying(outer, None):
        assert local.said is outer
        try:
            with rules.saying(inner, "store"):  # type: ignore[arg-type]
                assert local.said is inner and local.stored == "store"
                raise RuntimeError("the write failed")
        except RuntimeError:
            pass
        assert local.said is outer and local.stored is None
        with rules.saying({}, None):
            assert local.said is None  # nothing said: None, as before
    assert getattr(local, "said", None) is None


def test_one_saying_block_is_entered_once() -> None:
    """Entered a second time, a block would keep its first entry's outer values and leave its own
    statements behind on the thread after both exits; the generator it replaced refused that, and so
    does the class (review of pipe16)."""
    import pytest

    rules = shipped()
    block = rules.saying({}, None)
    with block, pytest.raises(RuntimeError, match="entered once"), block:
        pass
    assert getattr(rules._local, "said", None) is None
