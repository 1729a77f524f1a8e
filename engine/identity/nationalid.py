"""The national resident ID (居民身份证号): the one place that decides whether a number is valid.

Every caller — the HL7 converters at ingest, the master patient index, resident sign-in,
recognition, the APIs — asks this module, so a number accepted at one door is never refused at
another (a resident whose records are accepted but never linked would never be recognised).

The rule (GB 11643-1999):

* 18 characters: 17 digits and a check character (digit or ``X``); spaces are ignored and ``x``
  is read as ``X``;
* the check character is the ISO 7064 MOD 11-2 checksum of the first 17 digits — it is
  **authoritative**: a number that passes it was issued, whatever else we know;
* characters 7-14 are a real calendar date, not in the future;
* characters 1-6 are the administrative division where the number was issued. An unknown code
  is **not** an error, only ``region_known = False`` (callers may warn): divisions are created,
  renamed and abolished (阜宁县 320923 dates from 1983), yet the numbers issued under old or
  later codes stay valid for life.

The 17th digit is odd for men and even for women. The national ID is recognised on a Patient by
identifier type ``NNCHN`` (HL7 table 0203), whatever the identifier system.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

NNCHN = "NNCHN"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # ISO 7064 MOD 11-2 weights, 7 9 10 5 8 4 ...


class InvalidNationalId(ValueError):
    """The value is not a valid resident ID number; ``problem`` says why, for an error message."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"national resident ID is not valid: {problem}")


@dataclass(frozen=True)
class NationalId:
    number: str  # the canonical 18 characters (upper-case X)
    birth_date: dt.date
    gender: str  # FHIR administrative gender: male | female
    region_known: bool  # characters 1-6 name a division known for the birth year (a warning only)

    @property
    def region(self) -> str:
        return self.number[:6]


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def compact(value: str) -> str:
    return "".join(str(value).split()).upper()


@lru_cache(maxsize=8192)
def parse(value: str) -> NationalId:
    """The validated number, or ``InvalidNationalId`` naming the problem.

    Cached: every message of a patient repeats the number, and the area-code lookup is slow.
    """
    number = compact(value)
    if len(number) != 18:
        raise InvalidNationalId(f"it must be 18 characters, not {len(number)}")
    if not number.isascii():
        # str.isdigit() holds for full-width (０-９) and other Unicode digits, and int() reads them:
        # such a number passed the check and was kept in a form no ASCII copy of it matches
        raise InvalidNationalId("it must be written in ASCII digits and X (not full-width or other digits)")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise InvalidNationalId("it must be 17 digits and a digit or X")
    expected = check_character(number[:17])
    if number[17] != expected:
        raise InvalidNationalId(f"the check character (ISO 7064 MOD 11-2) should be {expected}")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidNationalId(f"the birth date {number[6:14]} in it is not a date") from None
    if birth > dt.date.today():
        raise InvalidNationalId(f"the birth date {birth.isoformat()} in it is in the future")
    gender = "male" if int(number[16]) % 2 else "female"
    return NationalId(number, birth, gender, _region_known(number[:14]))


def valid_number(value: str | None) -> str | None:
    """The canonical number when ``value`` is a valid resident ID, else None."""
    if not value:
        return None
    try:
        return parse(value).number
    except InvalidNationalId:
        return None


@lru_cache(maxsize=4096)
def _region_known(area_and_birth_date: str) -> bool:
    """Does python-stdnum's division table know the area code for the birth date? (≈0.3 ms: cached) An entry its
    table holds without a county (320905-320933 and others for 1962) makes ``get_birth_place`` raise ``KeyError``:
    not known either -- it had made every message stating such a number AE 207 "conversion failed: KeyError"
    (forty-first round, a40b41)."""
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError

    try:
        ric.get_birth_place(area_and_birth_date + "0000")
    except (ValidationError, KeyError):
        return False
    return True


def is_national_id(identifier: dict[str, Any], type_code: str = NNCHN) -> bool:
    return any(c.get("code") == type_code for c in (identifier.get("type") or {}).get("coding", []))


# on an identifier a merge of two records carried from the record merged away onto the survivor (HL7 v2.5.1 3.3.40,
# ``adapters.convert.persons._carried``), naming that record (``valueReference``): huren's mark, never a client's
CARRIED_FROM_EXT = "urn:huren:StructureDefinition:carried-from"


def carried(identifier: dict[str, Any]) -> bool:
    """Did a merge carry this identifier from the record merged away (``CARRIED_FROM_EXT``)?"""
    return any(isinstance(e, dict) and e.get("url") == CARRIED_FROM_EXT for e in identifier.get("extension") or ())


def raw_national_id(patient: dict[str, Any] | None) -> str | None:
    """The value of the Patient's (first) NNCHN identifier, unvalidated; None when absent. Not one a merge carried
    from the record merged away (``carried``): that number is the merged record's, which the patient index already
    follows along the merge chain (``merged_key``) -- counted again as the survivor's own, a survivor an operator had
    linked by hand left its person as "renumbered", and a numberless survivor joined the number's person, so an
    unlink (A37) had more to undo than the merge did (id40)."""
    for ident in (patient or {}).get("identifier", []):
        if isinstance(ident, dict) and is_national_id(ident) and ident.get("value") and not carried(ident):
            return str(ident["value"])
    return None


def patient_number(patient: dict[str, Any] | None) -> str | None:
    """The Patient's (first) valid national resident ID in canonical form, or None — never guessed; not one a merge
    carried (``raw_national_id``)."""
    for ident in (patient or {}).get("identifier", []):
        if isinstance(ident, dict) and is_national_id(ident) and not carried(ident):
            number = valid_number(ident.get("value"))
            if number:
                return number
    return None
