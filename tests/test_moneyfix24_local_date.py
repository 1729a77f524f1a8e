"""moneyfix24: ``charges.local_date`` skips the conversion when a time is written in its zone's own
offset of a year the zone keeps that offset throughout; the day must be the one the conversion gives,
in every case -- China's summer time of 1986-1991 (+09:00), New York's DST, a zone's year boundary,
half-hour and 45-minute offsets, UTC."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine.insurance.charges import local_date

ZONES = ("Asia/Shanghai", "America/New_York", "Asia/Kathmandu", "Asia/Kolkata", "UTC", "Australia/Lord_Howe")
OFFSETS = ("+08:00", "+09:00", "-05:00", "-04:00", "+05:45", "+05:30", "+10:30", "+11:00", "Z", "+00:00")


@pytest.mark.parametrize("zone", ZONES)
def test_the_day_is_the_converted_one(zone: str) -> None:
    tz = ZoneInfo(zone)
    checked = 0
    for year in (1988, 2026):
        for month, day in ((1, 1), (3, 8), (4, 17), (7, 1), (9, 11), (11, 1), (12, 31)):
            for hour, minute in ((0, 10), (1, 30), (14, 0), (15, 59), (20, 45), (23, 30)):
                for offset in OFFSETS:
                    text = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{offset}"
                    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                    assert local_date(text, zone) == moment.astimezone(tz).date().isoformat(), (text, zone)
                    checked += 1
    assert checked == 2 * 7 * 6 * len(OFFSETS)
