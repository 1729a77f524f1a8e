"""Narrowed references accept exactly what the single look-ahead pattern accepted.

The schema refuses an absolute URL that names a resource type its element may not point at
(``https://x/fhir/Patient/1`` as ``Patient.managingOrganization``). That rule used to be one
pattern with a negative look-ahead; it is now the general pattern plus an ``anyOf`` ("names no
type, or is a URL of an allowed type"), which the fast regex engine runs. This compares the two
over a few thousand generated references, in Python's ``re`` (which runs both forms) and through
the real validator (jsonschema-rs), for several target-type sets.
"""

from __future__ import annotations

import random
import re

import pytest

from conformance.validate import _ABSOLUTE_BRANCH, _ID, Validator, _type_group, load_schema

WS = r" \t\n\x0B\x0C\r"
VALIDATOR = Validator()
GENERAL = load_schema()["definitions"]["Reference"]["properties"]["reference"]["pattern"]
EVERY = _type_group(VALIDATOR.r4.resource_types)


def look_ahead_pattern(allowed: list[str]) -> re.Pattern[str]:
    """The former narrowed pattern: one regex, the typed-URL rule as a negative look-ahead."""
    group = _type_group(allowed)
    typed_tail = rf"/{EVERY}/{_ID}(/_history/{_ID})?$"
    allowed_url = rf"https?://[^{WS}/?#]+(/[^{WS}?#]*)*/{group}/{_ID}(/_history/{_ID})?"
    other_url = rf"https?://(?![^{WS}]*{typed_tail})" + _ABSOLUTE_BRANCH[len("https?://"):]
    return re.compile(GENERAL.replace(EVERY, group).replace(_ABSOLUTE_BRANCH, f"{other_url}|{allowed_url}"))


def schema_accepts(schema: dict, value: str) -> bool:
    """The narrowed ``reference`` schema (``pattern`` + ``anyOf``) evaluated with Python's ``re``."""
    if not re.search(schema["pattern"], value):
        return False
    return any(
        (not re.search(branch["not"]["pattern"], value)) if "not" in branch else bool(re.search(branch["pattern"], value))
        for branch in schema["anyOf"]
    )


def references(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    schemes = ["", "https://", "http://", "ftp://", "urn:uuid:", "urn:oid:", "#", "HTTPS://"]
    hosts = ["", "h", "fhir.example.cn", "h.example:8080", "h/a?b=", "h/a#f", "h b", "h/base/r4"]
    types = ["Patient", "Organization", "Practitioner", "Encounter", "Foo", "organization", "_history", ""]
    ids = ["p1", "o-1.2", "", "x" * 64, "x" * 65, "a_b", "1 2", "c1"]
    tails = ["", "/_history/2", "/_history/", "/x", "?q=1", "#frag", "/", " "]
    fixed = ["Organization/1", "Patient/1", "Organization?identifier=x", "Organization?", "#", "#c1",
             "urn:uuid:0d6c2f1e-3b0f-5a8e-9d43-5a3f6c1b2e90", "urn:oid:1.2.3", "Organization/1/_history/2",
             " Organization/1", "https://x/a?b=/Organization/1", "https://x/fhir/Organization/1",
             "https://x/fhir/Patient/1/_history/2", "https://x/Patient", "http://x", "https://"]
    out = list(fixed)
    while len(out) < count:
        scheme = rng.choice(schemes)
        host = rng.choice(hosts) if scheme.endswith("//") else ""
        path = "/".join(p for p in (rng.choice(types), rng.choice(ids)) if rng.random() < 0.9)
        sep = "/" if host else ""
        out.append(f"{scheme}{host}{sep}{path}{rng.choice(tails)}")
    return out


TARGETS = [["Organization"], ["Group", "Patient"], ["Practitioner", "PractitionerRole"], ["Organization", "Patient"]]


@pytest.mark.parametrize("allowed", TARGETS, ids=lambda t: "_".join(t))
def test_both_forms_accept_the_same_references(allowed: list[str]) -> None:
    schema = VALIDATOR.r4.definitions["Reference_to_" + "_".join(allowed)]["properties"]["reference"]
    old = look_ahead_pattern(allowed)
    corpus = references(4000)
    verdicts = [(value, bool(old.search(value)), schema_accepts(schema, value)) for value in corpus]
    differ = [(v, a, b) for v, a, b in verdicts if a != b]
    assert not differ, differ[:10]
    accepted = sum(1 for _, a, _ in verdicts if a)
    assert 200 < accepted < len(corpus) - 200  # the corpus exercises both answers


def test_the_validator_agrees_with_the_look_ahead_pattern() -> None:
    """Through jsonschema-rs, on an element narrowed to Organization."""
    old = look_ahead_pattern(["Organization"])
    for value in references(1500, seed=11):
        patient = {"resourceType": "Patient", "managingOrganization": {"reference": value}}
        assert VALIDATOR.is_valid(patient) == bool(old.search(value)), value


def test_a_typed_url_of_the_wrong_type_keeps_its_message() -> None:
    patient = {"resourceType": "Patient", "managingOrganization": {"reference": "https://x/fhir/Patient/1"}}
    assert list(VALIDATOR.problems(patient)) == [(
        "Patient.managingOrganization.reference", "value",
        '"https://x/fhir/Patient/1" must point at Organization (the R4 target types here)')]
