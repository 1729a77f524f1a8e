"""A resource whose exact JSON text was found valid before is valid without asking the schema
engine again -- and only that exact text: Python's equality (``True == 1``, ``1.5 == 1.50``) is
not FHIR's, so a resource equal in Python but written differently is validated in full."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.validate import _SEEN_RETRY, _SEEN_TRIAL, Validator
from engine.errors import Unprocessable
from engine.fhirjson import FhirDecimal

ORGANIZATION = {"resourceType": "Organization", "id": "org-1", "active": True, "name": "阜宁县人民医院",
                "identifier": [{"system": "urn:huren:institution", "value": "FNXRMYY"}]}
OBSERVATION = {"resourceType": "Observation", "id": "obs-1", "status": "final",
               "code": {"text": "WBC"}, "subject": {"reference": "Patient/p1"},
               "effectiveDateTime": "2026-11-01T09:00:00+08:00",
               "performer": [{"reference": "Organization/org-1"}],
               "valueQuantity": {"value": FhirDecimal("6.10"), "unit": "10*9/L"}}


def _schema_calls(validator: Validator) -> list[str]:
    """The resource types the schema engine is asked about (its compiled checks, counted)."""
    calls: list[str] = []
    original = validator._valid_fast

    def counted(resource: Any, profiled: bool = True) -> bool:
        calls.append(resource.get("resourceType"))
        return original(resource, profiled)

    validator._valid_fast = counted  # type: ignore[method-assign]
    return calls


def test_the_same_text_again_is_not_validated_again() -> None:
    validator = Validator()
    calls = _schema_calls(validator)
    validator.validate(copy.deepcopy(ORGANIZATION))
    validator.validate(copy.deepcopy(ORGANIZATION))
    validator.validate(copy.deepcopy(OBSERVATION))
    validator.validate(copy.deepcopy(OBSERVATION))
    assert calls.count("Organization") == 1
    assert calls.count("Observation") <= 2  # an exact decimal is asked again as its Decimal view, once


@pytest.mark.parametrize(("path", "value"), [
    (("active",), 1),  # == True in Python, not a FHIR boolean
    (("active",), "true"),
    (("name",), 5),
    (("identifier", 0, "value"), ""),
])
def test_equal_in_python_or_not_a_changed_text_is_validated_in_full(path: tuple[Any, ...], value: Any) -> None:
    validator = Validator()
    validator.validate(copy.deepcopy(ORGANIZATION))
    changed = copy.deepcopy(ORGANIZATION)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(Unprocessable):
        validator.validate(changed)
    validator.validate(copy.deepcopy(ORGANIZATION))  # the valid one still is


def test_an_exact_decimal_keeps_its_text() -> None:
    validator = Validator()
    validator.validate(copy.deepcopy(OBSERVATION))
    calls = _schema_calls(validator)
    other = copy.deepcopy(OBSERVATION)
    other["valueQuantity"]["value"] = 6.1  # the same number, written 6.1 instead of 6.10
    validator.validate(other)
    assert calls  # another text: asked again


def test_a_null_is_never_taken_for_a_seen_text() -> None:
    validator = Validator()
    nan = copy.deepcopy(OBSERVATION)
    nan["valueQuantity"]["value"] = float("nan")  # JSON writes it as null
    with pytest.raises(Unprocessable):
        validator.validate(nan)
    with pytest.raises(Unprocessable):
        validator.validate(nan)


def test_a_type_that_never_recurs_stops_being_looked_up_and_is_tried_again_later() -> None:
    validator = Validator()
    texts: list[Any] = []
    original = validator._seen_text

    def recorded(resource: Any) -> Any:
        text = original(resource)
        texts.append(text)
        return text

    validator._seen_text = recorded  # type: ignore[method-assign]
    for i in range(_SEEN_TRIAL + 10):
        validator.validate({**OBSERVATION, "id": f"obs-{i}"})
    assert all(t is not None for t in texts[:_SEEN_TRIAL])
    assert all(t is None for t in texts[_SEEN_TRIAL:])
    texts.clear()
    for i in range(_SEEN_RETRY):
        validator.validate({**OBSERVATION, "id": f"again-{i}"})
    assert any(t is not None for t in texts)  # a new trial
