"""Deterministic ids: the fast RFC 4122 v5 construction equals the standard library's."""

from __future__ import annotations

import uuid

import pytest

from engine.repository.ids import NAMESPACE, deterministic_id


@pytest.mark.parametrize("key", ["ZY2025000101", "王建国", "a" * 300, "x\x1fy", "LIS20250310001^LIS|1"])
def test_same_as_uuid5(key: str) -> None:
    name = "\x1f".join(("FNXRMYY", "Observation", key))
    assert deterministic_id("fnxrmyy ", "Observation", f" {key} ".strip()) == str(uuid.uuid5(NAMESPACE, name))


def test_many_keys_match_and_differ() -> None:
    seen = set()
    for i in range(2000):
        rid = deterministic_id("FNZYY", "Patient", f"MZ{i:07d}")
        assert rid == str(uuid.uuid5(NAMESPACE, f"FNZYY\x1fPatient\x1fMZ{i:07d}"))
        seen.add(rid)
    assert len(seen) == 2000


def test_missing_parts_are_refused() -> None:
    with pytest.raises(ValueError):
        deterministic_id("", "Patient", "1")
