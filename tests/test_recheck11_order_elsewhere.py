"""A flag whose order was placed at one institution and whose test was performed at another (a
township's order run by the community's central lab) is re-decided when its prior changes.

The re-check found the flag by the prior it recorded, then looked for its test under the flag's
own institution -- the ordering one -- while tests are grouped under the institution that
performed them: nothing was found, and a repeat of a withdrawn result stayed "not payable" (a
reviewer's finding on recheck11). The same step serves a withdrawal, a result sent final again
and an ID correction.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from engine.engine import Engine
from tests.test_recognition_world import ALICE, A, B, C, World, cbc


def _day(n: int) -> str:
    return (date.today() - timedelta(days=n)).isoformat()


def _statuses(engine: Engine) -> list[str]:
    return [r["status"] for r in engine.recognition.flags.find({})]


def _again(resource: dict[str, Any], status: str) -> dict[str, Any]:
    return {**{k: v for k, v in resource.items() if k not in ("meta", "text")}, "status": status}


@pytest.mark.parametrize("lab", [B, C], ids=["performed-elsewhere", "performed-where-ordered"])
def test_a_flag_follows_its_prior_when_the_test_was_performed_elsewhere(engine: Engine, lab: str) -> None:
    w = World(engine)
    at_a, at_c = w.patient(A, ALICE), w.patient(C, ALICE)
    prior = w.report(A, at_a, cbc(A), _day(5) + "T10:00:00+08:00")
    order = w.order(C, at_c, cbc(C), _day(2) + "T08:00:00+08:00")
    w.report(lab, at_c, cbc(lab), _day(2) + "T10:00:00+08:00", order=order)
    assert _statuses(engine) == ["flagged"]

    w.repo.update(_again(prior.resource, "entered-in-error"))
    assert _statuses(engine) == ["void"]  # a repeat of nothing is not "not payable"

    w.repo.update(_again(prior.resource, "final"))
    assert _statuses(engine) == ["flagged"]  # the withdrawal taken back: the flag with it
