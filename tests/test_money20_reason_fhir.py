"""An order's re-test reason changed by its FHIR client before the result (twentieth round, money20):
real HTTP through FastAPI (``PUT /fhir/ServiceRequest``, the result, ``/reports/duplicates``), the real
store. A FHIR update states the whole order (``merge.yaml``: the api writer replaces); the
recognition's check row still added every reason a version stated to those recorded, so an order
signed R01 and updated to R07 (self-pay) before its result was paid as a justified R01."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_pay18_cds_choices import REASONS, report, result, sign, ward

__all__ = ["ward"]


def stating(*codes: str, text: str | None = None) -> list[dict[str, Any]]:
    return [{"coding": [{"system": REASONS, "code": c}], **({"text": text} if text else {})} for c in codes]


@pytest.mark.parametrize(("first", "then", "expected"), [
    (stating("R01"), stating("R07"), ("self_pay", "R07")),
    (stating("R06", text="术后出血需复查"), stating("R06"), ("flagged", None)),  # the text taken back
    (stating("R01"), stating("R01"), ("justified", "R01")),  # the same order again (the guard)
    (stating("R07"), stating("R04"), ("justified", "R04")),
], ids=["R01-to-R07", "R06-text-withdrawn", "unchanged", "R07-to-R04"])
def test_the_order_as_its_client_last_stated_it_before_the_result(
        engine: Any, ward: dict[str, Any], first: list[dict[str, Any]], then: list[dict[str, Any]],
        expected: tuple[str, str | None]) -> None:
    http, p = ward["http"], ward["alice_b"]
    sign(engine, http, p, "d5", reasonCode=first)
    sign(engine, http, p, "d5", reasonCode=then)
    result(engine, http, p, "d5", ward["world"])
    [row] = report(engine, http)["rows"]
    assert (row["status"], row["reason"]) == expected, row
