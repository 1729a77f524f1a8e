"""schemathesis against the real app's ``/openapi.json``: no route answers a 5xx, whatever it is sent
(``tests/api_fuzz.py``). This file: the generic FHIR routes (``/fhir/{rtype}...``); the others in
``test_api_fuzz_more.py``, so that two workers share the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# ``tests.api_fuzz`` (schemathesis, Hypothesis: ~1.5 s of CPU to import) is imported by the fixture and the tests,
# not at collection: every xdist worker collects this file, one runs it (forty-sixth round, suite46d).


@pytest.fixture(scope="module", name="api")
def _api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], dict[str, str]]]:
    from tests.api_fuzz import api

    yield from api(tmp_path_factory)


def test_the_groups_cover_every_operation(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    """Each operation of the document is in exactly one group, so the two files fuzz every route."""
    from tests.api_fuzz import GROUPS, group_of, operations_of

    paths = {op.path for op in operations_of(api[0])}
    assert {group_of(path) for path in paths} == set(GROUPS)
    assert "/fhir/{rtype}/{rid}" in paths and "/fhir/Patient/$match" in paths and "/auth/token" in paths


def test_no_generic_fhir_route_answers_5xx(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    from tests.api_fuzz import no_route_answers_5xx

    no_route_answers_5xx(api, {"fhir-resource"})
