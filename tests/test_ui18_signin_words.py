"""Staff sign-in says a throttle's wait as a person reads it (eighteenth round, ui18).

One address's failures past its limit wait until the oldest ages out, up to 15 minutes: the page
said "请 900 秒后再试". It now says minutes (rounded up) from a minute on, seconds below it. Fails on
the round's start."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff_session import ADDRESS_LIMIT
from tests.test_staff_signin import clock, sign_in  # noqa: F401 - the clock fixture

__all__ = ["clock"]


def test_a_long_wait_is_said_in_minutes(engine: Any, clock: Any) -> None:  # noqa: F811
    sprayer = TestClient(create_app(engine), client=("203.0.113.5", 40000))
    for i in range(ADDRESS_LIMIT):
        assert sign_in(sprayer, f"user{i}", "guess-" + "x" * 8, "000000").status_code == 401
    clock.now += 0.5  # a real clock moves between attempts: 899.5 s left, Retry-After 900 (15 minutes rounded up)
    r = sign_in(sprayer, "someone.else", "guess-" + "x" * 8, "000000")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 840
    assert "请 15 分钟后再试" in r.text and "wait 15 minutes" in r.text, r.text
    assert "秒" not in r.text.split("尝试次数过多")[1].split("。")[0]
