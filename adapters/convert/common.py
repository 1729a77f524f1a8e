"""Resources every feed shares: the Patient (with the national resident ID checked against
PID-7/PID-8), the Encounter, coded items with the institution's code map, and the Provenance of
the message. The sending Organization, Practitioners and Locations live in ``actors`` (re-exported
here), which data type converters use without importing this module."""

from __future__ import annotations

import datetime as _dt
import itertools
from functools import lru_cache
from typing import Any

from adapters.convert import kept as kept_plans
from adapters.convert.actors import organization
from adapters.convert.by_identity import ByIdentity
from adapters.convert.context import Context, MemberNumber
from adapters.convert.datatypes import V2_0203, cwe, cx, universal_system, warn_unknown_systems
from adapters.convert.engine import apply_table, json_copy
from adapters.convert.persons import NATIONAL_ENTRIES, corrects_person
from adapters.convert.tables import coding_system, table, vocabulary
from adapters.hl7v2.control_id import keyed_control_id
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    DUPLICATE_KEY_IDENTIFIER,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    HL7Error,
)
from adapters.hl7v2.parser import Message, Repetition, Segment
from adapters.hl7v2.timestamps import TimestampError, to_datetime, to_fhir_date, zone
from engine.identity import nationalid
from engine.identity.nationalid import NationalId
from engine.messages import HL7V2_MESSAGE_SYSTEM
from engine.repository.ids import deterministic_id
from mappings.site import TAKEN_BACK_ON, Site, local_code_system, urn_part

Resource = dict[str, Any]

LOINC = "http://loinc.org"
RECOGNITION_ITEM = "urn:huren:recognition-item"
RECOGNITION_REASON = "urn:huren:recognition-reason"
DICOM_UID = "urn:dicom:uid"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def is_modality(coding: Any) -> bool:
    """Whether a coding of an order's or a report's ``code`` is its DICOM modality (``DCM``), which ``pacs`` adds
    beside the test of every imaging order and report: a property of the imaging message, never the test -- the
    RIS's head CT (CT009) and chest CT (CT020), and the emergency CT system's exams, all carry ``DCM CT``. Read as a
    test, "coded as the order's test" held for any report of the modality (rv43e HIGH 1, acsn43c) and the placer's
    XO changing head CT to chest CT kept both codings (acsn44). The one owner of that rule: the converter's
    ``_test_codings`` and the merge's "same test" (``engine.merge_rules._tests_of``, ``_code_pairs``, the order
    message's change of test) ask it (forty-fourth round, acsn44b; rv44b LOW 5)."""
    return isinstance(coding, dict) and coding.get("system") == DCM


# --- Patient -------------------------------------------------------------------------------------


# PID-3 / MRG-1 identifier types that are a record number (CX-5; empty: the sender's usual number),
# besides the institution's own ``mrn_type``: the institution's own when its assigning authority
# (CX-4) is absent or names the institution (``_authority``), else another system's (the LIS's own
# number) -- keyed apart
_MRN_KINDS = frozenset({"", "MR", "PI", "PT", "MRN"})
# the site -> institution code -> the names (casefolded) under which a CX-4 names it as the assigning
# authority (by the site: its institutions and its senders.yaml aliases are read together)
_OWN_NAMES: ByIdentity[Site, dict[str, frozenset[str]]] = ByIdentity(16)
# the site -> every name (casefolded) naming one of its institutions as a CX-4 -> that institution's code
_MEMBER_NAMES: ByIdentity[Site, dict[str, str]] = ByIdentity(16)
# the site -> the names (casefolded) several of its institutions declare (``_shared_names``)
_SHARED_NAMES: ByIdentity[Site, frozenset[str]] = ByIdentity(16)


def _is_national(kind: str, ctx: Context) -> bool:
    return kind in (ctx.institution.identifier_type, "NNCHN")


def _is_mrn(kind: str, ctx: Context) -> bool:
    return kind in _MRN_KINDS or kind == ctx.institution.mrn_type


def _own_names(inst: Any, site: Site) -> frozenset[str]:
    """The names that are the sending institution as a CX-4 assigning authority: its code (MSH-4),
    its name, the MSH-4 aliases the site gives it (``senders.yaml`` ``facility_aliases``) and its
    ``mrn_authorities`` (``institutions.yaml``), casefolded."""
    by_code = _OWN_NAMES.get(site)
    if by_code is None:
        by_code = _OWN_NAMES.put(site, {})
    names = by_code.get(inst.code)
    if names is None:
        aliases = ((site.tables.get("senders") or {}).get("facility_aliases") or {})
        names = by_code[inst.code] = (frozenset(
            str(n).strip().casefold() for n in (inst.code, inst.name, *inst.mrn_authorities,
                                                *(a for a, code in aliases.items() if str(code) == inst.code))
            if str(n).strip()))
    return names


def _authority(rep: Repetition, ctx: Context) -> str | None:
    return authority_of(rep, ctx.institution, ctx.site)


def authority_of(rep: Repetition, inst: Any, site: Site) -> str | None:
    """A record number's assigning authority (CX-4) as the one decision of whose number it is:
    None when CX-4 is empty or names the sending institution itself (``_own_names``; or its
    universal id is the institution's ``mrn_system``) -- the institution's own record number, its
    MRN; else the authority's name (CX-4.1, else its universal id CX-4.2), another system's number
    (a LIS's ``L77^^^LIS^PI``): the same value may be another person's MRN here (lead, thirty-first
    round: a woman's LIS result filed under a man's HIS record, AA)."""
    namespace, universal = rep.comp(4, 1).strip(), rep.comp(4, 2).strip()
    if not namespace and not universal:
        return None
    names = _own_names(inst, site)
    if namespace.casefold() in names or (universal and universal.casefold() in names):
        return None
    if universal and universal_system(universal, rep.comp(4, 3).strip()) == inst.mrn_system:
        return None
    members = _member_names(site)
    member = members.get(namespace.casefold()) or (members.get(universal.casefold()) if universal else None)
    return member or namespace or universal


def _member_names(site: Site) -> dict[str, str]:
    """Every name naming ONE member institution of the site as a CX-4 (``_own_names``: code, name,
    aliases, ``mrn_authorities``) -> its code: a number another member assigned is that member's
    MRN (``_authority_system``), still keyed apart from the sender's own (rvidentity32 finding 5).
    A name two members declare (``mrn_authorities: [HIS]`` at two hospitals whose HIS both write their
    vendor's name in CX-4, as the kept-apart warning advises each) is neither's: from a third sender it
    says which hospital's numbering it is no better than an unknown authority does, so it is read as
    one (keyed apart under the sender, held against no member's record, filed under no member's MRN
    system) -- not as whichever member the site file lists first (rvlast34 finding 2, memfix34). Each
    member's own messages still read it as their own (``authority_of`` asks ``_own_names`` first). A
    member's code is that member's whatever else claims it (codes are unique; site load refuses
    another member's code in ``mrn_authorities``)."""
    names = _MEMBER_NAMES.get(site)
    if names is None:
        claims, codes = _claims(site), {code.casefold(): code for code in site.institutions}
        names = {name: codes.get(name) or next(iter(held)) for name, held in claims.items()
                 if name in codes or len(held) == 1}
        _MEMBER_NAMES.put(site, names)
    return names


def _claims(site: Site) -> dict[str, set[str]]:
    """Every name (casefolded) naming a member institution as a CX-4 -> the codes of the members it names."""
    claims: dict[str, set[str]] = {}
    for code, member in site.institutions.items():
        for name in _own_names(member, site):
            claims.setdefault(name, set()).add(code)
    return claims


def _shared_names(site: Site) -> frozenset[str]:
    """The names (casefolded) several member institutions declare, none a member's code: read as no
    member's (``_member_names``) -- and warned of (``_shared_authority``)."""
    shared = _SHARED_NAMES.get(site)
    if shared is None:
        codes = {code.casefold() for code in site.institutions}
        shared = _SHARED_NAMES.put(site, frozenset(
            name for name, held in _claims(site).items() if len(held) > 1 and name not in codes))
    return shared


def _shared_authority(authority: str, pid: Segment, index: int, ctx: Context) -> None:
    """A W at PID-3.4 for a record number whose CX-4 is a name several member institutions declare
    (``mrn_authorities: [HIS]`` at two hospitals), from a third member (rvmemfix34 finding 2). Read as
    no member's, the number is kept apart under the sender (``_member_names``); a site that declared the
    name for one member first read the same PID-3 as that member's number then, and filed the sender's
    patient under a record keyed so: the next message keys another record. Not taken as that record:
    the earlier reading may be the very misreading the declaration corrects, and results filed under a
    record answering that member's record number would be found by it (rvmemfix34 finding 1). So the
    sender is told, on each such message, that the name says no institution (the operator links the two
    records if they are one patient's, the README's identity section)."""
    if authority.strip().casefold() not in _shared_names(ctx.site):
        return
    ctx.warn(pid.error(
        "PID-3.4 (assigning authority) is a name several member institutions declare as theirs "
        "(institutions.yaml mrn_authorities): whose record number it is cannot be told, so it is kept apart "
        "as another authority's number of this institution, under no member's record number (a record filed "
        "under this number before the site declared the name for several is not this one). Send the "
        "institution's code in PID-3.4", 3, 4, code=DUPLICATE_KEY_IDENTIFIER,
        repetition=index + 1 if index else None))


def authority_system(authority: str, ctx: Context) -> str:
    return _authority_system(authority, ctx.institution, ctx.site)


def _authority_system(authority: str, inst: Any, site: Site) -> str:
    """The Identifier.system of a record number another authority of the institution assigned
    (``_authority``): the institution's and the authority's, ``urn:huren:mrn:<code>:<authority>`` --
    never the institution's own ``mrn_system`` (``urn:huren:mrn:<code>``), and two institutions'
    LISs both named "LIS" stay apart. Another member institution's number (``authority_of`` answered
    its code) is under that institution's own ``mrn_system``: found by a search by its MRN system."""
    member = site.institutions.get(authority)
    if member is not None and member.code == authority:
        return member.mrn_system
    return apart_system(inst.code, authority)


def apart_system(code: str, authority: str) -> str:
    """``urn:huren:mrn:<code>:<authority>``: the system institution ``code`` keeps another authority's
    record numbers under, apart from its own MRN (identity32) -- and, once that member's own record of
    the number is another person, another member's number its record carries (``urn:huren:mrn:FNZYY:
    FNXRMYY``: ``persons._beside``, mfix34), so the number no longer answers the member's MRN system."""
    return f"urn:huren:mrn:{urn_part(code)}:{urn_part(authority)}"


# the site -> the MRN system (``Institution.mrn_system``) of each member institution -> its code
_MEMBER_SYSTEMS: ByIdentity[Site, dict[str, str]] = ByIdentity(16)


# the site -> institution code -> the systems the other member institutions keep its numbers under (``apart_system``)
_KEPT_BY_OTHERS: ByIdentity[Site, dict[str, tuple[str, ...]]] = ByIdentity(16)


def kept_by_others(ctx: Context) -> tuple[str, ...]:
    """``urn:huren:mrn:<other>:<this institution>`` of each other member institution: where a member's record keeps
    this institution's number once this institution's record of it is another person (mfix34, ownfix34) -- with
    this institution's own MRN system, the only systems its number's records can be under that the owner's
    put-back asks (``persons._rekeyed_back``, priv36: it had searched the bare number, every authority's)."""
    by_code = _KEPT_BY_OTHERS.get(ctx.site)
    if by_code is None:
        codes = sorted(ctx.site.institutions)
        by_code = _KEPT_BY_OTHERS.put(ctx.site, {code: tuple(apart_system(other, code) for other in codes
                                                              if other != code) for code in codes})
    return by_code.get(ctx.code, ())


def member_records(patient: Resource, ctx: Context) -> list[str]:
    """The "Patient/id" of each other member institution's own record of a number ``patient`` (the
    Patient a PID states) carries under that member's MRN system (``member_numbers``)."""
    return [member for member, _, _ in member_numbers(patient, ctx)]


def member_numbers(patient: Resource, ctx: Context) -> list[tuple[str, str, str]]:
    """(the "Patient/id" of the member's own record, the member's code, "system|value" as ``patient``
    carries it) of each number ``patient`` (the Patient a PID states) carries under another member
    institution's MRN system -- a CX-4 naming the member (``authority_of`` answered its code;
    ``_authority_system``: the member's ``mrn_system``), keyed in the member's own messages by the bare
    number. The one reading of "this number is another member's": ``persons.check_persons`` holds the
    PID's person against each (regfix33's decision, member33). The sender's own MRN is no member's
    number; a LIS's or any other authority's number names no record of the site."""
    systems = _MEMBER_SYSTEMS.get(ctx.site)
    if systems is None:
        systems = _MEMBER_SYSTEMS.put(ctx.site, {m.mrn_system: code for code, m in ctx.site.institutions.items()})
    out = []
    for ident in patient.get("identifier") or ():
        code = systems.get(ident.get("system") or "")
        if code is not None and code != ctx.code and ident.get("value"):
            out.append((f"Patient/{deterministic_id(code, 'Patient', str(ident['value']).strip())}", code,
                        f"{ident['system']}|{ident['value']}"))
    return out


def listed_member_records(seg: Segment, field_no: int, ctx: Context) -> list[str]:
    """``member_records`` of the record numbers a field listing one record's identifiers names (MRG-1):
    each repetition read as PID-3's is (``record_number_system``), so "another member's number" is
    one reading for a PID and a merge's prior record (identity34)."""
    return [member for member, _, _ in listed_member_numbers(seg, field_no, ctx)]


def listed_member_numbers(seg: Segment, field_no: int, ctx: Context) -> list[tuple[str, str, str]]:
    """``member_numbers`` of such a field: (the member's own record, the member's code, "system|value")."""
    identifiers = []
    for rep in seg.reps(field_no):
        value = rep.comp(1).strip()
        system = record_number_system(rep, ctx.institution, ctx.site) if value else None
        if system is not None:
            identifiers.append({"system": system, "value": value})
    return member_numbers({"identifier": identifiers}, ctx) if identifiers else []


def record_number_system(rep: Repetition, inst: Any, site: Site) -> str | None:
    """The Identifier.system a PID-3 repetition's value is stored under as a record number of ``inst``
    (a sender's institution): its ``mrn_system`` (the institution's own), the authority's system
    (another authority's number, ``authority_of``), or None when its type (CX-5) is no record number
    -- the converter's reading, for a lookup of the records a stored message names
    (``IdentityService.patients_named``)."""
    kind = rep.comp(5).strip().upper()
    if not (kind in _MRN_KINDS or kind == inst.mrn_type):
        return None
    authority = authority_of(rep, inst, site)
    return inst.mrn_system if authority is None else _authority_system(authority, inst, site)


def record_key(mrn: str, national: str, first: str, field_no: int = 3, other: str = "") -> str:
    """The institution-local key of a Patient record from what its identifier list holds: its MRN,
    else ``nid|<national ID>``, else ``auth|<authority>|<number>`` (``other``: a record number
    another authority assigned, ``_authority``), else ``id|<first id>`` (PID-3) or
    ``pid<n>|<first id>`` (PID-2/4), else "". The one reading of a record's key: a PID
    (``patient_key``) and a list naming a record (MRG-1, ``list_key``) key one record alike -- an A40
    or A45 whose MRG-1 named a record by its ID number alone keyed it ``id|`` while its PID had keyed
    it ``nid|`` (review of the twentieth round). A bare MRN holds no ``|`` (HL7's field separator;
    one sent escaped is refused, ``_record_number``), so no other key is an MRN's."""
    if mrn:
        return mrn
    if national:
        return f"nid|{national}"
    if other:
        return f"auth|{other}"
    if first:
        return f"id|{first}" if field_no == 3 else f"pid{field_no}|{first}"
    return ""


def list_key(seg: Segment, field_no: int, ctx: Context, strict: bool = True) -> tuple[str, str]:
    """A field listing one record's identifiers (MRG-1 prior patient, PID-21 mother's identifier)
    -> (the record's key, its MRN or ""), read as ``patient_key`` reads PID-3 (``record_key``); an
    invalid resident ID is an error at that field, as in PID-3 (MRG-1 names the record the message
    merges or moves: a mistyped number there is the sender's to correct, as in PID-3, even beside
    a valid MRN). ``strict=False`` (PID-21, read only for the newborn rule): an invalid ID is a
    warning and names nobody -- the field is the mother's, not the message's patient's, and must
    not refuse it. ("", "") when it holds none."""
    mrn = national = first = other = ""
    for index, rep in enumerate(seg.reps(field_no)):
        value = rep.comp(1).strip()
        if not value:
            continue
        kind = rep.comp(5).strip().upper()
        if _is_national(kind, ctx):
            try:
                number = _check_national_id(value, seg, field_no, index, ctx).number
            except HL7Error as err:
                if strict:
                    raise
                err.with_refusal = True  # (a refusal it leads to names it too: ``HL7Error.with_refusal``)
                ctx.warn(err)  # names nobody, not even as a plain id
                continue
            national = national or number
        elif not mrn and _is_mrn(kind, ctx):
            authority = _authority(rep, ctx)
            try:
                _record_number(value, seg, field_no, index)
            except HL7Error as err:
                if strict:
                    raise
                ctx.warn(err)  # names nobody
                continue
            if authority is None:
                mrn = value
            elif not other:
                other = f"{authority}|{value}"
        first = first or value
    return record_key(mrn, national, first, other=other), mrn


def patient_key(pid: Segment, ctx: Context) -> tuple[str, list[dict[str, Any]]]:
    """The institution-local key of the Patient (its MRN, else national ID) and its identifiers."""
    inst = ctx.institution
    identifiers: list[dict[str, Any]] = []
    mrn = ""
    national = ""
    foreign = ""  # a record number another authority assigned, as "<authority>|<number>"
    checked: NationalId | None = None
    # PID-3, else the v2.3 external (PID-2) or alternate (PID-4) ids: the first that holds a value;
    # a national resident ID is one wherever it stands, other ids stand in only as themselves
    field_no = next((n for n in (3, 2, 4) if any(r.comp(1).strip() for r in pid.reps(n))), 3)
    reps = pid.reps(field_no)
    for index, rep in enumerate(reps):
        value = rep.comp(1).strip()
        if not value:
            continue
        kind = rep.comp(5).strip().upper()
        if _is_national(kind, ctx):
            checked = _check_national_id(value, pid, field_no, index, ctx)
            national = checked.number
            identifiers.append(
                {
                    "use": "official",
                    "type": {
                        "coding": [
                            {
                                "system": V2_0203,
                                "code": "NNCHN",
                                "display": "National Person Identifier (China)",
                            }
                        ]
                    },
                    "system": table(ctx.site, "identifiers")["national_id_system"],
                    "value": national,
                }
            )
        elif field_no == 3 and _is_mrn(kind, ctx) and (authority := _authority(rep, ctx)) is not None:
            # another authority's record number (the LIS's own): an identifier as sent, under a
            # system of its own wherever it stands in the list, keying the record only when no MRN
            # or ID number does
            ident = cx(rep, {}, ctx)
            if ident:
                _shared_authority(authority, pid, index, ctx)
                ident["system"] = authority_system(authority, ctx)
                identifiers.append(ident)
                foreign = foreign or f"{authority}|{_record_number(value, pid, field_no, index)}"
        elif field_no == 3 and not mrn and _is_mrn(kind, ctx):
            mrn = _record_number(value, pid, field_no, index)
            identifiers.append(
                {
                    "use": "usual",
                    "type": {
                        "coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}]
                    },
                    "system": inst.mrn_system,
                    "value": value,
                    "assigner": {"display": inst.name},
                }
            )
        else:
            other = cx(rep, {}, ctx)
            if other:
                identifiers.append(other)
    if checked is not None:
        _check_demographics(checked, pid)
    # an id from PID-2/PID-4 is never taken for this institution's MRN (another system assigned
    # it, and the same value may be someone else's MRN here): keyed apart (``record_key``)
    first = "" if mrn or national else next((r.comp(1).strip() for r in reps if r.comp(1).strip()), "")
    key = record_key(mrn, national, first, field_no, foreign)
    if not key:
        # last resort, a person identifier of another kind (PID-19 SSN, PID-20 driver's licence;
        # pid_patient maps them as identifiers): filed apart from any MRN-keyed record, so at worst
        # one person has two records for the identity service to link, never two people one
        kind, value = next(((k, v) for k, v in (("ss", pid.value(19)), ("dl", pid.value(20))) if v.strip()),
                           ("", ""))
        if not value:
            raise pid.error(
                "PID-3 (patient identifier list) has no identifier, nor has PID-2, PID-4, PID-19 or PID-20",
                3, 1, code=REQUIRED_FIELD_MISSING
            )
        key = f"{kind}|{value.strip()}"
    return key, identifiers


def _record_number(value: str, seg: Segment, field_no: int, index: int) -> str:
    """A record number (an MRN, another authority's number) as a key takes it: one holding ``|``
    (sent escaped, ``\\F\\``) is refused -- the keys of other kinds are ``<kind>|...``
    (``record_key``), so ``auth\\F\\LIS\\F\\K77`` would be the LIS's record K77 (rvidentity32
    finding 7). No record numbering uses HL7's field separator."""
    if "|" in value:
        where = f"{seg.name}-{field_no}" + (f" repetition {index + 1}" if index else "")
        raise seg.error(f"{where}: record number {value!r} holds the field separator '|' (sent as \\F\\), "
                        "which no record number may", field_no, 1, code=DATA_TYPE_ERROR,
                        repetition=index + 1 if index else None)
    return value


def _check_national_id(value: str, pid: Segment, field_no: int, index: int, ctx: Context) -> NationalId:
    """An invalid resident ID (``engine.identity.nationalid`` decides) is an error (AE); an area
    code unknown for the birth year is only a warning, as it is for the patient index."""
    where = f"{pid.name}-{field_no}" + (f" repetition {index + 1}" if index else "")
    try:
        nid = nationalid.parse(value)
    except nationalid.InvalidNationalId as exc:
        raise pid.error(
            f"{where}: national resident ID {value!r} is invalid: {exc.problem}",
            field_no,
            1,
            code=DATA_TYPE_ERROR,
            repetition=index + 1 if index else None,
        ) from None
    if not nid.region_known:
        ctx.warn(
            pid.error(
                f"{where}: national resident ID area code {nid.region} is not a known "
                "administrative division for the birth year (the number is valid and is used)",
                field_no,
                1,
                code=DATA_TYPE_ERROR,
                repetition=index + 1 if index else None,
            )
        )
    return nid


def _is_date(text: str) -> bool:
    try:
        to_fhir_date(text)
    except (TimestampError, ValueError):
        return False
    return True


def _check_demographics(nid: NationalId, pid: Segment) -> None:
    """Birth date and sex encoded in the resident ID must agree with PID-7 and PID-8. A PID-7 that
    is no date at all is not compared: it is malformed, not contradictory, and the PID-7 rule
    leaves it out with a warning."""
    birth = pid.value(7)[:8]
    # the number's characters 7-14 are its birth date as YYYYMMDD, ASCII digits (``nationalid.parse``
    # made ``birth_date`` of them and refuses any other): the same text as formatting the date again,
    # without its cost (~9,100 -> ~1,700 instructions a new patient)
    if birth and _is_date(birth) and birth != nid.number[6:14][: len(birth)]:
        raise pid.error(
            f"PID-7 birth date {birth} disagrees with the national resident ID (born {nid.birth_date.isoformat()})",
            7,
            1,
            code=DATA_TYPE_ERROR,
        )
    sex = pid.value(8).strip().upper()
    id_sex = "M" if nid.gender == "male" else "F"
    if sex in ("1", "2"):
        sex = "M" if sex == "1" else "F"
    if sex in ("M", "F") and sex != id_sex:
        raise pid.error(
            f"PID-8 sex {sex} disagrees with the national resident ID (sequence digit {nid.number[16]} means "
            f"{nid.gender})",
            8,
            1,
            code=DATA_TYPE_ERROR,
        )


# (site, institution, delimiters, PID and PD1 as split into fields) -> (site, local key, the Patient
# converted from them, its display, the unmapped notes its conversion made), for ``patient``
# (True: met once)
_PATIENTS: dict[tuple[Any, ...], tuple[Any, str, Resource, str, tuple[tuple[str, str, str], ...]] | bool] = {}
_PATIENTS_MAX = 2048


def one_patient(msg: Message) -> Segment | None:
    """The message's one patient's PID, for a converter that files everything it carries under one
    patient. An ORU^R01 may carry several PATIENT_RESULT groups (the standard allows it, and a LIS
    sending a day's results in one message does): read for the first PID only, a second patient's
    order and results were filed under the first with AA (review of the nineteenth round). So a
    later PID naming another patient is refused (AE, ERR at that PID; the raw message kept for
    replay): one patient a message. A later PID naming the same patient -- the same identifiers
    (``_identifiers``), as a LIS repeating the PID in each result group sends it -- is the same
    patient, converted as before (refusing it turned an AA into an AE, its review). The templates
    that group PID themselves (A17's two patients, a merge's PID/MRG pairs, BAR's PATIENT groups)
    do not call this."""
    pids = msg.all("PID")
    if not pids:
        return None
    # the identifiers are compared only with a later PID's: a message of one PID (nearly every
    # one) does not read them (``tests/test_perfgrow26_same.py``)
    first = _identifiers(pids[0]) if len(pids) > 1 else ()
    for later in pids[1:]:
        if _identifiers(later) != first:
            raise later.error(
                f"{msg.msh.structure or msg.msh.message_type} message names another patient in PID "
                f"{later.sequence} ({len(pids)} PID segments); only one patient a message is "
                "converted -- the second would be filed under the first patient. Send each "
                "patient's orders and results in a message of its own",
                code=SEGMENT_SEQUENCE_ERROR)
        if (said := _differs(pids[0], later, _PARTICULARS)) is not None:
            # the same identifiers with another name, birth date or sex (a review of convlast19:
            # 李四's result filed under 张三): only the first PID is read
            raise later.error(
                f"PID {later.sequence} repeats the first PID's identifiers with another {said}; only "
                "the first PID is read, so its results would be filed under the first PID's patient. "
                "Repeat the PID as it is, or send each patient in a message of its own",
                code=SEGMENT_SEQUENCE_ERROR)
    structure = msg.msh.structure or ""
    visits = [] if structure in _PRIOR_VISITS else msg.all("PV1")
    if len(pids) > 1 and visits and visits[0].position > pids[1].position and _given(visits[0], 19):
        # the first group names no visit and a later one does: msg.get("PV1") links every
        # group's results to the later group's visit (a review of the lead's mend)
        raise visits[0].error(
            f"PV1 {visits[0].sequence} names a visit for a later patient group only; the message's "
            "one visit would be linked to the first group's orders and results too. Send each "
            "visit in a message of its own", code=SEGMENT_SEQUENCE_ERROR)
    for later in visits[1:]:
        if _differs(visits[0], later, (19,)) is not None:
            # only the first PV1 is read: a second group's other visit was linked to the first's
            raise later.error(
                f"PV1 {later.sequence} names another visit (PV1-19) than the first PV1; only the first "
                "visit is read, so its orders and results would be linked to the first visit. Send "
                "each visit in a message of its own", code=SEGMENT_SEQUENCE_ERROR)
    return pids[0]


# PID fields a repeated PID may leave empty but not state otherwise: name, birth date, sex
_PARTICULARS = (5, 7, 8)
_NAMES = {5: "name (PID-5)", 7: "birth date (PID-7)", 8: "sex (PID-8)", 19: "visit number (PV1-19)"}
# structures whose prior-result groups carry an earlier visit's PV1 (v2.5.1 ch. 4: OML^O21's
# PATIENT_VISIT_PRIOR and the like): their PV1s are not one visit repeated
_PRIOR_VISITS = frozenset({"OML_O21", "OML_O33", "OML_O35", "OMG_O19", "OMI_O23", "OMB_O27"})


def _given(segment: Segment, n: int) -> str:
    """Field ``n`` as given, trailing empty components, subcomponents and repetitions dropped."""
    enc = segment.enc
    return segment.field(n).strip().rstrip(enc.component + enc.repetition + enc.subcomponent + " ")


def _differs(first: Segment, later: Segment, fields: tuple[int, ...]) -> str | None:
    """The first of ``fields`` both segments give and give differently (what it is, for the error),
    or None: a later segment repeating less than the first (an empty field) says nothing else."""
    for n in fields:
        one, other = _given(first, n), _given(later, n)
        if one and other and one != other:
            return _NAMES.get(n, f"field {n}")
    return None


def _identifiers(pid: Segment) -> tuple[tuple[str, ...], ...]:
    """What names the patient in a PID, as ``patient_key`` reads it: the identifiers (id, assigning
    authority, type) of PID-3, else PID-2 or PID-4, in their order (the key takes the first MRN, so
    the same ids in another order could key another record: not the same), else PID-19/PID-20."""
    field_no = next((n for n in (3, 2, 4) if any(r.comp(1).strip() for r in pid.reps(n))), 3)
    ids = tuple((str(field_no), r.comp(1).strip(), r.comp(4).strip(), r.comp(5).strip().upper())
                for r in pid.reps(field_no) if r.comp(1).strip())
    return ids or (("19", pid.value(19).strip()), ("20", pid.value(20).strip()))


def _national_deleted(pid: Segment, ctx: Context) -> int | None:
    """Does PID-3 carry a repetition whose ID (CX-1) is HL7's explicit null ``""`` and whose identifier type (CX-5)
    is the resident ID number's (NNCHN), while no repetition states a number of that kind? HL7 v2.5 2.5.3: a
    component sent as ``""`` deletes the stored value, an empty one leaves it -- the registrar's one way over HL7 to
    take a wrong ID number off a record (a twin sister's, which passed the checks: same day and sex), since an A08
    stating the MRN alone is a thinner message and keeps it (``merge.yaml`` ``beside``; rv39d MED 5, idfix39). A
    corrected number stated beside it replaces the wrong one anyway: the ``""`` then says nothing more. Returns the
    repetition (1-based) of the null, else None. Whose word it is -- the record's registrar's alone -- is asked where
    the record is read (``persons._registrars_null``; rv40a MED 4)."""
    null = None
    for index, rep in enumerate(pid.reps(3)):
        if not _is_national(rep.comp(5).strip().upper(), ctx):
            continue
        if rep.comp(1).strip():
            return None
        if null is None and rep.raw.split(pid.enc.component, 1)[0] == '""':
            null = index + 1
    return null


def _others_nulled(pid: Segment, ctx: Context, reference: str) -> None:
    """PID-3 repetitions whose ID (CX-1) is HL7's explicit null ``""`` under another authority than the institution's
    own (CX-4 another member, a LIS...; not the ID number's: ``_national_deleted``): HL7 v2.5 2.5.3, delete that
    authority's value. What the sender listed itself under it on this record is its own to take back, and a
    registration stating its identifiers whole already drops it (``merge.yaml`` ``replace``; rvmfix34) -- the
    ``""`` says no more. A number it never stated is not its to delete: another member's own record of the
    number is that member's (never touched: a message changes only the records it names), and a number huren
    filed under the record as the institution's own (``filed-as-own``, remembered from another application's
    messages) stays (``beside``) -- the sender is told so, a W at that repetition (``Context.nulled``,
    ``persons._not_theirs_to_delete``), not refused: the rest of the registration is the sender's to state
    (id40)."""
    for index, rep in enumerate(pid.reps(3)):
        if rep.raw.split(pid.enc.component, 1)[0] != '""' or _is_national(rep.comp(5).strip().upper(), ctx):
            continue
        authority = authority_of(rep, ctx.institution, ctx.site)
        system = record_number_system(rep, ctx.institution, ctx.site)
        if authority is not None and system is not None:
            ctx.nulled.append((reference, system, authority, pid.sequence, index + 1))


def patient(pid: Segment, ctx: Context) -> tuple[str, dict[str, str]]:
    """PID → Patient; returns (local key, Reference). No PID field states whether the record is in
    use: ``active`` true is the converter's assumption (it fills only a Patient stored without it)
    unless the event states it -- a merge's survivor, an unlink (the message template's
    ``states_active``). So a late A08 naming a record a merge took out of use leaves it inactive,
    while a merge that makes that record the survivor brings it back."""
    key, ref = _patient_ref(pid, ctx)
    if not ctx.states_active:
        ctx.assumed(ctx.resources[ref["reference"]], "active")
    reference = ref["reference"]
    if (repetition := _national_deleted(pid, ctx)) is not None:
        ctx.delete(ctx.resources[reference], "identifier", NATIONAL_ENTRIES)
        ctx.id_nulled.append((reference, pid.sequence, repetition))
    _others_nulled(pid, ctx, reference)
    msh = ctx.message.msh
    if corrects_person(msh.message_type, msh.trigger_event):
        ctx.corrections.setdefault(reference, pid.sequence)
    elif reference not in ctx.persons:
        ctx.persons[reference] = pid.sequence
    if reference not in ctx.apart and (apart := kept_apart(ctx, key, pid.sequence)) is not None:
        ctx.apart[reference] = apart
    held = ctx.resources[reference]
    for member, code, number in member_numbers(held, ctx):
        value = number.partition("|")[2]
        named = MemberNumber(reference, member, "PID", pid.sequence, institution=code, number=number,
                             kept=f"{apart_system(ctx.code, code)}|{value}",
                             repetition=_repetition_of(pid, number, ctx))
        if named not in ctx.members:
            ctx.members.append(named)
    if len(ctx.site.institutions) > 1:  # another member may hold a record naming this one's number
        system = ctx.institution.mrn_system
        for ident in held.get("identifier") or ():
            if ident.get("system") == system and ident.get("value"):
                ctx.owns.append((reference, f"{system}|{ident['value']}", pid.sequence, kept_by_others(ctx)))
                break
    return key, ref


def _repetition_of(pid: Segment, token: str, ctx: Context) -> int | None:
    """The 1-based PID-3 repetition holding the record number ``token`` ("system|value", as
    ``patient_key`` read it), for ERR-2's ERL.4: a W or refusal about one of several identifiers says
    which one (rvmemfix34 finding 4). None for the first (ERL.4's default, as ``_record_number`` leaves
    it) or when none holds it."""
    system, _, value = token.partition("|")
    for index, rep in enumerate(pid.reps(3)):
        if rep.comp(1).strip() == value.strip() and record_number_system(rep, ctx.institution, ctx.site) == system:
            return index + 1 if index else None
    return None


def _patient_ref(pid: Segment, ctx: Context) -> tuple[str, dict[str, str]]:
    """PID → Patient; returns (local key, Reference).

    A patient's PID comes again and again, the same to the character (each of a visit's results,
    the ADT events of a stay), and the Patient is a function of its PID and PD1, the site's tables
    and the institution: a PID converted before without a warning gives a copy of that Patient
    (its unmapped notes reported again) instead of its ~30-40 us of field conversions, from the
    third time it comes."""
    pd1 = _following(pid, "PD1", ctx)
    enc = pid.enc
    memo = (id(ctx.site), ctx.code, enc.key, tuple(pid.fields), tuple(pd1.fields) if pd1 is not None else None)
    hit = _PATIENTS.get(memo)
    if type(hit) is tuple and hit[0] is ctx.site:
        _, key, kept, display, noted = hit
        for marker in noted:
            ctx.note_unmapped(*marker)
        organization(ctx)  # (as the conversion would: the sender first, for the Bundle's order)
        copy = json_copy(kept)
        ref = ctx.put(copy, key)
        kept_plans.mark(ctx, ref["reference"], copy, ("Patient", *memo))
        return key, ({**ref, "display": display} if display else ref)
    if hit is None:
        # a PID met once -- most of a day's patients in a feed of new visits -- costs its key:
        # whether its Patient could be kept is asked only when it comes a second time
        if len(_PATIENTS) >= _PATIENTS_MAX:
            _PATIENTS.clear()
        _PATIENTS[memo] = True
        key, ref, _res = _patient(pid, pd1, ctx)
        return key, ref
    warned, made, said = len(ctx.warnings), len(ctx.resources), ctx.said_count()
    with ctx.recording() as noted:
        key, ref, res = _patient(pid, pd1, ctx)
    # kept only when the Patient (and the sender) is all it made and all it names: a PD1 naming a
    # practitioner or a clinic makes those too -- or merges them into ones an earlier PID of the
    # same message made, so "made nothing new" is not enough: a copy would name a resource the
    # later message's Bundle lacks -- and a warning is the message's own
    if (len(ctx.warnings) == warned and ctx.said_count() == said  # a copy would not delete
            and all(r == ref["reference"] or r == ctx.organization
                    for r in itertools.islice(ctx.resources, made, None))
            and all(r == ctx.organization for r in _references(res))):
        if len(_PATIENTS) >= _PATIENTS_MAX:
            _PATIENTS.clear()
        _PATIENTS[memo] = (ctx.site, key, json_copy(res), ref.get("display", ""), tuple(noted))
    return key, ref


def _references(node: Any) -> list[str]:
    """Every ``reference`` a converted resource holds, however deep (what a kept copy would name)."""
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        for value in node.values():
            if isinstance(value, (dict, list)):
                found += _references(value)
        return found
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


def _patient(pid: Segment, pd1: Segment | None, ctx: Context) -> tuple[str, dict[str, str], Resource]:
    key, identifiers = patient_key(pid, ctx)
    keyed = len(identifiers)  # apply_table appends to the same list
    res: Resource = {"resourceType": "Patient", "identifier": identifiers, "active": True}
    apply_table("pid_patient", {"PID": pid}, ctx, res)
    if pd1 is not None:
        apply_table("pd1_patient", {"PD1": pd1}, ctx, res)
    if "deceasedDateTime" in res:
        res.pop("deceasedBoolean", None)
    if "multipleBirthInteger" in res:
        res.pop("multipleBirthBoolean", None)
    if len(res["identifier"]) > keyed:  # PID-2/PID-4 again when they stood in for PID-3
        seen: set[tuple[Any, Any]] = set()
        unique = []
        for ident in res["identifier"]:
            mark = (ident.get("system"), ident.get("value"))
            if mark not in seen:
                seen.add(mark)
                unique.append(ident)
        res["identifier"] = unique
    res["managingOrganization"] = organization(ctx)
    ref = ctx.put(res, key)
    names = res.get("name") or []
    display = names[0].get("text") or names[0].get("family", "") if names else ""
    if display:
        ref = {**ref, "display": display}
    return key, ref, res


def _following(seg: Segment, name: str, ctx: Context) -> Segment | None:
    """The ``name`` segment right after ``seg`` (PD1 belongs to the PID it follows)."""
    segments = ctx.message.segments
    pos = seg.position + 1
    return segments[pos] if pos < len(segments) and segments[pos].name == name else None


def patient_ref(ctx: Context, key: str) -> dict[str, str]:
    return ctx.ref("Patient", key)


def kept_apart(ctx: Context, key: str, sequence: int) -> tuple[str, str, str, int] | None:
    """A record keyed apart (``auth|<authority>|<number>``, ``record_key``) as ``Context.apart`` (a PID's) and
    ``Context.merged_apart`` (MRG-1's) hold it: (authority, number, the "Patient/id" the bare number keys, the
    segment's sequence); None for a key of any other kind."""
    if not key.startswith("auth|"):
        return None
    authority, number = key[5:].rsplit("|", 1)
    return authority, number, patient_ref(ctx, number)["reference"], sequence


# --- Encounter -----------------------------------------------------------------------------------


def encounter(
    pv1: Segment,
    pv2: Segment | None,
    ctx: Context,
    patient: dict[str, str],
    patient_k: str,
    status: str = "unknown",
    assumed: bool = False,
    undoes: tuple[str, ...] = (),
    event: str = "",
) -> dict[str, str]:
    """PV1/PV2 → Encounter keyed by visit number (PV1-19), else patient + admit time. ``assumed``:
    the event's ``status`` states nothing about the visit (A08): unless PV1 says more, it only
    fills an Encounter stored without one (a discharged visit is not reopened by an update).
    ``undoes``: parts the event (``event``) takes back from the stored Encounter (A13, A11: ``period.end``)."""
    visit = pv1.value(19).strip()
    admit = pv1.value(44).strip()
    key = (
        f"vn|{visit}"
        if visit
        else f"{patient_k}|admit|{admit}"
        if admit
        else f"{patient_k}|msg|{ctx.message_key}"
    )
    res: Resource = {"resourceType": "Encounter", "status": status}
    apply_table("pv1_encounter", {"PV1": pv1}, ctx, res)
    if pv2 is not None:
        apply_table("pv2_encounter", {"PV2": pv2}, ctx, res)
    res["status"] = _encounter_status(pv1, status)
    if event in _BED_NOT_TAKEN:
        _bed_planned(res)
    if res.get("location") and event:
        _history_taken_back(res, ctx, event)
    if assumed and res["status"] == status:
        ctx.assumed(res, "status")
    res["subject"] = patient
    if visit:  # another patient under a stored visit number is refused there (merge.yaml ``another_person``)
        ctx.located(res, "subject", pv1, 19)
        _mother_named(res, ctx)
    res["serviceProvider"] = organization(ctx)
    for part in undoes:
        ctx.delete(res, part, why=f"cancel event {event}")
    for ident in res.get("identifier", ()):
        ident.setdefault("system", f"urn:huren:visit:{ctx.urn_code}")
    return ctx.put(res, key)


def _mother_named(res: Resource, ctx: Context) -> None:
    """PID-21 (mother's identifier, "a link field for newborns", v2.5 ch. 3) names the mother's
    record, keyed as her own PID keys it (``list_key``): a newborn's results under her visit number
    (rooming-in, 母婴同室: the newborn has no admission of its own) refer to her visit rather than
    being refused as another patient's (``Said.mother``; only where the visit is left as stored)."""
    pid = ctx.message.get("PID")
    if pid is None or not pid.has(21) or not _newborn(pid, ctx):
        return
    key, _ = list_key(pid, 21, ctx, strict=False)
    if key:
        ctx.mother(res, "subject", ctx.ref("Patient", key)["reference"])


def _newborn(pid: Segment, ctx: Context) -> bool:
    """Whether the message's patient is a newborn: born (PID-7, to the day; required) at most
    ``newborn_days`` (``identifiers.yaml``: the neonatal period, 28 days) before the message's time
    (MSH-7) and not after it. Only a newborn's PID-21 names a mother whose visit it may be filed
    under: an adult or a child of ten naming the visit's patient in PID-21 is another patient under
    a reused visit number (review of visitmend20). No ``newborn_days`` (a site's identifiers.yaml
    without it), no PID-7 to the day or no MSH-7: not a newborn -- refused, never guessed."""
    days = table(ctx.site, "identifiers").get("newborn_days")
    born, sent = pid.value(7).strip(), (ctx.message.msh.timestamp or "").strip()
    if not isinstance(days, int) or isinstance(days, bool) or len(born) < 8 or len(sent) < 8:
        return False
    # both days in the institution's zone: a baby born at 01:00 +0800 in a message stamped in UTC
    # was "born tomorrow" when the first eight characters were compared (the review of visitlast20)
    try:
        here = zone(ctx.tz)
        age = (to_datetime(sent, ctx.tz).astimezone(here).date()
               - to_datetime(born, ctx.tz).astimezone(here).date()).days
    except (ValueError, TimestampError):
        return False
    return 0 <= age <= days


# events after which the patient is not in PV1-3's bed whatever PV1-2 says (a Chinese HIS sends its
# pre-admissions with PV1-2 I): pre-admit, pending admit and the cancels of an admission
_BED_NOT_TAKEN = frozenset({"A05", "A14", "A11", "A27", "A38"})
# FHIR R4 Encounter.location.status ``completed``: "the patient was at the specified location" in
# the past (what ``pv1_encounter`` states PV1-6 as): the past a take-back drops where the merge rule
# names no ``history`` statuses
_PAST = ("completed",)


def _history_taken_back(res: Resource, ctx: Context, event: str) -> None:
    """The message's own past entries of ``Encounter.location`` (the ``history`` statuses of the
    merge rule: PV1-6's bed, ``completed``) dropped when ``event`` is one the rule's
    ``history_taken_back_by`` names. A12 cancels a transfer: its PV1-6 (prior location) names the bed
    the transfer took the patient to, which the cancel takes back -- not a bed the patient left
    (stored ``completed`` it was kept as history under every later message, review of the
    twenty-eighth round). The rule is data (``merge.yaml``, beside ``history`` and ``history_unless``
    that decide what the merge keeps), read here because only the converter knows the event. A site
    rule without the key takes the shipped one (``mappings.site.CARRIED_KEYS``); one without
    ``history`` (a copy made before the twenty-eighth round) still takes back PV1-6's ``completed``
    bed (``_PAST``): the merge keeps no past there, but the message's own entry would be stored as
    one (review of convperf29)."""
    rtype, element = TAKEN_BACK_ON
    rule = ((ctx.site.merge.get("resources") or {}).get(rtype) or {}).get(element) or {}
    if event not in (rule.get("history_taken_back_by") or ()):
        return
    past = rule.get("history") or _PAST
    res["location"] = [loc for loc in res["location"] if loc.get("status") not in past]
    if not res["location"]:
        del res["location"]


def _bed_planned(res: Resource) -> None:
    """PV1-3's bed (the ``active`` location; PV1-6 is ``completed``, PV1-42 ``reserved``) stated
    ``planned``: the IG gives ``planned`` only for PV1-2 P, so an A05 with PV1-2 I stored the bed as
    occupied by a patient not yet admitted, and an A11 the bed of an admission that did not take place
    (review of the eighteenth round; ``merge.yaml`` Encounter.location settles it by the visit later)."""
    for loc in res.get("location") or ():
        if loc.get("status") == "active":
            loc["status"] = "planned"


def _encounter_status(pv1: Segment, by_event: str) -> str:
    """The status the trigger event gives (``unknown`` outside ADT), unless PV1 says more: a
    discharge time (PV1-45) means the visit is finished, patient class P (pre-admit, PV1-2) that
    it is planned. Cancellations and deletions keep the event's status."""
    if by_event in ("cancelled", "entered-in-error"):
        return by_event
    if pv1.value(45):
        return "finished"
    if pv1.value(2).strip().upper() == "P" and by_event in ("unknown", "in-progress", "arrived"):
        return "planned"
    return by_event


# --- codes ---------------------------------------------------------------------------------------


_CODED_LIMIT = 20000
# id(site) → (site, {(institution, raw item, segment, field, delimiters...): (concept, unmapped local codes)})
_CODED: dict[int, tuple[Site, dict[tuple[Any, ...], tuple[dict[str, Any] | None, tuple[tuple[str, str, str], ...]]]]] = {}


def coded_item(seg: Segment, field_no: int, ctx: Context) -> dict[str, Any] | None:
    """An order/result item code (OBR-4, OBX-3): the local code under urn:huren:code:<INST>, the
    mapped LOINC and recognition item from codes/<INST>.yaml as further codings; unmapped local
    codes are reported. A code under a coding system huren does not know is kept as sent,
    untranslated (``tables.coding_system``), and the ACK says so at the field (W; conv42).

    An institution sends the same few hundred item codes in every message, and the result depends
    only on the raw item and the (immutable) site data: it is computed once per site, institution
    and item, and each call gets its own copy (callers add to it)."""
    site = ctx.site
    entry = _CODED.get(id(site))
    if entry is None or entry[0] is not site:
        if len(_CODED) >= 4:  # sites reloaded (quarantine replay after a code map edit): drop old ones
            _CODED.clear()
        entry = _CODED[id(site)] = (site, {})
    cache = entry[1]
    rep = seg.rep(field_no)
    enc = rep._enc  # the delimiters decide how the raw item reads (a dataclass key would cost __eq__)
    key = (ctx.code, rep.raw, seg.name, field_no, enc.key)
    hit = cache.get(key)
    if hit is None:
        if len(cache) >= _CODED_LIMIT:
            cache.clear()
        where = f"{seg.name}-{field_no}"
        unmapped: list[str] = []
        with ctx.recording() as noted:  # the coding systems ``cwe`` reports unknown, and the codes
            concept = _coded_item(rep, ctx, unmapped)
            for code in unmapped:
                ctx.note_unmapped("code", code, where)
        notes = tuple(noted)
        cache[key] = (concept, notes)
    else:
        concept, notes = hit
        for kind, value, at in notes:
            ctx.note_unmapped(kind, value, at)
    if notes and any(kind == "coding_system" for kind, _, _ in notes):
        warn_unknown_systems(seg, field_no, rep, ctx)
    if concept is None:
        return None
    return {k: [dict(c) for c in v] if k == "coding" else v for k, v in concept.items()}


def _local_inst(system: Any) -> str | None:
    """The institution whose local code system ``system`` is (``mappings.site.local_code_system``)."""
    parsed = local_code_system(system) if isinstance(system, str) else None
    return parsed[0] if parsed else None


def answered_by_code_map(system: Any, ctx: Context) -> bool:
    """Whether the sender's code map (codes/<INST>.yaml) answers a code under ``system``: one of the
    sender's own local systems (no CWE-3, ``L``, its 99zzz), never a system huren does not know
    (``tables.unknown_code_system``) nor another's. The converter's one test of it (item codes,
    the PACS's modality by OBR-4; conv42)."""
    return system == ctx.local_system or _local_inst(system) == ctx.code


def _coded_item(rep: Repetition, ctx: Context, unmapped: list[str]) -> dict[str, Any] | None:
    concept = cwe(rep, {}, ctx)
    if concept is None:
        return None
    codings: list[dict[str, Any]] = concept.get("coding", [])
    cmap = ctx.site.code_map(ctx.code)
    # the sender's codes under any of its local systems (its own, or a 99zzz's: one code map)
    locals_ = [c for c in codings if answered_by_code_map(c.get("system"), ctx)]
    have = {(c.get("system"), c.get("code")) for c in codings}
    mapped = False
    for coding in locals_:
        entry = cmap.lookup(coding["code"])
        if entry is None:
            continue
        mapped = True
        if not coding.get("display") and entry.display:
            coding["display"] = entry.display
        if entry.loinc and (LOINC, entry.loinc) not in have:
            loinc: dict[str, Any] = {"system": LOINC, "code": entry.loinc}
            if entry.loinc_display:
                loinc["display"] = entry.loinc_display
            codings.append(loinc)
            have.add((LOINC, entry.loinc))
        if entry.item and (RECOGNITION_ITEM, entry.item) not in have:
            codings.append({"system": RECOGNITION_ITEM, "code": entry.item})
            have.add((RECOGNITION_ITEM, entry.item))
    if locals_ and not mapped:
        unmapped.extend(coding["code"] for coding in locals_)
    return concept


def retest_reason(orc: Segment | None, ctx: Context) -> dict[str, Any] | None:
    """ORC-16 → ServiceRequest.reasonCode: the doctor's recognition re-test reason (R01-R09, R98,
    R99) under urn:huren:recognition-reason, any other reason as sent."""
    if orc is None:
        return None
    rep = orc.rep(16)
    code = rep.comp(1).strip().upper()
    if not code and not rep.comp(2).strip():
        return None
    reasons = vocabulary(ctx.site, "recognition_reason")
    if code in reasons:
        coding = {"system": RECOGNITION_REASON, "code": code, "display": reasons[code]}
        concept: dict[str, Any] = {"coding": [coding]}
        # CWE.9 (original text) is what the doctor typed; CWE.2 is the code's text, often its name
        text = rep.comp(9).strip() or rep.comp(2).strip()
        if text:
            concept["text"] = text
        return concept
    if code:
        ctx.note_unmapped("recognition_reason", code, "ORC-16")
    return cwe(rep, {}, ctx)


def system_for(ctx: Context, name: str) -> str:
    return coding_system(ctx.site, name, ctx.local_system)


# --- Provenance and Bundle -----------------------------------------------------------------------


def received_now() -> str:
    """Provenance.recorded of a message without a usable MSH-7: the time huren converts it, the
    nearest it knows to its receipt (the one clock a conversion reads; tests that compare
    conversions byte for byte hold it still)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1024)
def _recorded(timestamp: str, tz: str) -> str:
    """MSH-7 as Provenance.recorded (a batch of one sender's messages shares a few timestamps)."""
    return to_datetime(timestamp, tz).isoformat(timespec="seconds")


def provenance(ctx: Context) -> None:
    msh = ctx.message.msh
    targets = [{"reference": ref} for ref in ctx.resources]
    try:
        recorded = _recorded(msh.timestamp, ctx.tz) if msh.timestamp else None
    except TimestampError:
        recorded = None
        ctx.warn(msh.error(f"MSH-7 {msh.timestamp!r} is not a valid timestamp", 7, code=DATA_TYPE_ERROR))
    if recorded is None:
        recorded = received_now()
    kind = f"{msh.message_type}^{msh.trigger_event}" if msh.trigger_event else msh.message_type
    control = keyed_control_id(msh.field(10))  # as the message store keys the message (not its ids')
    prov: Resource = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                    "code": msh.trigger_event or msh.message_type,
                }
            ],
            "text": kind,
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                            "display": "Author",
                        }
                    ]
                },
                "who": organization(ctx),
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": f"{HL7V2_MESSAGE_SYSTEM}:{ctx.urn_code}",
                        "value": control,
                    },
                    "display": f"HL7 v{msh.version} {kind} message {control} from {ctx.code}",
                },
            }
        ],
    }
    ctx.put(prov, f"msg|{ctx.message_key}")


def bundle(resources: dict[str, Resource]) -> Resource:
    """The transaction Bundle of PUTs of ``resources`` ("Type/id" -> resource, in order)."""
    entries = []
    for ref, res in resources.items():
        entry: dict[str, Any] = {}
        rid = res["id"]
        if len(rid) == 36 and rid.count("-") == 4:
            entry["fullUrl"] = f"urn:uuid:{rid}"
        entry["resource"] = res
        entry["request"] = {"method": "PUT", "url": ref}
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def error_for(seg: Segment, message: str, field_no: int, component: int | None = None) -> HL7Error:
    return seg.error(message, field_no, component, code=DATA_TYPE_ERROR)


def note_text(nte: Segment) -> str:
    """NTE-3 (FT, repeating: one comment's lines) -> an Annotation's text, a line per repetition (an
    empty one left out), as every converter of notes reads it. The order and result notes read only
    the first repetition: a comment sent as ``标本溶血~已通知临床`` lost its second line."""
    reps = nte.reps(3)
    if len(reps) == 1:
        return reps[0].text()
    return "\n".join(t for t in (r.text() for r in reps) if t)
