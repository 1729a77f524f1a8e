"""A result is never a repeat of one dated after it.

Two members each result a blood count for one person on one day, A's in the morning and B's in the
afternoon, stored in that order: B's is a repeat of A's (one flag). A later result can only be a
prior of what comes after it; the re-decision of repeats when a prior arrives (fourteenth round)
had also flagged A's morning result against B's afternoon one, so each pair was flagged twice and
the earlier hospital's result was "not payable" for a test done after it. The ui14 chart test
(twenty such pairs, "1 条" a day) had shown it as "2 条"."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_world import A, B, World, cbc
from tests.test_ufix12_flag_paging import person


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


def _flags(engine: Engine) -> list[tuple[str, str]]:
    """(repeat, prior) of every duplicate-test DetectedIssue, as report ids."""
    out = []
    for issue in engine.repository.search("DetectedIssue", {}).resources:
        refs = [i["reference"] for i in issue.get("implicated", [])]
        out.append((refs[0], refs[1]))
    return sorted(out)


def test_the_earlier_result_is_never_flagged_against_a_later_one(engine: Engine) -> None:
    """Stored in the order they were done. (Stored the other way round -- the morning's result a
    late arrival -- the morning's is still flagged against the afternoon's, as before the
    re-decision: results carry their day, not their hour; a limit named in the README.)"""
    w = World(engine)
    pa, pb = w.patient(A, person(0), mrn="A-0"), w.patient(B, person(0), mrn="B-0")
    morning = w.report(A, pa, cbc(A), "2026-03-01T09:00:00+08:00").resource["id"]
    afternoon = w.report(B, pb, cbc(B), "2026-03-01T15:00:00+08:00").resource["id"]
    assert _flags(engine) == [(f"DiagnosticReport/{afternoon}", f"DiagnosticReport/{morning}")]
