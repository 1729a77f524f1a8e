"""rvmoney25: guard of money25's ``local_date`` memo (per zone, year text and offset tail).

The memo must give the day the conversion gives, whatever came before it in the process (a cached
answer of another zone, year or offset must never be reused), including after the 4,096 cap clears it.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.insurance import charges
from engine.insurance.charges import local_date

ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC")
TIMES = ("2026-03-08T01:30:00", "2026-03-08T07:30:00", "2026-11-01T05:30:00", "2026-12-31T16:30:00",
         "2026-06-30T23:59:59", "2027-01-01T00:00:00", "1990-04-15T00:30:00")
TAILS = ("+08:00", "-05:00", "-04:00", "+00:00", "Z", "+10:30", "+11:00", "")


def _expected(when: str, zone: str) -> str:
    if when[-1] == "Z" or when[-6] in "+-":
        return datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(ZoneInfo(zone)).date().isoformat()
    return when[:10]


def test_the_memo_answers_as_the_conversion_in_any_order() -> None:
    cases = [(t + tail, z) for t, tail, z in itertools.product(TIMES, TAILS, ZONES)]
    for rnd in range(3):  # cold, warm, and in reverse order
        for when, zone in (cases if rnd < 2 else cases[::-1]):
            assert local_date(when, zone) == _expected(when, zone), (when, zone, rnd)


def test_the_memo_cap_clears_and_still_answers() -> None:
    assert local_date("2026-07-01T23:30:00+08:00", "Asia/Shanghai") == "2026-07-01"  # remembered: as written
    # more keys than the cap, each answered right as it is filled. In an offset Shanghai never keeps
    # (+05:00) the memo's answer ("convert") is found at the first instant it checks; the zone's own
    # offset made each key check a whole year (~1.6 ms: 8 s of CPU for the 5,000, twenty-ninth round,
    # suitecut29) -- the cap and its clearing are the same code for either answer.
    for year in range(1000, 6000):
        when = f"{year:04d}-07-01T23:30:00+05:00"
        assert local_date(when, "Asia/Shanghai") == _expected(when, "Asia/Shanghai"), when
    assert len(charges._AS_WRITTEN) <= 4096  # cleared on the way (5,000 new keys)
    assert local_date("2026-07-01T23:30:00+08:00", "Asia/Shanghai") == "2026-07-01"
    assert local_date("2026-12-31T20:00:00-05:00", "Asia/Shanghai") == "2027-01-01"
    assert local_date("2026-07-01T23:30:00+08:00", "America/New_York") == "2026-07-01"
    assert local_date("2026-01-01T02:30:00+08:00", "America/New_York") == "2025-12-31"
