"""rvmoney24b: date index bounds at the calendar's edges (moneyfix24's indexing.py edit), stored and
searched through real HTTP on both backends (SQLite and mongomock): no 500, the answers of the
UTC convention the index states (values without zone read as UTC), and ordinary bounds unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.repository.indexing import date_range
from engine.settings import Settings

LOINC = "http://loinc.org"


@pytest.fixture(params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def http(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    site = tmp_path / "site"
    site.mkdir()
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        client = TestClient(create_app(eng))
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("his", "system/*.cruds")
        yield client


def obs(oid: str, when: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "718-7"}]}, "effectiveDateTime": when,
            "subject": {"reference": "Patient/p1"}, "performer": [{"reference": "Organization/o1"}]}


def ids(http: TestClient, **params: str) -> list[str]:
    res = http.get("/fhir/Observation", params=params)
    assert res.status_code == 200, res.text
    return sorted(e["resource"]["id"] for e in res.json().get("entry", ()))


WHEN = {
    "late": "9999-12-31T20:00:00-05:00",    # 10000-01-01T01:00Z
    "lastday": "9999-12-31",
    "year": "9999",
    "early": "0001-01-01T05:00:00+08:00",   # 0000-12-31T21:00Z
    "firstday": "0001-01-01",
    "plain": "2026-03-05T10:00:00+08:00",
}


def test_extreme_dates_are_stored_and_searched(http: TestClient) -> None:
    for res in (http.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "female"}),
                http.put("/fhir/Organization/o1", json={"resourceType": "Organization", "id": "o1", "name": "A"})):
        assert res.status_code in (200, 201), res.text
    for oid, when in WHEN.items():
        res = http.put(f"/fhir/Observation/{oid}", json=obs(oid, when))
        assert res.status_code in (200, 201), res.text
    assert ids(http, date="ge9999-06-01") == ["lastday", "late", "year"]
    assert ids(http, date="gt9999-12-31T19:00:00-05:00") == ["late"]  # 00:00Z of 10000: the day and year end there
    assert ids(http, date="ge9999-12-31T20:00:00-05:00") == ["late"]  # the others end before 10000-01-01T01:00Z
    assert ids(http, date="lt9999-12-31T20:00:00-05:00") == ["early", "firstday", "lastday", "plain", "year"]
    assert ids(http, date="9999") == ["lastday", "year"]  # the year in UTC; 'late' is 10000 in UTC
    assert ids(http, date="lt0001-01-02") == ["early", "firstday"]
    assert ids(http, date="le0001-01-01T05:00:00+08:00") == ["early"]  # before year 1 in UTC
    assert ids(http, date="2026-03-05") == ["plain"]
    res = http.get("/fhir/Observation", params={"_sort": "date"})
    assert res.status_code == 200, res.text
    assert [e["resource"]["id"] for e in res.json()["entry"]][:1] == ["early"]
    assert [e["resource"]["id"] for e in res.json()["entry"]][-1:] == ["late"]


def test_ordinary_bounds_are_the_datetime_arithmetic() -> None:
    """Guard: the year's bound in seconds equals the next year's start; offsets as before."""
    from datetime import UTC, datetime
    for y in (1970, 2024, 2026, 2100, 9998):
        assert date_range(str(y)) == (datetime(y, 1, 1, tzinfo=UTC).timestamp(),
                                      datetime(y + 1, 1, 1, tzinfo=UTC).timestamp())
    lo, hi = date_range("2026-03-05T10:00:00+08:00")
    assert (lo, hi) == (datetime(2026, 3, 5, 2, tzinfo=UTC).timestamp(), datetime(2026, 3, 5, 2, 0, 1, tzinfo=UTC).timestamp())
    lo, _ = date_range("9999-12-31T20:00:00-05:00")
    assert lo == datetime(9999, 12, 31, 20, tzinfo=UTC).timestamp() + 5 * 3600
