"""The HIS's admission taking over a lab's placeholder visit (thirty-third round, visit33; its review
fixed by visfix33).

Results before the admission: a LIS result names the patient by the LIS's own number (PID-3
``L-77^^^LIS^PI``) under the HIS's visit number (PV1-19) and carries a thin Encounter, written only
because none was stored. The HIS's admission then names its own record under that number, and the
merge rule ``another_person`` (one visit number, two patients) refused it at PV1-19: the HIS could
never admit its patient. The admission is the visit's owner speaking -- the visit number is the
HIS's -- and what it admits over is no one's statement of the visit but the lab's stand-in.

When it is such a stand-in is decided here, from the store, before anything is written; the merge
(``MergeRules._another_person``, ``Said.taken_from``) then files the visit under the patient the
admission names. ALL of these must hold (a wrong take-over files a stay, its diagnoses and charges
under another person: rvwriter31; a refusal leaves the message for the operator's replay):

- the message registers a person (ADT A01/A04/A05: ``Conversion.registers``) and states the visit
  (not written only when absent);
- the stored visit's identifiers are all ones the admission states (``_the_owners_number``): a
  visit number the lab sent as its own (PV1-19 ``V100^^^LIS``, stored under ``urn:huren:id:LIS``)
  is the LIS's, not the HIS's to take (rvvisit33 LOW 5);
- the stored visit's subject is a *placeholder*: a record of the same institution keyed ONLY by
  another assigning authority's number (every identifier under ``urn:huren:mrn:<institution>:<authority>``,
  ``common.authority_of`` -- no MRN of the institution, no ID number, no other member's MRN:
  identity32), that no other record carries any identifier of (``_held_by_another``: a record the
  HIS registered with the LIS's number beside its MRN says whose the number is -- rvvisit33 HIGH 2),
  and that no registration has spoken for (``persons.unregistered``: every message naming it was
  read, filed, and none registers a person);
- no ADT of the HIS ever named the visit (``_no_owner_named``: its Provenances, every one read, and
  the application of each ADT's message: a visit an ADT of a registering application stated is the
  HIS's own, and another patient under its number is a reused number; the lab restating its own
  placeholder by an A08 -- rvidfix32's pattern -- is not the HIS speaking: rvvisit33 LOW 4);
- the person guard does not call them two people (``demographics.contradicts_all`` of the two
  Patients: the name differing, and the sex, a day of birth or the valid resident ID numbers too);
- nothing of the batch before this message names the visit or the placeholder (the store would not
  be what the merge finds: refused as before, never guessed).

The merge asks what it alone sees: the stored visit is still the version judged here
(``Said.taken_at``: nothing wrote it since the store was read), written by a message (its writer
mark: not a FHIR client, not "not known"), and the patient index holds the placeholder for no one
else (``Persons.person_compartment``: a record the desk linked or merged to another is identified,
no stand-in -- rvvisit33 HIGH 1) and does not know the two records for two persons
(``Persons.known_apart``). A take-over is told to the sender and counted for the operator: ERR W at
PV1-19 (``taken_over_authority`` reads it back for ``/admin/fidelity``, per institution and
authority, as identity32's kept-apart numbers are; rvvisit33 LOW 6).

What is left as it was: the placeholder keeps its identifiers and the results the LIS filed keep
naming it (what the LIS stated; ``Observation.subject`` is the lab's patient, the visit is where
it was made): saying the LIS's record IS the HIS's person is the patient index's and the
operator's (``$link``), not a guess from a shared visit number.

The lab's later results of the stay (``settle_stay``, rvvisit33 MED 3): the LIS goes on filing the
stay's results under its record and the visit number, and its thin visit, written only when absent,
finds the visit under the admitted record -- refused at PV1-19 before, every later result of an
inpatient stay left for the operator. The visit was taken FROM that record: when the message's record
is still a stand-in (the same reading as above), ``Said.stand_in`` tells the merge, which lets the
visit stand (nothing of it changes) when its history shows it taken over from exactly that record
by a message's write and the index still holds the record for no one else and not apart from the
admitted one. The result is filed as the LIS states it (subject: the lab's record; encounter: the
stay), as the first ones were: it stays in the lab record's compartment, not the admitted person's,
until the desk links the two (README, visfix33)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from adapters.convert.applications import code_declared, same_code, sends_as
from adapters.convert.persons import applications_of, authority_between, batch_version, unregistered
from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error, Tally
from engine.identity.demographics import contradicts_all
from engine.merge_rules import Said, field_of
from mappings.site import urn_part

# the message family that owns visits: a visit an ADT of the HIS named is the HIS's statement
_OWNER = "ADT"

# the take-over warning's text before and after the placeholder's authority, for ``taken_over_authority``
_TAKEN_HEAD = "PV1-19 names a visit a lab's message made (written only because none was stored) under a record of assigning authority "
_TAKEN_TAIL = " (PID-3.4) that no registration has spoken for: taken over by this registration"


def taken_over_authority(message: str) -> str | None:
    """The authority a take-over warning's text names (``_taken_over``), else None: how the operator's
    fidelity view (``engine.api.admin``) counts a row stored before the warning carried its ``Tally``."""
    return authority_between(message, _TAKEN_HEAD, _TAKEN_TAIL)


def settle_takeover(conversion: Any, read_many: Any, search: Any, messages: Any,
                    earlier: Sequence[Any] = ()) -> list[int]:
    """Mark (``Said.taken_from``, ``Said.taken_at``) each visit this registration states whose stored
    version is a lab's placeholder under another patient record (the module's rules), for the merge
    to take over, and warn of it (ERR W at the visit number). Marks nothing when any rule does not
    hold: ``another_person`` then refuses as before. Returns the positions in ``earlier`` read (none:
    an earlier message of the batch naming the visit or the placeholder refuses, below)."""
    if not conversion.registers or search is None or messages is None:
        return []
    wanted: dict[str, str] = {}  # Encounter ref -> the Patient ref this message names
    for ref, resource in conversion.by_reference.items():
        if not ref.startswith("Encounter/") or ref in conversion.create_only:
            continue
        subject = (resource.get("subject") or {}).get("reference")
        if isinstance(subject, str) and subject.startswith("Patient/") and subject in conversion.by_reference:
            wanted[ref] = subject
    if not wanted:
        return []
    visits = read_many([tuple(ref.split("/", 1)) for ref in wanted])
    held: dict[str, tuple[str, dict[str, Any]]] = {}  # Encounter ref -> (the stored subject, another record; the visit)
    for ref, subject in wanted.items():
        stored = visits.get(tuple(ref.split("/", 1)))
        mine = _subject(stored)
        if mine is not None and mine != subject and stored is not None:
            held[ref] = (mine, stored)
    leaned = _settle_in_batch(conversion, {r: s for r, s in wanted.items() if (tuple(r.split("/", 1))) not in visits},
                              read_many, search, earlier) if earlier else []
    if not held:
        return leaned
    named = {ref for c in earlier for ref in c.by_reference}
    patients = read_many([tuple(mine.split("/", 1)) for mine, _ in held.values()])
    prefix = _prefix(conversion.institution)
    for ref, (mine, visit) in held.items():
        placeholder = patients.get(tuple(mine.split("/", 1)))
        if (placeholder is None or ref in named or mine in named
                or not _the_owners_number(visit, conversion.by_reference[ref])
                or contradicts_all(placeholder, conversion.by_reference[wanted[ref]])
                or not _stand_in(mine, placeholder, prefix, search, messages, earlier)
                or not _no_owner_named(ref, search, messages, conversion)):
            continue
        said = conversion.said.get(ref) or Said()
        conversion.said[ref] = replace(said, taken_from=(*said.taken_from, ("subject", mine)),
                                       taken_at=str((visit.get("meta") or {}).get("versionId") or ""))
        conversion.warn(_taken_over(placeholder, prefix, dict(said.fields).get("subject")))
    return leaned


def _settle_in_batch(conversion: Any, wanted: dict[str, str], read_many: Any, search: Any,
                     earlier: Sequence[Any]) -> list[int]:
    """The take-over of a placeholder visit the batch's own lab result made (identity34: refused in one
    batch while filed when the two came singly). For each visit not stored (``wanted``: visit -> the
    record this registration names) that earlier messages of the batch only write when absent (a
    result's thin visit: no message of the batch states it, so no ADT did), under a record not stored
    that no earlier message registers: the same rules as the stored case, asked of the batch's
    versions -- the visit's identifiers are the admission's, the two persons are not contradicted,
    the record is keyed apart only and no other record, stored or of the batch, carries its numbers.
    The visit will be version 1 when the write comes (``Said.taken_at``); the merge still asks the
    index and the writer mark at the write. Returns the positions in ``earlier`` read."""
    prefix = _prefix(conversion.institution)
    leaned: list[int] = []
    # each visit an earlier message writes only when absent, none stating it (``persons.batch_version``)
    made = {ref: left.at for ref in wanted if (left := batch_version(ref, earlier)) is not None and not left.states}
    subjects = {ref: _subject(earlier[at].by_reference[ref]) for ref, at in made.items()}
    stored = read_many([tuple(m.split("/", 1)) for m in subjects.values() if m is not None]) if subjects else {}
    for ref, at in made.items():
        mine = subjects[ref]
        if mine is None or mine == wanted[ref] or tuple(mine.split("/", 1)) in stored:
            continue
        stating = [n for n, c in enumerate(earlier) if mine in c.by_reference]
        if any(earlier[n].registers for n in stating):
            continue  # registered by the batch: no stand-in
        placeholder = earlier[stating[-1]].by_reference[mine]
        if (not _the_owners_number(earlier[at].by_reference[ref], conversion.by_reference[ref])
                or contradicts_all(placeholder, conversion.by_reference[wanted[ref]])
                or not _keyed_apart_only(placeholder, prefix)
                or _held_by_another(mine, placeholder, search, earlier)):
            continue
        said = conversion.said.get(ref) or Said()
        conversion.said[ref] = replace(said, taken_from=(*said.taken_from, ("subject", mine)), taken_at="1")
        conversion.warn(_taken_over(placeholder, prefix, dict(said.fields).get("subject")))
        leaned += sorted({at, *stating})
    return leaned


def settle_stay(conversion: Any, read_many: Any, search: Any, messages: Any,
                earlier: Sequence[Any] = ()) -> list[int]:
    """Mark (``Said.stand_in``) each thin visit (written only when absent) of a message naming a
    stand-in record (the module's rules) whose visit is filed under another record: the merge then
    lets the visit stand when its history shows it taken over from exactly that record (the lab's
    later results of a stay the HIS's admission took over, rvvisit33 MED 3).

    The visit and the record as the batch's earlier messages leave them, as the store will be once
    they are written (identity34; idfix34: batch and single had still differed): the visit's subject
    through every earlier message stating it (``_visit_as_left``: an admission taking it over from
    exactly this record moves it, an A08 of the stay keeping it under the admitted record keeps it,
    anything else moving it is not told -- nothing marked, the merge decides as before); the record
    as stored and as every earlier message states or makes it (``_stand_in_as_left``: the lab's first
    result of the batch made it). Returns the positions in ``earlier`` read: if one of them is not
    written, the message is settled again.

    On the path of every message carrying a thin visit: only a message whose own record is keyed by
    another authority's number alone (read from the message, no store) reads the stored visit (one
    ``read_many``), and only one whose visit is another record's reads the rest."""
    if conversion.registers or not conversion.create_only or search is None or messages is None:
        return []
    prefix = _prefix(conversion.institution)
    wanted: dict[str, str] = {}  # Encounter ref -> the message's record, keyed apart only
    for ref in conversion.create_only:
        if not ref.startswith("Encounter/"):
            continue
        theirs = _subject(conversion.by_reference.get(ref))
        patient = conversion.by_reference.get(theirs) if theirs is not None else None
        if theirs is not None and patient is not None and _keyed_apart_only(patient, prefix):
            wanted[ref] = theirs
    if not wanted:
        return []
    visits = read_many([tuple(ref.split("/", 1)) for ref in wanted])
    held: dict[str, tuple[str, list[int]]] = {}  # Encounter ref -> (the message's record, positions read)
    for ref, theirs in wanted.items():
        subject, read = _visit_as_left(ref, theirs, _subject(visits.get(tuple(ref.split("/", 1)))), earlier)
        if subject is not None and subject != theirs:
            held[ref] = (theirs, read)
    if not held:
        return []
    patients = read_many([tuple(theirs.split("/", 1)) for theirs, _ in held.values()])
    leaned: set[int] = set()
    for ref, (theirs, read) in held.items():
        stand_in, stating = _stand_in_as_left(theirs, patients.get(tuple(theirs.split("/", 1))), prefix, search,
                                              messages, earlier)
        leaned.update(read, stating)
        if stand_in:
            said = conversion.said.get(ref) or Said()
            conversion.said[ref] = replace(said, stand_in=(*said.stand_in, ("subject", theirs)))
    return sorted(leaned)


def _visit_as_left(visit: str, record: str, subject: str | None,
                   earlier: Sequence[Any]) -> tuple[str | None, list[int]]:
    """The record (``"Patient/id"``) the batch's earlier messages leave ``visit`` under, from its stored
    ``subject``, and the positions read: a message writing it only when absent makes it when none is
    there; a message stating it keeps it under the same record, or -- an admission taking it over from
    exactly ``record`` (``settle_takeover``'s mark, ``Said.taken_from``) -- moves it to the admitted
    one. Every message stating it is read, not only the last (rvidentity34 finding 7: an A08 of the
    stay after the admission). Moved any other way: (None, read) -- not told."""
    read: list[int] = []
    for at, c in enumerate(earlier):
        version = c.by_reference.get(visit)
        if version is None:
            continue
        if visit in c.create_only:
            if subject is None:
                subject = _subject(version)
                read.append(at)
            continue
        read.append(at)
        now = _subject(version)
        said = c.said.get(visit)
        if now != subject and not (subject == record and said is not None and ("subject", record) in said.taken_from):
            return None, read
        subject = now
    return subject, read


def _stand_in_as_left(ref: str, stored: dict[str, Any] | None, prefix: str, search: Any, messages: Any,
                      earlier: Sequence[Any]) -> tuple[bool, list[int]]:
    """Is ``ref`` a lab's stand-in as the batch's earlier messages leave it (``_stand_in``'s rules asked
    of every version the write will have seen), and the positions of the messages naming it? Keyed
    apart only, stored and in every earlier message naming it; no other record, stored or of the batch,
    carrying one of its numbers; no registration of it: the store's (``persons.unregistered``, when
    stored) and none in the batch. Not stored and not made by the batch: no (rvidentity34 finding 4:
    the batch's first result made it, and only the store had been read)."""
    stating = [at for at, c in enumerate(earlier) if ref in c.by_reference]
    versions = ([stored] if stored is not None else []) + [earlier[at].by_reference[ref] for at in stating]
    if not versions or any(earlier[at].registers and ref not in earlier[at].create_only for at in stating):
        return False, stating
    if not all(_keyed_apart_only(v, prefix) for v in versions):
        return False, stating
    numbers = {(str(i.get("system") or ""), str(i.get("value") or "")) for v in versions for i in v.get("identifier") or ()}
    patient = {"identifier": [{"system": system, "value": value} for system, value in sorted(numbers)]}
    return (not _held_by_another(ref, patient, search, earlier)
            and (stored is None or unregistered(ref, search, messages))), stating


@lru_cache(maxsize=256)
def _prefix(institution: str) -> str:
    """The start of the systems of the institution's numbers keyed apart (``urn:huren:mrn:<institution>:``),
    made once an institution: ``settle_stay`` asks it of every message carrying a thin visit."""
    return f"urn:huren:mrn:{urn_part(institution)}:"


def _subject(resource: dict[str, Any] | None) -> str | None:
    """The "Patient/id" a resource's subject names, else None."""
    ref = ((resource or {}).get("subject") or {}).get("reference")
    return ref if isinstance(ref, str) and ref.startswith("Patient/") else None


def _stand_in(ref: str, patient: dict[str, Any], prefix: str, search: Any, messages: Any,
              earlier: Sequence[Any]) -> bool:
    """Is the stored record ``ref`` a lab's stand-in -- the one reading of it, for the take-over and
    for the lab's later results of a stay taken over: keyed only by another authority's number of the
    institution (``_keyed_apart_only``), no other record carrying one of its numbers
    (``_held_by_another``), and no registration has spoken for it (``persons.unregistered``), asked
    in that order (cheapest first)."""
    return (_keyed_apart_only(patient, prefix) and not _held_by_another(ref, patient, search, earlier)
            and unregistered(ref, search, messages))


def _keyed_apart_only(patient: dict[str, Any], prefix: str) -> bool:
    """Every identifier of the record is a number another authority of this institution assigned
    (``urn:huren:mrn:<institution>:<authority>``): no MRN of the institution, no ID number, no other
    member's MRN, nothing else that could key it."""
    identifiers = patient.get("identifier") or []
    return bool(identifiers) and all(str(i.get("system") or "").startswith(prefix) and len(
        str(i.get("system"))) > len(prefix) for i in identifiers)


def _the_owners_number(stored: dict[str, Any], stating: dict[str, Any]) -> bool:
    """Every identifier of the stored visit (system and value) is one the admission states: the visit
    number is the one the HIS assigns. The lab's PV1-19 ``V100^^^LIS`` stores the visit under the LIS's
    system (``urn:huren:id:LIS``): the LIS's number, keyed with the HIS's by value alone (older than
    visit33), not the HIS's visit to take (rvvisit33 LOW 5). No identifier stored: not told, no."""
    mine = {(i.get("system"), i.get("value")) for i in stored.get("identifier") or ()}
    theirs = {(i.get("system"), i.get("value")) for i in stating.get("identifier") or ()}
    return bool(mine) and mine <= theirs


def _held_by_another(ref: str, patient: dict[str, Any], search: Any, earlier: Sequence[Any]) -> bool:
    """Another record carries one of the record's identifiers -- stored (a search per identifier,
    two results at most) or stated by an earlier message of the batch: the HIS registered its MRN-C
    with the LIS's number beside it (PID-3 repeats), so the number, and the stay filed under it, are
    MRN-C's, whatever the index has linked (rvvisit33 HIGH 2). A page that cannot be read whole:
    cannot be told, held."""
    keys = {(str(i.get("system") or ""), str(i.get("value") or "")) for i in patient.get("identifier") or ()}
    for conversion in earlier:
        for other, resource in conversion.by_reference.items():
            if other != ref and other.startswith("Patient/") and keys.intersection(
                    (str(i.get("system") or ""), str(i.get("value") or "")) for i in resource.get("identifier") or ()):
                return True
    own = ref.removeprefix("Patient/")
    for system, value in sorted(keys):
        page = search("Patient", [("identifier", f"{system}|{value}"), ("_count", "2")])
        if page.has_next or any(str(p.get("id")) != own for p in page.resources):
            return True
    return False


def _no_owner_named(visit: str, search: Any, messages: Any, conversion: Any) -> bool:
    """Every Provenance naming the visit was read (one page) and no ADT of the HIS is among them. An
    ADT is the HIS's unless its message's application (MSH-3, ``persons.applications_of``) is one that
    also sent the visit's other messages (the lab's) and is neither this registration's nor one of the
    institution's declared registration applications (``institutions.yaml``
    ``registration_applications``): the LIS's A08 restating its own placeholder is the lab speaking,
    and made the visit "the HIS's" for good (rvvisit33 LOW 4). A page with more, an activity not
    stated, an ADT whose message is not read or was sent by two applications: cannot be told, no.

    Each application is its registrar (its MSH-3 whole, ``persons._registrar_of``), compared by ``applications``'
    rules, never by equality of codes: this message's by ``sends_as``, the declared ones by ``code_declared``, the
    lab's by ``same_code`` (case aside, one alias group). By code, ``LIS^<OID1>^ISO``'s results and ``LIS^<OID2>^ISO``'s
    A08 -- two applications -- were one ``LIS`` and the visit taken over, and ``lis``'s A08 restating the lab's own
    placeholder a third application (low44c LOW 3; forty-fifth round, reg45)."""
    page = search("Provenance", [("target", visit), ("_count", "100")])
    if page.has_next or not page.resources:
        return False
    owners = []
    for prov in page.resources:
        kind = str((prov.get("activity") or {}).get("text") or "")
        if not kind:
            return False
        if kind.partition("^")[0] == _OWNER:
            owners.append(f"Provenance/{prov.get('id')}")
    if not owners:
        return True
    applications = applications_of(page.resources, messages)
    lab = {app for ref, apps in applications.items() if ref not in owners for app in apps}
    for ref in owners:
        apps = applications.get(ref) or set()
        if len(apps) != 1:
            return False
        (app,) = apps
        inst, site = conversion.institution, conversion.site
        if (sends_as(inst, conversion.sender, app, site) or code_declared(inst, app, conversion.registrars, site)
                or not any(same_code(inst, app, other, site) for other in lab)):
            return False
    return True


def _taken_over(placeholder: dict[str, Any], prefix: str, at: str | None) -> HL7Error:
    """The take-over's warning (ERR W at the visit number: ``Conversion.warn`` sets the severity): one text per
    authority of the placeholder's number, no number nor name echoed (the fidelity view counts it per institution
    and authority)."""
    authority = sorted(str(i.get("system"))[len(prefix):] for i in placeholder.get("identifier") or ())[0]
    where = field_of(at or "")
    return HL7Error(
        f"{_TAKEN_HEAD}{authority!r}{_TAKEN_TAIL}: the visit is filed under this message's patient; the lab's "
        "results keep naming the lab's record (its _history keeps the visit's). If the two records are one "
        "person, the desk links them (Patient/$link); if the visit number was another patient's, ask the "
        "operator", segment=where[0] if where else "", sequence=where[1] if where else None,
        field=where[2] if where else None, code=DUPLICATE_KEY_IDENTIFIER, tally=Tally("taken_over", authority))
