"""schemathesis against the real app's ``/openapi.json``: no route answers a 5xx, whatever it is sent
(``tests/api_fuzz.py``). This file: the FHIR operations and Bundles, and every route outside ``/fhir``
(the generic FHIR routes are in ``test_api_fuzz.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

# ``tests.api_fuzz`` (schemathesis, Hypothesis) is imported when this file runs, not at collection (suite46d,
# as in ``test_api_fuzz.py``).


@pytest.fixture(scope="module", name="api")
def _api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], dict[str, str]]]:
    from tests.api_fuzz import api

    yield from api(tmp_path_factory)


def test_no_fhir_operation_answers_5xx(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    from tests.api_fuzz import no_route_answers_5xx

    no_route_answers_5xx(api, {"fhir-other"})


def test_no_other_route_answers_5xx(api: tuple[Any, dict[str, str], dict[str, str]]) -> None:
    from tests.api_fuzz import no_route_answers_5xx

    no_route_answers_5xx(api, {"other"})
