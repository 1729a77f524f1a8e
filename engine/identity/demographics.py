"""The consistency checks that guard every automatic link: name, sex, birth date and the resident ID number.

No fuzzy logic on purpose: values are compared after normalisation -- a name as a person reads it
(``name_of``: Unicode NFKC, name separators and whitespace dropped, case folded) -- and a mismatch is a
conflict for an operator to resolve, never a guess.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from engine.identity.nationalid import NationalId, is_national_id, parse, valid_number

# the separators Chinese registrations write between the parts of a minority or foreign name, in every form a
# keyboard or an ID-card reader gives them, after NFKC (which already folds U+FF0E, U+FE52 to ".", U+FF0D to "-",
# U+FF65 to U+30FB, U+0387 to U+00B7): middle dot, katakana middle dot, bullet, hyphenation point, bullet and dot
# operators, full stop, and the hyphen-like marks -- dropped with the whitespace (U+3000 too), as a reader does
# not read them; and two that Python counts as letters (``str.isalpha``): the Arabic tatweel U+0640 (a stretch of
# the joining line, no letter: Uyghur names are written in Arabic script) and U+A78F, the sinological dot some
# input methods give for the middle dot (nfix40)
_SEPARATORS = "\\s\u00b7\u30fb\u2022\u2027\u2219\u22c5\u2e31\u318d.\u2010-\u2015\u2212\ufe63\u0640\ua78f-"
# ... and the Tibetan tsheg U+0F0B (NFKC folds the non-breaking U+0F0C to it) where it ends the name: it closes a
# syllable, and a name is written with its last one or without it (བཀྲ་ཤིས་ is བཀྲ་ཤིས). Not inside the name, a
# space after it too: there it parts syllables a reader reads apart (ག་ཡང is not གཡང), and with the space dropped
# it is what still parts them (བཀྲ་ཤིས་ བདེ་ལེགས is བཀྲ་ཤིས་བདེ་ལེགས)
_UNREAD = re.compile(f"[{_SEPARATORS}]+|\u0f0b+(?=[{_SEPARATORS}]*$)")


def fold_name(text: str) -> str:
    """A name as a person reading it compares it: Unicode NFKC (full-width Latin ``ＷＡＮＧ`` is ``WANG``, the
    full-width full stop a full stop), the name separators and whitespace (``_UNREAD``) dropped, case folded.
    阿依古丽·买买提 (the ID card's U+00B7), 阿依古丽．买买提, 阿依古丽・买买提 and 阿依古丽 买买提 are one name (rv39f
    MED 2: with a mistyped day they were "name and day differ", two people). Not pinyin against hanzi nor any
    other likeness: what differs in letters a person reads differs (no fuzzy logic).

    The invisible format characters (Unicode category Cf: the zero-width space U+200B, the soft hyphen U+00AD,
    the zero-width (non-)joiners U+200C/U+200D, the byte-order mark U+FEFF, the bidi marks, the word joiner) are
    dropped too: an input method or a copy from a web page or a document leaves them in a name, and a person
    reads 李\u200b娜 as 李娜 -- the record's result with a mistyped day was refused as another person's
    (rv40a LOW 7). Nothing dropped is a letter a person reads, so two names that differ in one still differ.

    A name of letters alone (``str.isalpha``: 张三, the common path), neither of them the tatweel nor U+A78F (two
    ``in`` on literals: +380 instructions a name under callgrind; a global tuple's two items cost +540), has
    nothing to drop and skips the pattern; the format characters are looked for (one ``unicodedata.category`` a
    character) only in a name the pattern leaves holding something other than letters."""
    text = unicodedata.normalize("NFKC", text)
    if text.isalpha() and "\u0640" not in text and "\ua78f" not in text:  # (the two letters ``_UNREAD`` drops)
        return text.casefold()
    folded = _UNREAD.sub("", text)
    if not folded.isalpha():  # a format character, a digit, an apostrophe...: the format characters dropped first
        folded = _UNREAD.sub("", "".join(c for c in text if unicodedata.category(c) != "Cf"))
    return folded.casefold()


def name_of(patient: dict[str, Any]) -> str | None:
    """The official name (else the first) as compared (``fold_name``); None: no name."""
    names = patient.get("name") or []
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if not chosen:
        return None
    text = chosen.get("text") or "".join([chosen.get("family", ""), *chosen.get("given", [])])
    return fold_name(text) or None


def same_name(a: str, b: str) -> bool:
    """Two names ``name_of`` gave the same? Folded again where they differ: the patient index keeps the
    demographics of each entry (``mpi``: ``demo``), and an entry written before ``fold_name`` dropped the
    separators holds 阿依古丽·买买提 with its dot -- the same name as the dotless one read now. (Equal strings,
    the common path, answer without folding.)"""
    return a == b or fold_name(a) == fold_name(b)


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


def conflicts_with_own_ids(patient: dict[str, Any]) -> list[str]:
    """What of a Patient version contradicts a VALID resident ID number it carries (``conflicts_with_id`` of each,
    read by ``nationalid.parse``): asked of the record as a registration leaves it when the number is one the
    registration did not state but the merge keeps beside it (``adapters.convert.persons._against_kept_number``;
    rv39d MED 4). Sex "unknown"/"other" is no contradiction (``demographics`` reads male/female only: PID-8 U is
    not compared, the same as ``common._check_demographics``)."""
    demo = demographics(patient)
    return [wrong for number in valid_id_numbers(patient) for wrong in conflicts_with_id(demo, parse(number))]


def conflicts_between(a: dict[str, str | None], b: dict[str, str | None]) -> list[str]:
    """Fields present in both records that disagree."""
    out = []
    for field in ("name", "gender", "birthDate"):
        va, vb = a.get(field), b.get(field)
        if va and vb and (not same_day(va, vb) if field == "birthDate" else
                          not same_name(va, vb) if field == "name" else va != vb):
            out.append(field)
    return out


def contradicts_all(stored: dict[str, Any], incoming: dict[str, Any], registered: dict[str, Any] | None = None) -> bool:
    """Do two Patient versions name two people? Three readings, any is enough:

    - the name differs and so does the sex, both stating male or female (``conflicts_between``), whatever
      the birth date -- a sex the side's own valid ID number (its birth date the record's day, or for a stored record
      stating no day the number as its registrar stated it, ``registered``: ``own_id_numbers``) contradicts not
      counted (``sex_disowned``);
    - the name differs and so does a birth date both state to the day, whatever the sex;
    - the name differs and so do the resident ID numbers both carry valid (``valid_id_numbers``: no number in
      common), whatever the sex and birth date.

    The guard of a message filed under a stored record (``adapters.convert.persons``), and the one owner of
    "two people" every caller of the identity files reads.

    Why the name always: one field differing alone is no reason (a typo corrected, a name in another
    script, a birth date or a sex corrected alone), and a name corrected with a sex or a day of birth in one
    message is the registering application's A08/A31 restatement (accepted with a warning), not a
    result's. Why name AND sex, whatever the birth date: sex stated male/female on both sides is rarely
    corrected together with the name, and twins of the other sex share the birth date -- an agreeing day
    had let a boy's result be filed under his twin sister (rv39b HIGH 1). A sex recorded "unknown" (a newborn
    registered 张三之子, then named) is not compared (``demographics``). Why name AND a full birth date,
    whatever the sex: a newborn's result sent under the mother's own MRN (another name, another birth date,
    often the same sex) was filed under the mother (rv38j). A birth date known only to the year or the
    month is no conflict (``same_day``) and no reason here. Why name AND the ID numbers: same-sex twins
    share everything else, and each has her own number; a result naming the other twin and her number was
    filed under the first (rv39b HIGH 2). An ID number both carry and that AGREES is no reason to overrule a
    name and a day that differ: a newborn is often registered under the mother's number. Why not all
    three fields: many county LIS send an age, not PID-7, and a missing birth date made a result naming
    another name and sex under a stored record pass (rvidentity32 finding 4).

    The name is compared first and decides alone when it agrees (the common path: a returning patient's
    result): the ID numbers are read only where the name differs.

    ``registered``: ``stored`` as the application that registered it last stated it (a version its message wrote),
    read by the caller from the store where it could decide (``numbers_against_sex``; ``adapters.convert.persons``'
    refusal path): the evidence whose a number is when the record states no day. None: no such evidence."""
    a, b = demographics(stored), demographics(incoming)
    if not (a["name"] and b["name"] and not same_name(a["name"], b["name"])):
        return False
    conflicts = conflicts_between(a, b)
    if "gender" in conflicts and not (sex_disowned(stored, a, registered) or sex_disowned(incoming, b)):
        return True
    if "birthDate" in conflicts and to_the_day(a["birthDate"]) and to_the_day(b["birthDate"]):
        return True
    return id_numbers_differ(stored, incoming)


def sex_disowned(patient: dict[str, Any], demo: dict[str, str | None], registered: dict[str, Any] | None = None) -> bool:
    """Does the Patient's OWN valid resident ID number (``own_id_numbers``) encode another sex than the one it
    states? Then its sex is no evidence of another person in ``contradicts_all``: the number, checked by its digit,
    says who the record is, and the stated sex is the error -- a FHIR client that set the stored sex to female over
    a man's record and his number made the HIS's next A01 with a corrected name (same MRN, same number, sex M) a
    refusal as another person (rv39h LOW; id40). The other readings still hold (a full birth date, the ID numbers).
    Only the record's own number disowns its sex: a newborn registered under the mother's number (sex U, no PID-7),
    then recorded male, had his sex discounted by her number, and his twin sister's result under his MRN (another
    name, sex F) was filed as his (rv40g HIGH 2; idfix40b). ``registered``: the record as its registrar stated it
    (``own_id_numbers``)."""
    gender = demo["gender"]
    return gender is not None and any(parse(number).gender != gender
                                      for number in own_id_numbers(patient, demo, registered))


def own_id_numbers(patient: dict[str, Any], demo: dict[str, str | None],
                   registered: dict[str, Any] | None = None) -> frozenset[str]:
    """The valid resident ID numbers (``valid_id_numbers``) that are the Patient's OWN. A number is not always its
    holder's: a newborn is registered under the mother's number (DOMAIN.md, identity facts; ``contradicts_all``), and
    no other field of the number can tell whose it is -- the sex is the very thing asked, the region is the mother's
    too. Two kinds of evidence, and the discount this grants overrules the person guard, so each is positive:

    - the record states a day of birth: the numbers whose encoded birth date (GB 11643: characters 7-14,
      ``nationalid.parse``) is that day. A year or a month (an age a county LIS sends) agrees with every day in it
      (``same_day``) and says nothing of whose the number is.
    - the record states no day (none, or a year or a month): the numbers its registrar stated as the record's own
      (``registered``: the record as the application that registered it last stated it, a version its message
      wrote; read by the caller) -- the registration carries the number and states the sex the number encodes
      (male or female, not unknown), nothing it states of the birth date contradicting the number
      (``conflicts_with_id``), under the name the record still bears (``same_name``); and what the record itself
      states of the date is the number's. A man the HIS registered with his number, his sex and no PID-7, whose sex
      a FHIR client then set to female, is still the man his number says (rv40i LOW 2: the HIS's A01 correcting
      his name was refused as another person). A newborn the registrar put under the mother's number stated no sex
      (U) or not hers, so the registration owns it nothing (rv40g HIGH 2 holds: the boy recorded male by the ward,
      his twin sister's result refused); a record renamed since (the ward's correction of a registration that mixed
      up twins) is no longer what the registrar stated. Without ``registered`` such a record owns none."""
    day = demo["birthDate"]
    if to_the_day(day):
        return frozenset(n for n in valid_id_numbers(patient) if parse(n).birth_date.isoformat() == day[:10])
    if registered is None:
        return frozenset()
    said = demographics(registered)
    if said["gender"] is None or not (said["name"] and demo["name"] and same_name(said["name"], demo["name"])):
        return frozenset()
    return frozenset(n for n in valid_id_numbers(patient) & valid_id_numbers(registered)
                     if not conflicts_with_id(said, nid := parse(n))
                     and not (day and not same_day(day, nid.birth_date.isoformat())))


def numbers_against_sex(patient: dict[str, Any], demo: dict[str, str | None]) -> bool:
    """Could the record's registrar's word (``own_id_numbers``' ``registered``) disown its sex -- the record states a
    sex and no day, and carries a valid number encoding the other sex and agreeing with what it states of the date?
    Asked before the store is read for that word (``adapters.convert.persons``: only then is it read)."""
    day, gender = demo["birthDate"], demo["gender"]
    return gender is not None and not to_the_day(day) and any(
        nid.gender != gender and not (day and not same_day(day, nid.birth_date.isoformat()))
        for nid in map(parse, valid_id_numbers(patient)))


def id_numbers_differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two Patient versions each carry a valid resident ID number (``valid_id_numbers``) and none in common --
    two people's numbers? A record without one, or with an invalid one, says nothing (``contradicts_all``'s third
    reading; the warning that names what differs asks it too)."""
    numbers = valid_id_numbers(a), valid_id_numbers(b)
    return bool(numbers[0] and numbers[1]) and not numbers[0] & numbers[1]


def id_numbers(patient: dict[str, Any]) -> frozenset[str]:
    """The resident ID numbers (NNCHN) a Patient carries, each canonical when valid (``nationalid.valid_number``,
    the one owner of validity), else as sent (trimmed, upper case): what ``adapters.convert.persons`` compares
    to join two records positively (a record carrying one the other does not is not positively its person)
    and to find another person under a remembered number."""
    return frozenset(valid_number(str(i["value"])) or str(i["value"]).strip().upper()
                     for i in patient.get("identifier") or () if isinstance(i, dict) and is_national_id(i) and i.get("value"))


def valid_id_numbers(patient: dict[str, Any]) -> frozenset[str]:
    """The VALID resident ID numbers a Patient carries, canonical (``nationalid.valid_number``): what tells two
    people apart (``contradicts_all``). A number that fails its check digit or names no real region proves
    nothing -- a mistyped number is not another person."""
    return frozenset(n for i in patient.get("identifier") or ()
                     if isinstance(i, dict) and is_national_id(i) and (n := valid_number(str(i.get("value") or ""))))


def to_the_day(date: str | None) -> bool:
    """A FHIR date that names a day (``YYYY-MM-DD``), not only a year or a month: a year alone -- many county
    LIS derive it from an age -- agrees with every day of it (``same_day``) and contradicts none."""
    return bool(date) and len(date) >= 10


def a_woman(patient: dict[str, Any]) -> bool:
    """Is the Patient known to be a woman: its sex stated female (and no valid ID number it carries encoding male),
    or no sex stated and every valid ID number it carries encoding female (the 17th digit even: ``nationalid.parse``,
    the one reading of the number)? Asked of the record a newborn's PID-21 names as its mother (``engine.merge_rules``,
    rooming-in): PID-21 is the MOTHER's identifier (v2.5.1 3.4.1.21), and only a woman's inpatient visit is the one a
    newborn is filed under -- positive agreement, not "not known to be a man": a patient of sex unknown with no ID
    number named in PID-21 (a father, say) was taken for the mother (rv39d LOW 7; before, ``a_man``: rv38e LOW 6)."""
    gender = demographics(patient)["gender"]
    sexes = {parse(number).gender for number in valid_id_numbers(patient)}
    if gender == "female":
        return "male" not in sexes
    return gender is None and sexes == {"female"}
