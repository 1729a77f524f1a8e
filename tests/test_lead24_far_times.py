"""A time at the calendar's edge (lead, twenty-fourth round). FHIR R4 allows any dateTime from year 1 to
9999 with an offset; converted to an institution's zone, ``9999-12-31T20:00:00Z`` is year 10000 in Funing and
``0001-01-01T02:00:00+08:00`` is year 0 in UTC, neither of which Python's calendar holds. The insurance
reports met it first (moneyfix24: a 500 for the whole report); the recognition facts, the one owner of a
result's day at its institution (``engine.recognition.facts.local_day``), raised the same OverflowError.
Real path: a result of a recognition item PUT over HTTP through FastAPI into the real store, its hooks run."""

from __future__ import annotations

from typing import Any

import pytest

from engine.recognition.facts import local_day, local_instant
from engine.repository.ids import deterministic_id
from tests import test_moneyfix24_planned as planned
from tests.test_recognition_world import ALICE, A, lft

county = planned.county  # the fixture: an engine, its HTTP client (a system token) and a World


@pytest.mark.parametrize("when", ["9999-12-31T20:00:00Z", "0001-01-01T02:00:00+08:00"])
def test_a_result_at_the_calendars_edge_is_stored_not_a_500(county: Any, when: str) -> None:
    engine, http, world = county
    patient = world.patient(A, ALICE)
    rid = deterministic_id(A, "DiagnosticReport", "EDGE")
    body = {"resourceType": "DiagnosticReport", "id": rid, "status": "final", "code": lft(A),
            "subject": {"reference": patient}, "effectiveDateTime": when, "issued": "2026-03-01T08:00:00+08:00",
            "performer": [{"reference": world.organization(A)}]}
    r = http.put(f"/fhir/DiagnosticReport/{rid}", json=body)
    assert r.status_code in (200, 201), r.text
    assert http.get(f"/fhir/DiagnosticReport/{rid}").json()["effectiveDateTime"] == when


def test_the_day_at_the_edge_is_the_day_written() -> None:
    """Where the zone's day is past the calendar, the day written is the nearest one there is."""
    assert str(local_day("9999-12-31T20:00:00Z", "Asia/Shanghai")) == "9999-12-31"
    assert str(local_day("0001-01-01T02:00:00+08:00", "Asia/Shanghai")) == "0001-01-01"
    assert local_instant("2026-03-01T16:30:00Z", "Asia/Shanghai") == "2026-03-01T16:30:00.000000Z"
