"""Names of a test's own in a store its module shares (forty-fourth round, suite44c).

A module whose tests share one engine (``tests.module_store``) gives each test, and each of its parameters, its own
order numbers, control IDs and patients, so no test reads what another wrote and the results are the same in any
order. ``own`` makes such a name from the test's parameters: the same test with other parameters gets another."""

from __future__ import annotations

import re

import pytest


def own(request: pytest.FixtureRequest, prefix: str) -> str:
    """``prefix`` followed by the test's parameter id (``sqlite-mongomock-text/plain`` ->
    ``PREFIX-SQLITE-MONGOMOCK-TEXT-PLAIN``) in capitals, digits and hyphens only, so it can stand in an HL7 field
    (ORC-2, MSH-10, PID-3) unescaped; ``prefix`` alone for a test without parameters."""
    spec = getattr(request.node, "callspec", None)
    if spec is None:
        return prefix
    return prefix + "-" + re.sub(r"[^A-Z0-9]+", "-", spec.id.upper()).strip("-")
