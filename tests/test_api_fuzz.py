"""schemathesis against the real app's ``/openapi.json``: no route answers a 5xx, whatever it is sent
(``tests/api_fuzz.py``). This file: the generic FHIR routes (``/fhir/{rtype}...``); the others in
``test_api_fuzz_more.py``, so that two workers share the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_fuzz import GROUPS, api, group_of, no_route_answers_5xx, operations_of


@pytest.fixture(scope="module", name="api")
def _api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], dict[str, str]]]:
    yield from api(tmp_path_factory)


def test_the_groups_cover_every_operation(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    """Each operation of the document is in exactly one group, so the two files fuzz every route."""
    paths = {op.path for op in operations_of(api[0])}
    assert {group_of(path) for path in paths} == set(GROUPS)
    assert "/fhir/{rtype}/{rid}" in paths and "/fhir/Patient/$match" in paths and "/auth/token" in paths


def test_no_generic_fhir_route_answers_5xx(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    no_route_answers_5xx(api, {"fhir-resource"})
