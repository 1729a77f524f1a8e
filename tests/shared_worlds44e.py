"""suite44e: what a module sharing ``tests.module_store.module_eng`` still needs for its tests that keep a store of
their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine


@pytest.fixture
def own_http(eng: Engine, client_token: Any) -> Iterator[TestClient]:
    """``tests.test_fhir_api.http`` under a name of its own: the system client of a test's own engine (``eng``), for a
    module whose ``http`` is the module's (``module_eng_http``) but whose test sends what it cannot send under names
    of its own (a fixed HL7 feed of one patient, read back by its record number)."""
    with TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + client_token(eng)
        yield client
