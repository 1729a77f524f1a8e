"""HL7 v2 DT/DTM/TS values → FHIR ``date`` / ``dateTime`` / ``instant`` strings.

FHIR requires a time zone offset whenever a time is present; HL7 senders in China usually omit it.
A value without an offset is therefore read in the sending institution's configured time zone
(``institutions.yaml`` ``timezone``, default Asia/Shanghai) and written with that zone's offset on
that date. The precision the sender used is kept (a year stays a year), as FHIR allows for
``dateTime``; ``instant`` needs seconds, so lower precisions are not instants.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.repository.indexing import date_range  # (the one reading of a FHIR time as instants: ``before``)
from mappings.site import DEFAULT_ZONE

_DTM = re.compile(
    r"(?P<y>[0-9]{4})(?:(?P<mo>[0-9]{2})(?:(?P<d>[0-9]{2})(?:(?P<h>[0-9]{2})(?:(?P<mi>[0-9]{2})(?:(?P<s>[0-9]{2})"
    r"(?:\.(?P<f>[0-9]{1,4}))?)?)?)?)?)?(?P<tz>[+-][0-9]{4})?\Z"
)


class TimestampError(ValueError):
    """A value that is not a valid HL7 DT/DTM."""


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _match(value: str) -> re.Match[str]:
    m = _DTM.match(value.strip())
    if not m:
        raise TimestampError(f"{value!r} is not an HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])")
    return m


@lru_cache(maxsize=4096)
def to_fhir_date(value: str) -> str:
    """HL7 DT (or the date part of a DTM) → FHIR date, keeping precision. Cached as
    ``to_fhir_datetime`` is: a patient's birth date is read twice a message (checked against the
    resident ID, then converted), and a feed's dates repeat (a refusal is not cached: it raises
    each time)."""
    m = _match(value)
    y, mo, d = m["y"], m["mo"], m["d"]
    try:
        if d:
            date(int(y), int(mo), int(d))
            return f"{y}-{mo}-{d}"
        if mo:
            if not 1 <= int(mo) <= 12:
                raise ValueError("month out of range")
            return f"{y}-{mo}"
    except ValueError as exc:
        raise TimestampError(f"{value!r}: {exc}") from None
    return y


@lru_cache(maxsize=4096)
def to_fhir_datetime(value: str, tz: str = DEFAULT_ZONE) -> str:
    """HL7 DTM → FHIR dateTime; a time without offset is read in ``tz``. Cached: a message
    repeats the same few timestamps (every OBX-14 of a panel)."""
    m = _match(value)
    if not m["h"]:
        return to_fhir_date(value)
    y, mo, d, h = int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"])
    mi = int(m["mi"] or 0)
    s = int(m["s"] or 0)
    frac = m["f"] or ""
    try:
        naive = datetime(y, mo, d, h, mi, s)
    except ValueError as exc:
        raise TimestampError(f"{value!r}: {exc}") from None
    if m["tz"]:
        sign = 1 if m["tz"][0] == "+" else -1
        oh, om = int(m["tz"][1:3]), int(m["tz"][3:5])
        if oh > 14 or om > 59:
            raise TimestampError(f"{value!r}: offset {m['tz']} out of range")
        offset = timedelta(hours=oh, minutes=om) * sign
    else:
        offset = naive.replace(tzinfo=zone(tz)).utcoffset() or timedelta(0)
    # formatted by hand: strftime("%Y") writes years before 1000 without padding (not valid FHIR)
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    if frac:
        text += "." + frac
    return text + _format_offset(offset)


@lru_cache(maxsize=4096)
def to_fhir_instant(value: str, tz: str = DEFAULT_ZONE) -> str | None:
    """HL7 DTM → FHIR instant, or None when the value is less precise than seconds (cached:
    a report's issue time and a message's time repeat)."""
    m = _match(value)
    if not m["s"]:
        return None
    return to_fhir_datetime(value, tz)


def to_datetime(value: str, tz: str = DEFAULT_ZONE) -> datetime:
    """HL7 DTM → aware ``datetime`` (missing parts default to the start of the period)."""
    m = _match(value)
    y = int(m["y"])
    mo = int(m["mo"] or 1)
    d = int(m["d"] or 1)
    h = int(m["h"] or 0)
    mi = int(m["mi"] or 0)
    s = int(m["s"] or 0)
    micro = int((m["f"] or "0").ljust(6, "0")[:6])
    try:
        naive = datetime(y, mo, d, h, mi, s, micro)
    except ValueError as exc:
        raise TimestampError(f"{value!r}: {exc}") from None
    if m["tz"]:
        sign = 1 if m["tz"][0] == "+" else -1
        offset = timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][3:5])) * sign
        return naive.replace(tzinfo=timezone(offset))
    return naive.replace(tzinfo=zone(tz))


def _format_offset(offset: timedelta) -> str:
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return f"{sign}{total // 3600:02d}:{total % 3600 // 60:02d}"


# a FHIR date / dateTime / instant as the converter writes it (``to_fhir_datetime``) or a client states it: its
# calendar part (year, month, day) and, with a time, the rest
_FHIR_TIME = re.compile(r"(?P<date>[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?)(?P<time>T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
                        r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?\Z")


def stated_digits(value: str) -> int | None:
    """The precision an HL7 DTM states, as the count of its calendar and clock digits: 4 a year, 6 a month, 8 a
    day, 10 an hour, 12 a minute, 14 a second, more with fractions; None when empty or unreadable. A FHIR dateTime
    cannot say an hour or a minute (``to_fhir_datetime`` writes ``:00`` seconds), so a converter stating OBR-7
    at those keeps this beside the value (``Said.digits``) for ``compare_times`` and ``thinner``."""
    m = _DTM.match(value.strip()) if value else None
    if m is None:
        return None
    return sum(len(m[g] or "") for g in ("y", "mo", "d", "h", "mi", "s", "f"))


class _Time:
    """A FHIR date/dateTime as stated: its digits ``YYYYMMDDhhmmss[f...]`` at the offset it was stated with (a
    date's, month's or year's alone: it has none), its instant where it has a time (one without an offset taken
    as UTC), and how many of the digits it states."""

    __slots__ = ("digits", "moment", "text")

    def __init__(self, text: str, moment: datetime | None, digits: int) -> None:
        self.text, self.moment, self.digits = text, moment, digits

    def at(self, other: _Time) -> str:
        """This time's digits at ``other``'s offset -- a time of day read where ``other`` was stated; at its own
        where ``other`` has none (a date is any time of that day where the exam was made, never its midnight
        UTC: review rv42a MED 4)."""
        if self.moment is None or other.moment is None:
            return self.text
        local = self.moment.astimezone(other.moment.tzinfo)
        return f"{local:%Y%m%d%H%M%S}{local.microsecond:06d}"


def _stated(text: str, digits: int | None = None) -> _Time | None:
    """A FHIR date/dateTime read (``_Time``), its precision at most ``digits`` (what the sender stated, where
    the FHIR text writes more: an hour or minute as ``:00`` seconds); None when empty or unreadable."""
    m = _FHIR_TIME.match(text.strip()) if text else None
    if m is None:
        return None
    day = m["date"].replace("-", "")
    if not m["time"]:
        try:  # (a month 13 or a 30 February names no time)
            date(int(day[:4]), int(day[4:6] or 1), int(day[6:] or 1))
        except ValueError:
            return None
        return _Time(day, None, min(len(day), digits or len(day)))
    if len(m["date"]) != 10:
        return None
    try:
        moment = datetime.fromisoformat(m.group(0))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    clock = m["time"][1:].split("Z")[0].split("+")[0].split("-")[0]
    written = 8 + len(clock.replace(":", "").replace(".", ""))
    return _Time(f"{moment:%Y%m%d%H%M%S}{moment.microsecond:06d}", moment, min(written, digits or written))


def compare_times(a: str, b: str, a_digits: int | None = None, b_digits: int | None = None) -> str | None:
    """How two FHIR dateTimes -- a report's exam time (OBR-7) as stored and as a message states it -- compare at
    the coarser precision of the two, whatever it is: a year, month, day, hour, minute, second or a fraction
    (``a_digits``/``b_digits``: the precision the sender stated where the FHIR text cannot say it, ``stated_digits``
    -- an OBR-7 of minutes is written with ``:00`` seconds). The finer is read at the coarser's offset (a time of
    day at the offset it was stated with, the sender's own or the site's zone: ``to_fhir_datetime``); a date,
    month or year has none, so the finer's own local date is compared. "same": they agree and both name the
    instant (seconds or finer); "within": the coarser, a minute or coarser, holds the finer -- it names no
    instant, so it tells nothing more (two dates alike are two exams of one day as well as one); "other":
    another time at that precision; None when either states none or is unreadable. One owner of "the same exam
    time at the precision stated" (the converter's ``_restated``/``_not_told``, the merge's ``_not_thinner``):
    below the day the sender's precision was lost and a minute restating its own second read as another exam
    (review rv42c HIGH 1, MED 1; forty-second round, acc42)."""
    sa, sb = _stated(a, a_digits), _stated(b, b_digits)
    if sa is None or sb is None:
        return None
    coarse, fine = (sa, sb) if sa.digits <= sb.digits else (sb, sa)
    n = coarse.digits
    if fine.at(coarse)[:n] != coarse.text[:n]:
        return "other"
    return "same" if n >= 14 else "within"


def thinner(text: str, than: str, digits: int | None = None, than_digits: int | None = None) -> bool:
    """Whether ``text`` (stated at ``digits`` where its FHIR text writes more: ``stated_digits``) states the time
    ``than`` states at a coarser precision -- a date, or an hour, a minute, within which ``than`` falls where
    ``than`` is finer (``than_digits``: its own, where known): it says nothing ``than`` does not (review rv42a
    MED 5: a re-send stating its exam time at the date alone erased the stated instant; rv42c MED 1: at the
    minute, the stored second)."""
    st, sf = _stated(text, digits), _stated(than, than_digits)
    return (st is not None and sf is not None and st.digits < sf.digits
            and compare_times(text, than, digits, than_digits) == "within")


def before(text: str, than: str, digits: int | None = None) -> bool:
    """Whether the time ``text`` states (at ``digits``, as ``compare_times``) is a day or more before ``than``: an
    exam observed (OBR-7) a day before its order was placed (ORC-9, ``authoredOn``) at the earliest -- not that
    order's (review rv42c HIGH 1). Compared as instants, each the whole span its precision states (a date alone:
    its day in any zone, +-14:00), with a day's margin: two applications' clocks differ by minutes, so an emergency
    exam stamped by the RIS a minute before the HIS's order time is that order's -- across midnight too, and
    whatever offset each states (review rv42f MED 1/2: 23:59 before a 00:01 order, and an exam stated in UTC, had
    been read by their local dates and refused)."""
    try:  # (``digits``: an hour or minute the FHIR text writes as :00 -- well inside the day's margin)
        exam_lo, exam_hi = date_range(text)
        order_lo, _ = date_range(than)
    except ValueError:
        return False
    latest = exam_lo if "T" in text else exam_hi + 14 * 3600  # (a time: its own instant; a date: its day's end)
    if "T" not in than:
        order_lo -= 14 * 3600
    return latest + 86400 <= order_lo
