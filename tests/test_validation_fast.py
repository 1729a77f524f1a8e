"""The validator's yes/no path agrees with its explaining path, on converter output and mutations of it.

``Validator.validate`` first asks one question per resource (``_valid``: the R4 definition and
huren's profile compiled as one schema, see ``Profile.as_schema``); only a "no" leads to
``problems``, which checks the R4 structure and each profile rule separately and explains what is
wrong. If the two disagreed, an invalid resource could be stored (fast "yes", slow "no") or a
valid one refused without a reason. This converts the example feeds and the public samples, then
mutates the values a message supplies (bad dates, bad decimals, empty and blank strings, wrong
reference types, exact and huge decimals, nulls, missing required elements) and checks both paths give the same answer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.convert import convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.header import decode_message
from adapters.hl7v2.parser import parse
from conformance.profiles import load_profile
from conformance.validate import Validator
from engine.fhirjson import FhirDecimal
from engine.settings import Settings
from mappings.site import Site
from tests.conftest import REPO_ROOT, SAMPLES, sample_site

VALIDATOR = Validator()
FEEDS = REPO_ROOT / "examples" / "feeds"

# what a sender can put where a message value goes
BAD_STRINGS = ["", " ", "  \t", "2023-02-30", "2023-13-01T10:00:00+08:00", "20230101", "1.2.3", "-", "a b",
               "Encounter/1", "https://x/fhir/Medication/1", "x" * 65]
NUMBER_VALUES = ["6.1", "abc", None, True, [], {}, FhirDecimal("6.10"), FhirDecimal("1e400"), 10**30]


def explained_valid(resource: dict[str, Any]) -> bool:
    return next(iter(VALIDATOR.problems(resource)), None) is None


def converted() -> list[dict[str, Any]]:
    site = Site.load(Settings())
    out: list[dict[str, Any]] = []
    for path in sorted(FEEDS.glob("*.hl7")):
        try:
            out += convert(parse(decode_message(path.read_bytes())), site).resources
        except HL7Error:
            continue
    return out


def mutations(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource with one value changed at a time (every leaf, a few bad values each) and with
    each top-level element removed or set to null."""
    leaves = list(_leaves(resource, ()))
    for path, value in leaves:
        bad = NUMBER_VALUES if isinstance(value, (int, float)) and not isinstance(value, bool) else BAD_STRINGS
        for replacement in bad:
            changed = copy.deepcopy(resource)
            node = changed
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = replacement
            yield changed
    for key in resource:
        if key in ("resourceType", "id"):
            continue
        without = {k: v for k, v in resource.items() if k != key}
        yield without
        yield {**resource, key: None}


def _leaves(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if path == () and k == "resourceType":
                continue
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


RESOURCES = converted()
TYPES = sorted({r["resourceType"] for r in RESOURCES})


def test_the_feeds_give_many_resource_types() -> None:
    assert {"Observation", "DiagnosticReport", "ServiceRequest", "Patient", "Encounter", "Provenance"} <= set(TYPES)


@pytest.mark.parametrize("rtype", TYPES)
def test_fast_and_explaining_paths_agree_on_mutated_converter_output(rtype: str) -> None:
    # one of each distinct shape of this type (the feeds repeat shapes many times)
    shapes: dict[tuple[str, ...], dict[str, Any]] = {}
    for resource in RESOURCES:
        if resource["resourceType"] == rtype:
            shapes.setdefault(tuple(sorted(resource)), resource)
    checked = invalid = 0
    for resource in shapes.values():
        assert VALIDATOR._valid(resource) and explained_valid(resource)  # the converter's output is valid
        for changed in mutations(resource):
            fast = VALIDATOR._valid(changed)
            assert fast == explained_valid(changed), changed
            checked += 1
            invalid += not fast
    assert checked and invalid  # the mutations reach the invalid side


def test_the_public_samples_agree_too(tmp_path: Path) -> None:
    site = sample_site(tmp_path)
    count = 0
    for path in sorted(SAMPLES.glob("*/*.hl7")):
        try:
            resources = convert(parse(path.read_text(encoding="utf-8")), site).resources
        except HL7Error:
            continue
        for resource in resources:
            assert VALIDATOR._valid(resource) == explained_valid(resource), (path.name, resource["resourceType"])
            count += 1
    assert count > 300


def test_every_shipped_profile_is_folded_into_one_schema() -> None:
    """A profile that could not be written as one schema would silently take the slower path."""
    assert VALIDATOR.profiles
    for profile in VALIDATOR.profiles.values():
        assert profile.as_schema() is not None, profile.resource_type


def test_a_profile_with_other_keywords_is_checked_rule_by_rule(tmp_path: Path) -> None:
    """``if``/``then`` mean nothing in draft-06: such a rule is not folded, and still applies."""
    (tmp_path / "Patient.yaml").write_text(
        "resourceType: Patient\nrules:\n  - element: gender\n    schema: {if: {const: other}, then: {const: x}}\n"
        "    message: other is not accepted here\n", encoding="utf-8")
    validator = Validator(profiles_dir=tmp_path)
    profile = load_profile(tmp_path / "Patient.yaml", validator.r4.definitions)
    assert profile.as_schema() is None
    assert validator.is_valid({"resourceType": "Patient", "gender": "male"})
    assert not validator.is_valid({"resourceType": "Patient", "gender": "other"})
    assert not validator._valid({"resourceType": "Patient", "gender": "other"})
