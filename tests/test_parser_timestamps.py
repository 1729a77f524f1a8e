"""HL7 DT/DTM → FHIR date/dateTime/instant, with the institution's time zone when no offset is sent."""

from __future__ import annotations

import pytest

from adapters.hl7v2.timestamps import (
    TimestampError,
    to_datetime,
    to_fhir_date,
    to_fhir_datetime,
    to_fhir_instant,
)


@pytest.mark.parametrize(
    ("hl7", "tz", "fhir"),
    [
        ("2025", "Asia/Shanghai", "2025"),
        ("202503", "Asia/Shanghai", "2025-03"),
        ("20250301", "Asia/Shanghai", "2025-03-01"),
        ("2025030108", "Asia/Shanghai", "2025-03-01T08:00:00+08:00"),
        ("202503010830", "Asia/Shanghai", "2025-03-01T08:30:00+08:00"),
        ("20250301083015", "Asia/Shanghai", "2025-03-01T08:30:15+08:00"),
        ("20250301083015.1234", "Asia/Shanghai", "2025-03-01T08:30:15.1234+08:00"),
        ("20250301083015+0100", "Asia/Shanghai", "2025-03-01T08:30:15+01:00"),
        ("20250301083015-0530", "Asia/Shanghai", "2025-03-01T08:30:15-05:30"),
        ("20250701120000", "Europe/Berlin", "2025-07-01T12:00:00+02:00"),  # DST taken from the date
        ("20250101120000", "Europe/Berlin", "2025-01-01T12:00:00+01:00"),
    ],
)
def test_dtm_to_fhir_datetime(hl7: str, tz: str, fhir: str) -> None:
    assert to_fhir_datetime(hl7, tz) == fhir


@pytest.mark.parametrize(
    "bad", ["", "abc", "2025-03-01", "20251301", "20250230", "2025030125", "20250301083015+2500", "2025030"]
)
def test_invalid_values_raise(bad: str) -> None:
    with pytest.raises(TimestampError):
        to_fhir_datetime(bad)


def test_date_and_instant() -> None:
    assert to_fhir_date("19880315") == "1988-03-15"
    assert to_fhir_date("1988031512") == "1988-03-15"
    assert to_fhir_instant("202503010830") is None
    assert to_fhir_instant("20250301083000") == "2025-03-01T08:30:00+08:00"
    assert to_datetime("20250301").isoformat() == "2025-03-01T00:00:00+08:00"


def test_years_before_1000_are_zero_padded() -> None:
    from adapters.hl7v2.timestamps import to_fhir_datetime

    assert to_fhir_datetime("09990101120000+0800").startswith("0999-01-01T12:00:00")
