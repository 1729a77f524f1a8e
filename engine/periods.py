"""The days and months a report is asked for, read as sent or refused: one owner for every route and console that
takes them (the reports' and measures' ``from``/``to``/``periodStart``/``periodEnd``, the insurance reports' and
referral reports' months, the consoles' ``--from``/``--to``/``MONTH``).

Why (http42): four copies of "a month YYYY-MM" and one of "a day" read differently. The day took the first ten
characters and dropped the rest (``from=2026-01-01T20:00:00+08:00`` was the whole day under a 200); the indicators'
month took ``2026-1`` and ``2026- 1`` (``int`` of each part); the deduction list's and the referral reports' ``$``
matched before a final line break, so ``month=2026-01%0A`` passed -- and the deduction list's id is a hash of the
month as sent, another signed list for the same month -- and the referral's ``\\d`` took any script's digits. A value
is now exactly ``YYYY-MM-DD`` or ``YYYY-MM`` in ASCII digits, else a 400 naming the parameter (``BadRequest``; the
consoles print its words and exit 2).

Years 1900-9998 only (review rv42c MED 6): a report's day is an institution's local day, read as instants a zone's
offset and a day away -- ``0001-01-01`` at +08:00 is before the calendar's first instant, ``9999-12-31``'s next day
after its last, and ``0000-01`` no date at all: each had been a 500 on six report routes.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from engine.errors import BadRequest

# a day as the reports take it: YYYY-MM-DD in ASCII digits, nothing before or after (matched whole: ``fullmatch``)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# a month: YYYY-MM, the month 01-12
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# the years a report may name: a zone's offset, a day on either side and a baseline's years back stay inside
# Python's calendar (no record of a county's medical community is older than 1900)
_FIRST, _LAST = 1900, 9998


def _within(year: int, value: str, name: str) -> None:
    """Nothing when the reports can read a day of ``year`` as instants, else a 400 naming ``name``."""
    if not _FIRST <= year <= _LAST:
        raise BadRequest(f"{name}: {value!r} is outside the years a report covers ({_FIRST:04d}-01-01 to "
                         f"{_LAST:04d}-12-31) (超出可统计的年份)", expression=[name])


def parse_day(value: str | None, name: str) -> date | None:
    """The day ``value`` names (None when none is given): exactly ``YYYY-MM-DD``, a real date, else a 400 naming
    ``name``. ``date.fromisoformat`` alone would also take ``20260101`` and ``2026-W01-1``, which no page or document
    of huren's offers."""
    if not value:
        return None
    if _DAY.fullmatch(value) is None:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD): {value!r}", expression=[name])
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: not a date (YYYY-MM-DD): {value!r}", expression=[name]) from None
    _within(day.year, value, name)
    return day


def month_range(value: str | None, name: str = "month") -> tuple[date, date]:
    """The first and last day of the month ``value`` names: exactly ``YYYY-MM``, else a 400 naming ``name``."""
    found = _MONTH.fullmatch(value or "")
    if found is None:
        raise BadRequest(f"{name} must be a month YYYY-MM, got {value!r}", expression=[name])
    year, month = int(found[1]), int(found[2])
    _within(year, found[0], name)  # (0000-01, no date at all, refused the same way)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
