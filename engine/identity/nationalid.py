"""The national resident ID (居民身份证号) on a Patient: find it, validate it, read birth date and sex.

The number is recognised by identifier type ``NNCHN`` (HL7 table 0203, "National Person
Identifier where the xxx is the ISO table 3166 3-character (alphabetic) country code"), whatever
the identifier system. ``stdnum.cn.ric`` checks length, the ISO 7064 MOD 11-2 check character,
the birth date and the birth place; the 17th digit is odd for men and even for women.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

NNCHN = "NNCHN"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


class InvalidNationalId(ValueError):
    """The value under an NNCHN identifier is not a valid resident ID number."""


@dataclass(frozen=True)
class NationalId:
    number: str
    birth_date: dt.date
    gender: str  # FHIR administrative gender: male | female


def is_national_id(identifier: dict[str, Any]) -> bool:
    return any(c.get("code") == NNCHN for c in (identifier.get("type") or {}).get("coding", []))


def raw_national_id(patient: dict[str, Any]) -> str | None:
    """The value of the Patient's (first) NNCHN identifier, unvalidated; None when absent."""
    for ident in patient.get("identifier", []):
        if is_national_id(ident) and ident.get("value"):
            return str(ident["value"])
    return None


def parse(value: str) -> NationalId:
    try:
        number = ric.validate(value)
    except ValidationError as exc:
        raise InvalidNationalId(f"national resident ID is not valid: {exc.message}") from None
    gender = "male" if int(number[16]) % 2 else "female"
    return NationalId(number, ric.get_birth_date(number), gender)
