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


def _stated(text: str) -> tuple[str, datetime | None] | None:
    """A FHIR date/dateTime's calendar part -- with a time of day, the local date at the offset it was stated
    with -- and, with a time, its instant (one without an offset taken as UTC); None when empty or unreadable."""
    m = _FHIR_TIME.match(text.strip()) if text else None
    if m is None:
        return None
    if not m["time"]:
        return m["date"], None
    if len(m["date"]) != 10:
        return None
    try:
        moment = datetime.fromisoformat(m.group(0))
    except ValueError:
        return None
    return m["date"], moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compare_times(a: str, b: str) -> str | None:
    """How two FHIR dateTimes -- a report's exam time (OBR-7) as stored and as a message states it -- compare at
    the coarser precision of the two: "same", two times of day naming one instant however written (another
    offset, seconds or none); "within", a date, a month or a year and a time as fine or finer falling in it -- the
    finer one's local date at the offset it was stated with, the sender's own or the site's zone
    (``to_fhir_datetime``): the coarser names no instant, so this tells nothing more; "other", another time at
    that precision; None when either states none or is unreadable. A date is any time of that day where the exam
    was made, never its midnight UTC (review rv42a MED 4: a re-send stating the date alone was refused, or taken,
    by the hour of the stored exam)."""
    sa, sb = _stated(a), _stated(b)
    if sa is None or sb is None:
        return None
    if sa[1] is not None and sb[1] is not None:
        return "same" if sa[1] == sb[1] else "other"
    n = min(len(sa[0]), len(sb[0]))
    return "within" if sa[0][:n] == sb[0][:n] else "other"


def thinner(text: str, than: str) -> bool:
    """Whether ``text`` states the time ``than`` states at a coarser precision -- a date (or month, year) within
    which ``than`` falls where ``than`` is finer: it says nothing ``than`` does not (review rv42a MED 5: a re-send
    stating its exam time at the date alone erased the stated instant)."""
    st, sf = _stated(text), _stated(than)
    if st is None or sf is None or st[1] is not None:
        return False
    return (sf[1] is not None or len(sf[0]) > len(st[0])) and sf[0][: len(st[0])] == st[0]
