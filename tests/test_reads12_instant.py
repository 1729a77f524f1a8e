"""``instant_of`` (twelfth round: the millisecond's text taken from a table, not formatted) states
the instant ``datetime`` does, at every millisecond of a second, across seconds, and when the same
millisecond is asked again (its kept text)."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.audit.events import instant_of


def _expected(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def test_every_millisecond_of_a_second_and_the_next() -> None:
    base = 1_764_590_400_000  # 2025-12-01T12:00:00.000Z
    for ms in [*range(base, base + 1000), base + 1000, base + 1001, base - 1, 0, 999, 1000]:
        assert instant_of(ms) == _expected(ms), ms
        assert instant_of(ms) == _expected(ms), ms  # the kept text of the last millisecond
    assert instant_of(base + 7) == "2025-12-01T12:00:00.007Z"
