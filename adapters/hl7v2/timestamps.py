"""HL7 v2 DT/DTM/TS values → FHIR ``date`` / ``dateTime`` / ``instant`` strings.

FHIR requires a time zone offset whenever a time is present; HL7 senders in China usually omit it.
A value without an offset is therefore read in the sending institution's configured time zone
(``institutions.yaml`` ``timezone``, default Asia/Shanghai) and written with that zone's offset on
that date. The precision the sender used is kept (a year stays a year), as FHIR allows for
``dateTime``; ``instant`` needs seconds, so lower precisions are not instants.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
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
