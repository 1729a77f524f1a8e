"""The consistency checks that guard every automatic link: name, sex and birth date.

No fuzzy logic on purpose: values are compared after trivial normalisation (whitespace, case),
and a mismatch is a conflict for an operator to resolve, never a guess.
"""

from __future__ import annotations

from typing import Any

from engine.identity.nationalid import NationalId, is_national_id, parse, valid_number


def name_of(patient: dict[str, Any]) -> str | None:
    names = patient.get("name") or []
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if not chosen:
        return None
    text = chosen.get("text") or "".join([chosen.get("family", ""), *chosen.get("given", [])])
    norm = "".join(text.split()).casefold()
    return norm or None


def demographics(patient: dict[str, Any]) -> dict[str, str | None]:
    gender = patient.get("gender")
    return {
        "name": name_of(patient),
        "gender": gender if gender in ("male", "female") else None,
        "birthDate": (patient.get("birthDate") or None),
    }


def same_day(a: str, b: str) -> bool:
    """Do two FHIR dates (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``) agree, each at its own precision?

    Why not equality: a sender may know only the year or the month of a birth (HL7 DTM allows
    ``1985``), and ``1985`` says nothing against ``1985-04-12``; such a record was refused a link
    to the person's other records as a conflict, and the ID number's own date was not checked
    against it at all (a year that contradicts the number passed)."""
    a, b = a[:10], b[:10]
    return a.startswith(b) or b.startswith(a)


def conflicts_with_id(demo: dict[str, str | None], nid: NationalId) -> list[str]:
    """Fields of the record that contradict what the ID number itself encodes."""
    out = []
    if demo["birthDate"] and not same_day(demo["birthDate"], nid.birth_date.isoformat()):
        out.append(f"birthDate {demo['birthDate']} differs from the ID number's {nid.birth_date.isoformat()}")
    if demo["gender"] and demo["gender"] != nid.gender:
        out.append(f"gender {demo['gender']} differs from the ID number's {nid.gender}")
    return out


def conflicts_between(a: dict[str, str | None], b: dict[str, str | None]) -> list[str]:
    """Fields present in both records that disagree."""
    out = []
    for field in ("name", "gender", "birthDate"):
        va, vb = a.get(field), b.get(field)
        if va and vb and (not same_day(va, vb) if field == "birthDate" else va != vb):
            out.append(field)
    return out


def contradicts_all(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Do two Patient versions name two people? Two readings, either is enough:

    - every one of name, sex and birth date that both state differs (``conflicts_between``), and name
      and sex are among them;
    - the name differs and so does a birth date both state to the day, whatever the sex.

    The guard of a message filed under a stored record (``adapters.convert.persons``).

    Why two fields at least: one field differing is no reason (a typo corrected, a name in another
    script, a birth date corrected alone). Why name AND sex: sex stated male/female on both sides is
    rarely corrected together with the name, and a sex recorded "unknown" (a newborn registered
    张三之子, then named) is not compared (``demographics``). Why name AND a full birth date, whatever
    the sex: a newborn's result sent under the mother's own MRN (another name, another birth date,
    often the same sex) was filed under the mother (rv38j); a name and a day of birth corrected in one
    message is the registering application's A08/A31 restatement (accepted with a warning), not a
    result's. A birth date known only to the year or the month is no conflict (``same_day``) and no
    reason here. Why not all three: many county LIS send an age, not PID-7, and a missing birth date
    made a result naming another name and sex under a stored record pass (rvidentity32 finding 4). A
    birth date both state and that agrees is a reason to believe the record is the same person: no
    refusal then."""
    a, b = demographics(stored), demographics(incoming)
    compared = {f for f in ("name", "gender", "birthDate") if a.get(f) and b.get(f)}
    conflicts = set(conflicts_between(a, b))
    if {"name", "gender"} <= compared and conflicts == compared:
        return True
    return {"name", "birthDate"} <= conflicts and all(to_the_day(d["birthDate"]) for d in (a, b))


def to_the_day(date: str | None) -> bool:
    """A FHIR date that names a day (``YYYY-MM-DD``), not only a year or a month: a year alone -- many county
    LIS derive it from an age -- agrees with every day of it (``same_day``) and contradicts none."""
    return bool(date) and len(date) >= 10


def a_man(patient: dict[str, Any]) -> bool:
    """Is the Patient a man: its sex stated male, or a valid ID number it carries encoding male (the 17th digit odd:
    ``nationalid.parse``, the one reading of the number)? Asked of the record a newborn's PID-21 names as its
    mother (``engine.merge_rules``, rooming-in): PID-21 is the MOTHER's identifier (v2.5.1 3.4.1.21), and a man's
    inpatient visit is not the one a newborn is filed under -- by his MRN, or by his ID number (rv38e LOW 6)."""
    if demographics(patient)["gender"] == "male":
        return True
    for ident in patient.get("identifier") or ():
        number = valid_number(ident.get("value")) if isinstance(ident, dict) and is_national_id(ident) else None
        if number is not None and parse(number).gender == "male":
            return True
    return False
