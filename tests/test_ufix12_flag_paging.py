"""Paging the duplicate-test flags over HTTP when many fall on one day, on each store.

The report had sorted by the repeated test's day alone; the flags of one day then had no order
(neither MongoDB nor SQLite promises one to ties), so ``_offset``/``_count`` pages could repeat a
flag and skip another. The order is now the day (newest first), then the flag id: the pages,
joined, are every flag once, in that order, whatever the page size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import A, B, World, cbc, national_id
from tests.test_reports_duplicates import bearer


def person(i: int) -> str:
    return national_id(f"3209231985{i // 28 + 1:02d}{i % 28 + 1:02d}0{i % 90 + 10:02d}")


@pytest.fixture
def county(backend_settings: Settings) -> Iterator[tuple[Engine, TestClient]]:
    """124 flags at B: 120 on one day (2026-03-03), 4 on the day after."""
    with Engine(backend_settings) as engine:
        w = World(engine)
        for i in range(124):
            w.report(A, w.patient(A, person(i)), cbc(A), "2026-03-01T09:00:00+08:00")
            day = "2026-03-03" if i < 120 else "2026-03-04"
            w.report(B, w.patient(B, person(i), mrn=f"B-{i}"), cbc(B), f"{day}T09:00:00+08:00")
        yield engine, TestClient(create_app(engine))


def pages(engine: Engine, http: TestClient, size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        res = http.get("/reports/duplicates", params={"_count": size, "_offset": len(rows)}, headers=bearer(engine))
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["totals"]["count"] == 124
        rows += body["rows"]
        if len(body["rows"]) < size:
            return rows


def test_pages_of_one_day_are_every_flag_once_in_a_fixed_order(county: tuple[Engine, TestClient]) -> None:
    engine, http = county
    stored = {f["_id"]: f["day"] for f in engine.recognition.flags.find({"status": {"$ne": "void"}})}
    assert len(stored) == 124 and sum(day == "2026-03-03" for day in stored.values()) == 120
    expected = sorted(stored, key=lambda i: (stored[i] != "2026-03-04", i))  # newest day, then id
    for size in (100, 7):
        ids = [r["id"] for r in pages(engine, http, size)]
        assert len(ids) == len(set(ids)) == 124, size  # none twice
        assert set(ids) == set(stored), size  # none missing
        assert ids == expected, size
