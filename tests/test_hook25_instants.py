"""Guards for the recognition hook's clock texts and person pass-over (twenty-fifth round, hook25).

``engine.recognition.state.now`` / ``instant`` now write their UTC text from the clock's integer
and the last second's text, not through ``datetime.isoformat`` (~10 us each, four a lab message).
What that could get wrong is the text R98 and the rate compare: its width, its zone, its second
and microsecond. Sent as a hospital feed sends (``POST /hl7v2`` over FastAPI's app, the real
repository and SQLite store): a blood count of a new resident, the same resident's second order
the same day (the Patient's link-version group passed over by ``_same_persons``, which now takes
the number ``person_of`` just read; retested) and a third two days later (recognisable, flagged);
every instant the hook stored lies between the clock read before and after the message, in
``datetime``'s own text.

The feed and the clock-bounds test pass on the base too (they guard, they fix nothing); the
second's-text test reads the new helper (``state._second``); the full stored output of a varied
feed is compared with the base's by ``tests/test_perfrecog21_same_bytes.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.ingest import oru_lab, returning_lab
from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition import state
from engine.settings import Settings
from tests.feed_calls import post_hl7v2

INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def eng(settings: Settings) -> Iterator[Engine]:
    engine = Engine(settings)
    yield engine
    engine.close()


@pytest.fixture
def http(eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as client:
        yield client


def _clock(timespec: str) -> str:
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _send(eng: Engine, http: TestClient, body: bytes) -> tuple[str, str, str, str]:
    before = (_clock("microseconds"), _clock("seconds"))
    ack = post_hl7v2(eng, http, body).text
    after = (_clock("microseconds"), _clock("seconds"))
    assert "MSA|AA" in ack or "MSA|CA" in ack, ack
    return before[0], after[0], before[1], after[1]


def test_stored_instants_are_the_clock_in_datetime_text(eng: Engine, http: TestClient) -> None:
    rec = eng.recognition
    lo, hi, lo_s, hi_s = _send(eng, http, oru_lab(7))
    checks = rec.checks.coll.find({})
    entries = rec.index.coll.find({})
    assert len(checks) == 1 and len(entries) == 2  # the order; the blood count and the ALT
    check = checks[0]
    assert INSTANT.match(check["placed"]) and lo <= check["placed"] <= hi, (lo, check["placed"], hi)
    assert SECOND.match(check["checked"]) and lo_s <= check["checked"] <= hi_s, (lo_s, check["checked"], hi_s)
    for entry in entries:
        assert INSTANT.match(entry["held"]) and lo <= entry["held"] <= hi, (lo, entry["held"], hi)
    # the same resident's second order the same day (the bench's returning resident: the
    # Patient's link-version group is passed over, ``_same_persons``), its results taken at the
    # order's time: no prior result, retested
    lo2, hi2, _, _ = _send(eng, http, returning_lab(7))
    assert hi <= lo2
    second = next(d for d in rec.checks.coll.find({}) if d["_id"] != check["_id"])
    assert lo2 <= second["placed"] <= hi2 and second["person"] == check["person"]
    assert second["recognisable"] == [] and second["outcome"] == "retested", second
    assert rec.flags.coll.find({}) == []
    # and a third two days later: the first blood count is recognisable, the repeat flagged
    lo3, hi3, _, _ = _send(eng, http, returning_lab(7).replace(b"LAB", b"LBB").replace(b"ORD", b"ODR")
                           .replace(b"20261101", b"20261103"))
    third = next(d for d in rec.checks.coll.find({}) if d["_id"] not in (check["_id"], second["_id"]))
    assert lo3 <= third["placed"] <= hi3 and third["person"] == check["person"]
    assert third["recognisable"] and third["outcome"] == "duplicate", third
    flags: list[dict[str, Any]] = rec.flags.coll.find({})
    assert len(flags) == 2 and {f["status"] for f in flags} == {"flagged"}
    assert all(f["person"] == check["person"] and SECOND.match(f["identified"]) for f in flags), flags
    held = sorted(e["held"] for e in rec.index.coll.find({}))
    assert len(held) == 6 and all(INSTANT.match(h) for h in held)
    assert lo2 <= held[2] <= hi2 and lo3 <= held[4] <= hi3


@pytest.mark.parametrize("sec", [0, 59, 86399, 951_782_400, 1_800_000_000, 253_402_300_799])
def test_second_text_is_datetimes(sec: int) -> None:
    """The second's text kept between calls is ``datetime``'s for that second (a leap day, the
    calendar's last second), and moving to another second writes that second's."""
    want = datetime.fromtimestamp(sec, UTC).isoformat(timespec="seconds").replace("+00:00", "")
    assert state._second(sec) == want
    assert state._second(sec) == want  # kept
    assert state._second(sec + 1 if sec < 253_402_300_799 else sec - 1) != want


def test_instant_and_now_between_datetime_reads() -> None:
    for _ in range(20_000):
        a, b, c = _clock("microseconds"), state.instant(), _clock("microseconds")
        assert INSTANT.match(b) and a <= b <= c, (a, b, c)
        a, b, c = _clock("seconds"), state.now(), _clock("seconds")
        assert SECOND.match(b) and a <= b <= c, (a, b, c)

